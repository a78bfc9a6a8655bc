"""The session store in memory, for the deterministic network simulation.

It keeps the contract of :class:`~engine.store.sqlcipher_store.SqlCipherSessionStore` (same orderings, same
sequence numbers, same answers) without a disk. A transaction works on a fork of the committed tables: a table
is copied the first time the transaction writes to it, and the commit swaps the fork in as a whole, so an
exception inside the block, or a failure injected with :meth:`MemorySessionStore.fail_next_commit` or
:attr:`MemorySessionStore.commit_hook`, leaves the committed state untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from engine.store.port import (
    DeliveryState,
    Direction,
    OutboxItem,
    SessionStore,
    StoredMessage,
    StoreReader,
    StoreWriter,
)

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass
class _Tables:
    """The whole state; tables hold only immutable values, so forks may share them until one is written."""

    records: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    seen: dict[bytes, int] = field(default_factory=dict)
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    """By id, in insertion order (never re-inserted, so that is the sequence order)."""
    outbox: dict[bytes, OutboxItem] = field(default_factory=dict)
    """By envelope hash, in sequence order (rescheduling replaces a value in place)."""


class _MemoryReader(StoreReader):
    """The queries of the port over the tables :meth:`_tables` gives."""

    def _tables(self) -> _Tables:
        raise NotImplementedError

    def records(self, kind: str) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted(self._tables().records.get(kind, {}).items()))

    def record(self, kind: str, key: bytes) -> bytes | None:
        return self._tables().records.get(kind, {}).get(bytes(key))

    def meta(self, key: str) -> bytes | None:
        return self._tables().meta.get(key)

    def cursor(self, name: str) -> int | None:
        return self._tables().cursors.get(name)

    def has_seen(self, *envelope_hashes: bytes) -> bool:
        seen = self._tables().seen
        return any(bytes(envelope_hash) in seen for envelope_hash in envelope_hashes)

    def message(self, message_id: str) -> StoredMessage | None:
        return self._tables().messages.get(message_id)

    def messages(self, chat: bytes, *, limit: int | None = None) -> list[StoredMessage]:
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        found = [message for message in self._tables().messages.values() if message.chat == chat]
        if limit is not None:
            found = found[max(len(found) - limit, 0) :]
        return found

    def message_count(self) -> int:
        return len(self._tables().messages)

    def outbox(self, *, due_ns: int | None = None) -> list[OutboxItem]:
        items = self._tables().outbox.values()
        return [item for item in items if due_ns is None or item.next_attempt_ns <= due_ns]


class _MemoryWriter(_MemoryReader, StoreWriter):
    """The writes of one transaction, on a fork of the committed tables; unusable once its block has ended."""

    def __init__(self, committed: _Tables) -> None:
        self._work: _Tables | None = dataclasses.replace(committed)
        self._copied: set[int] = set()  # ids of the tables this fork owns (copied on first write)

    def _tables(self) -> _Tables:
        if self._work is None:
            raise RuntimeError("the transaction has ended")
        return self._work

    def _own(self, table: dict[_K, _V]) -> dict[_K, _V]:
        """``table`` itself if this fork already copied it, else a private copy of it."""
        if id(table) in self._copied:
            return table
        copy = dict(table)
        self._copied.add(id(copy))
        return copy

    def _end(self) -> None:
        self._work = None

    def put_record(self, kind: str, key: bytes, value: bytes) -> None:
        tables = self._tables()
        records = tables.records = self._own(tables.records)
        records[kind] = self._own(records.get(kind, {}))
        records[kind][bytes(key)] = bytes(value)

    def delete_record(self, kind: str, key: bytes) -> None:
        tables = self._tables()
        if bytes(key) not in tables.records.get(kind, {}):
            return
        records = tables.records = self._own(tables.records)
        records[kind] = self._own(records[kind])
        del records[kind][bytes(key)]

    def put_meta(self, key: str, value: bytes) -> None:
        tables = self._tables()
        tables.meta = self._own(tables.meta)
        tables.meta[key] = bytes(value)

    def set_cursor(self, name: str, value: int) -> None:
        tables = self._tables()
        tables.cursors = self._own(tables.cursors)
        tables.cursors[name] = int(value)

    def mark_seen(self, envelope_hash: bytes, seen_ns: int) -> bool:
        tables = self._tables()
        if bytes(envelope_hash) in tables.seen:
            return False
        tables.seen = self._own(tables.seen)
        tables.seen[bytes(envelope_hash)] = int(seen_ns)
        return True

    def forget_seen(self, before_ns: int) -> int:
        tables = self._tables()
        old = [envelope_hash for envelope_hash, seen_ns in tables.seen.items() if seen_ns < before_ns]
        if old:
            tables.seen = self._own(tables.seen)
            for envelope_hash in old:
                del tables.seen[envelope_hash]
        return len(old)

    def add_message(self, message: StoredMessage) -> bool:
        tables = self._tables()
        if message.message_id in tables.messages:
            return False
        stored = dataclasses.replace(
            message,
            chat=bytes(message.chat),
            author=bytes(message.author),
            direction=Direction(message.direction),
            forward_secret=bool(message.forward_secret),
            state=DeliveryState(message.state),
        )
        tables.messages = self._own(tables.messages)
        tables.messages[message.message_id] = stored
        return True

    def set_message_state(self, message_id: str, state: DeliveryState, *,
                          only_from: Collection[DeliveryState] | None = None) -> bool:
        tables = self._tables()
        message = tables.messages.get(message_id)
        if message is None or (only_from is not None and message.state not in only_from):
            return False
        tables.messages = self._own(tables.messages)
        tables.messages[message_id] = dataclasses.replace(message, state=DeliveryState(state))
        return True

    def enqueue(self, item: OutboxItem) -> None:
        tables = self._tables()
        envelope_hash = bytes(item.envelope_hash)
        if envelope_hash in tables.outbox:
            return
        # One above the highest present, as SQLite numbers a rowid: a discarded transaction takes none.
        sequence = next(reversed(tables.outbox.values())).sequence + 1 if tables.outbox else 1
        tables.outbox = self._own(tables.outbox)
        tables.outbox[envelope_hash] = dataclasses.replace(
            item,
            envelope_hash=envelope_hash,
            topic=bytes(item.topic),
            waku_message=bytes(item.waku_message),
            sequence=sequence,
        )

    def reschedule(self, envelope_hash: bytes, attempts: int, next_attempt_ns: int) -> None:
        tables = self._tables()
        item = tables.outbox.get(bytes(envelope_hash))
        if item is None:
            return
        tables.outbox = self._own(tables.outbox)
        tables.outbox[item.envelope_hash] = dataclasses.replace(
            item, attempts=int(attempts), next_attempt_ns=int(next_attempt_ns)
        )

    def dequeue(self, envelope_hash: bytes) -> bool:
        tables = self._tables()
        if bytes(envelope_hash) not in tables.outbox:
            return False
        tables.outbox = self._own(tables.outbox)
        del tables.outbox[bytes(envelope_hash)]
        return True


class MemorySessionStore(_MemoryReader, SessionStore):
    """A session store that lives and dies with the process.

    While a transaction is open, read through its writer: reading the store itself raises ``RuntimeError``,
    as the SQLCipher store does. ``commit_hook``, if set, is called just before a transaction's writes are
    applied; whatever it raises propagates out of the ``with`` block and nothing is applied.
    """

    def __init__(self, *, commit_hook: Callable[[], None] | None = None) -> None:
        self.commit_hook = commit_hook
        self._committed: _Tables | None = _Tables()
        self._in_transaction = False
        self._next_commit_failure: BaseException | None = None
        self.durable_calls = 0
        """How many times :meth:`make_durable` was called."""

    def fail_next_commit(self, exc: BaseException) -> None:
        """Make the next commit raise ``exc`` instead of applying anything (once), e.g. ``DiskFull()``."""
        self._next_commit_failure = exc

    def _live(self) -> _Tables:
        if self._committed is None:
            raise RuntimeError("the store is closed")
        return self._committed

    def _tables(self) -> _Tables:
        if self._in_transaction:
            raise RuntimeError("a store transaction is open: read through its writer")
        return self._live()

    @contextmanager
    def transaction(self) -> Iterator[StoreWriter]:
        """Writes inside are applied together when the block exits normally; any exception discards them all."""
        committed = self._live()
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        writer = _MemoryWriter(committed)
        self._in_transaction = True
        try:
            yield writer
            failure, self._next_commit_failure = self._next_commit_failure, None
            if failure is not None:
                raise failure
            if self.commit_hook is not None:
                self.commit_hook()
            self._live()  # closed meanwhile: nothing to commit to
            self._committed = writer._tables()
        finally:
            self._in_transaction = False
            writer._end()

    def make_durable(self) -> None:
        """Nothing to sync: what is committed here lives exactly as long as the process (counted in
        :attr:`durable_calls`, so that tests can see the rule being followed)."""
        sync = self.durability()
        if sync is not None:
            sync()

    def durability(self) -> Callable[[], None] | None:
        """The same nothing, to run later (counted when it runs)."""
        self._live()
        if self._in_transaction:
            raise RuntimeError("make_durable inside a transaction would not cover it")

        def sync() -> None:
            self.durable_calls += 1

        return sync

    def close(self) -> None:
        """Drop the state; later use raises ``RuntimeError`` (closing twice is harmless)."""
        self._committed = None
