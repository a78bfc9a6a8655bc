"""The encrypted store: one SQLCipher database per profile, its migrations, and its typed errors."""

from engine.store.database import Database, ExecResult, Row, Transaction
from engine.store.migrations import MIGRATIONS, Migration

__all__ = ["MIGRATIONS", "Database", "ExecResult", "Migration", "Row", "Transaction"]
