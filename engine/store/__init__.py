"""The encrypted store: one SQLCipher database per profile, its migrations, its typed errors, and the session store."""

from engine.store.database import Database, ExecResult, Row, Transaction
from engine.store.memory_store import MemorySessionStore
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.port import (
    DeliveryState,
    Direction,
    OutboxItem,
    SessionStore,
    StoredMessage,
    StoreReader,
    StoreWriter,
)
from engine.store.sqlcipher_store import SqlCipherSessionStore

__all__ = [
    "MIGRATIONS",
    "Database",
    "DeliveryState",
    "Direction",
    "ExecResult",
    "MemorySessionStore",
    "Migration",
    "OutboxItem",
    "Row",
    "SessionStore",
    "SqlCipherSessionStore",
    "StoreReader",
    "StoreWriter",
    "StoredMessage",
    "Transaction",
]
