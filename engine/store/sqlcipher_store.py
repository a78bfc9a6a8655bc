"""The session store in a profile's SQLCipher database (tables of migration 2, ``meta`` of migration 1).

Writes go through the :class:`~engine.store.database.Transaction` of one ``BEGIN IMMEDIATE … COMMIT`` block;
reads outside a transaction use :meth:`Database.query`. Store sequences (message order, outbox order) are rowids:
one above every row present, and a rolled-back insert takes none (no ``AUTOINCREMENT``: migration 3 says why).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from engine.store import errors
from engine.store.database import Database, Params, Row, Transaction
from engine.store.port import (
    DeliveryState,
    Direction,
    OutboxItem,
    SessionStore,
    StoredMessage,
    StoreReader,
    StoreWriter,
)

if TYPE_CHECKING:
    from engine.keyring import KeyCustody

SESSION_STORE_SCHEMA_VERSION = 2
"""The first schema version that has the session store's tables."""

_MESSAGE_COLUMNS = (
    "message_id, chat, author, author_installation, direction, text, clock, timestamp_ms, received_ns, "
    "forward_secret, state"
)
_OUTBOX_INSERTED = "envelope_hash, topic, waku_message, message_id, created_ns, attempts, next_attempt_ns"
_OUTBOX_COLUMNS = _OUTBOX_INSERTED + ", sequence"

Query = Callable[[str, Params], list[Row]]


def _message_from_row(row: Row) -> StoredMessage:
    try:
        direction, state = Direction(row[4]), DeliveryState(row[10])
    except ValueError as exc:
        raise errors.DatabaseCorrupt(f"stored message has an unknown direction or state: {exc}") from exc
    return StoredMessage(
        message_id=row[0],
        chat=row[1],
        author=row[2],
        author_installation=row[3],
        direction=direction,
        text=row[5],
        clock=row[6],
        timestamp_ms=row[7],
        received_ns=row[8],
        forward_secret=bool(row[9]),
        state=state,
    )


def _outbox_from_row(row: Row) -> OutboxItem:
    return OutboxItem(
        envelope_hash=row[0],
        topic=row[1],
        waku_message=row[2],
        message_id=row[3],
        created_ns=row[4],
        attempts=row[5],
        next_attempt_ns=row[6],
        sequence=row[7],
    )


class _SqlReader(StoreReader):
    """The queries of the port over one way of running SQL (the database, or an open transaction)."""

    def __init__(self, query: Query) -> None:
        self._query = query

    def _one(self, sql: str, params: Params) -> Row | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def records(self, kind: str) -> Iterator[tuple[bytes, bytes]]:
        rows = self._query("SELECT key, value FROM protocol_records WHERE kind = ? ORDER BY key", (kind,))
        return iter([(row[0], row[1]) for row in rows])

    def record(self, kind: str, key: bytes) -> bytes | None:
        row = self._one("SELECT value FROM protocol_records WHERE kind = ? AND key = ?", (kind, key))
        return None if row is None else bytes(row[0])

    def meta(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        if row is None or row[0] is None:
            return None
        if not isinstance(row[0], bytes):
            raise errors.DatabaseCorrupt(f"meta value {key!r} is not a blob")
        return row[0]

    def cursor(self, name: str) -> int | None:
        row = self._one("SELECT value FROM cursors WHERE name = ?", (name,))
        return None if row is None else int(row[0])

    def has_seen(self, *envelope_hashes: bytes) -> bool:
        if not envelope_hashes:
            return False
        marks = ", ".join("?" * len(envelope_hashes))
        return self._one(f"SELECT 1 FROM seen_envelopes WHERE hash IN ({marks}) LIMIT 1", envelope_hashes) is not None

    def message(self, message_id: str) -> StoredMessage | None:
        row = self._one(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE message_id = ?", (message_id,))
        return None if row is None else _message_from_row(row)

    def messages(self, chat: bytes, *, limit: int | None = None) -> list[StoredMessage]:
        if limit is None:
            sql = f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE chat = ? ORDER BY sequence"
            rows = self._query(sql, (chat,))
        else:
            if limit < 0:
                raise ValueError("limit must not be negative")
            sql = (
                f"SELECT {_MESSAGE_COLUMNS} FROM "
                "(SELECT * FROM messages WHERE chat = ? ORDER BY sequence DESC LIMIT ?) ORDER BY sequence"
            )
            rows = self._query(sql, (chat, limit))
        return [_message_from_row(row) for row in rows]

    def message_count(self) -> int:
        row = self._one("SELECT count(*) FROM messages", ())
        return 0 if row is None else int(row[0])

    def outbox(self, *, due_ns: int | None = None) -> list[OutboxItem]:
        if due_ns is None:
            rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY sequence", ())
        else:
            sql = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE next_attempt_ns <= ? ORDER BY sequence"
            rows = self._query(sql, (due_ns,))
        return [_outbox_from_row(row) for row in rows]


class _SqlWriter(_SqlReader, StoreWriter):
    """The writes of one store transaction; unusable once its block has ended."""

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction.query)
        self._execute = transaction.execute

    def put_record(self, kind: str, key: bytes, value: bytes) -> None:
        self._execute(
            "INSERT INTO protocol_records (kind, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
            (kind, key, value),
        )

    def delete_record(self, kind: str, key: bytes) -> None:
        self._execute("DELETE FROM protocol_records WHERE kind = ? AND key = ?", (kind, key))

    def put_meta(self, key: str, value: bytes) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_cursor(self, name: str, value: int) -> None:
        self._execute(
            "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def mark_seen(self, envelope_hash: bytes, seen_ns: int) -> bool:
        result = self._execute(
            "INSERT INTO seen_envelopes (hash, seen_ns) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING",
            (envelope_hash, seen_ns),
        )
        return result.rowcount == 1

    def forget_seen(self, before_ns: int) -> int:
        return self._execute("DELETE FROM seen_envelopes WHERE seen_ns < ?", (before_ns,)).rowcount

    def add_message(self, message: StoredMessage) -> bool:
        # INSERT … SELECT … WHERE NOT EXISTS: unlike ON CONFLICT DO NOTHING, a skipped row takes no sequence number.
        result = self._execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE message_id = ?)",
            (
                message.message_id,
                message.chat,
                message.author,
                message.author_installation,
                Direction(message.direction).value,
                message.text,
                message.clock,
                message.timestamp_ms,
                message.received_ns,
                int(bool(message.forward_secret)),
                DeliveryState(message.state).value,
                message.message_id,
            ),
        )
        return result.rowcount == 1

    def set_message_state(self, message_id: str, state: DeliveryState, *,
                          only_from: Collection[DeliveryState] | None = None) -> bool:
        sql, params = "UPDATE messages SET state = ? WHERE message_id = ?", [DeliveryState(state).value, message_id]
        if only_from is not None:
            states = [DeliveryState(s).value for s in only_from]
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params += states
        return self._execute(sql, params).rowcount == 1

    def enqueue(self, item: OutboxItem) -> None:
        self._execute(
            f"INSERT INTO outbox ({_OUTBOX_INSERTED}) "
            "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE envelope_hash = ?)",
            (
                item.envelope_hash,
                item.topic,
                item.waku_message,
                item.message_id,
                item.created_ns,
                item.attempts,
                item.next_attempt_ns,
                item.envelope_hash,
            ),
        )

    def reschedule(self, envelope_hash: bytes, attempts: int, next_attempt_ns: int) -> None:
        self._execute(
            "UPDATE outbox SET attempts = ?, next_attempt_ns = ? WHERE envelope_hash = ?",
            (attempts, next_attempt_ns, envelope_hash),
        )

    def dequeue(self, envelope_hash: bytes) -> bool:
        return self._execute("DELETE FROM outbox WHERE envelope_hash = ?", (envelope_hash,)).rowcount == 1


class SqlCipherSessionStore(_SqlReader, SessionStore):
    """The session store of one profile, in its open (keyed, migrated) :class:`Database`.

    While a transaction is open, read through its writer: reading the store itself then raises
    ``RuntimeError`` (the one connection would show uncommitted writes, unlike a reader that sees committed data).
    """

    def __init__(self, database: Database) -> None:
        if database.schema_version < SESSION_STORE_SCHEMA_VERSION:
            raise ValueError(f"the database is at schema version {database.schema_version}, the session store "
                             f"needs {SESSION_STORE_SCHEMA_VERSION}")
        super().__init__(self._read)
        self._database = database
        self._in_transaction = False

    @classmethod
    def open_profile(
        cls,
        profile_dir: Path,
        passphrase: str | None = None,
        create: bool = False,
        *,
        custody: KeyCustody | None = None,
    ) -> SqlCipherSessionStore:
        """Open (or with ``create`` make) a profile's database, as :func:`open_profile_database`, as a store."""
        from engine.store.profile_db import open_profile_database  # not at the top: profile_db imports the keyring

        database = open_profile_database(profile_dir, passphrase, create, custody=custody)
        try:
            return cls(database)
        except BaseException:
            database.close()
            raise

    @property
    def database(self) -> Database:
        """The open database (for integrity checks and the like; write through :meth:`transaction`)."""
        return self._database

    def _read(self, sql: str, params: Params) -> list[Row]:
        if self._in_transaction:
            raise RuntimeError("a store transaction is open: read through its writer")
        return self._database.query(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[StoreWriter]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception, a failed commit included, rolls every write back."""
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        with self._database.transaction() as transaction:
            self._in_transaction = True
            try:
                yield _SqlWriter(transaction)
            finally:
                self._in_transaction = False

    def make_durable(self) -> None:
        """One fsync of the database's write-ahead log: see :meth:`Database.make_durable`."""
        if self._in_transaction:
            raise RuntimeError("make_durable inside a transaction would not cover it")
        self._database.make_durable()

    def durability(self) -> Callable[[], None] | None:
        """The fsync of :meth:`make_durable`, to run later on any thread: see :meth:`Database.durability`."""
        if self._in_transaction:
            raise RuntimeError("make_durable inside a transaction would not cover it")
        return self._database.durability()

    def close(self) -> None:
        """Close the database (closing twice is harmless)."""
        self._database.close()
