"""The session store contract, run against both adapters: the SQLCipher database and the in-memory store.

One set of tests for both; a hypothesis property then drives both with the same random operations (some
transactions aborted) and requires the same answers. SQLCipher persistence and the memory store's fault hook
have their own tests.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.keyring import KeyCustody
from engine.store import errors
from engine.store.database import Database
from engine.store.memory_store import MemorySessionStore
from engine.store.migrations import MIGRATIONS
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

ALICE = bytes([2]) + bytes(range(32))
BOB = bytes([3]) + bytes(range(32, 64))
MARKER = "PLAINTEXT-MARKER-5e1b7d"
ADAPTERS = ["memory", "sqlcipher"]


def new_sqlcipher_store(directory: Path) -> SqlCipherSessionStore:
    return SqlCipherSessionStore(Database.open(directory / "store.db", key=os.urandom(32), create=True))


def new_store(adapter: str, directory: Path) -> SessionStore:
    return MemorySessionStore() if adapter == "memory" else new_sqlcipher_store(directory)


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    opened = new_store(request.param, tmp_path)
    yield opened
    opened.close()


def message_id(n: int) -> str:
    return f"0x{n:064x}"


def message(n: int, chat: bytes = ALICE, **changes: Any) -> StoredMessage:
    base = StoredMessage(
        message_id=message_id(n),
        chat=chat,
        author=chat,
        author_installation=f"installation-{n}",
        direction=Direction.IN,
        text=f"message {n} ✓",
        clock=1000 - n,  # decreasing: the order must be insertion order, not the clock
        timestamp_ms=1_700_000_000_000 + n,
        received_ns=1_700_000_000_000_000_000 + n,
        forward_secret=True,
        state=DeliveryState.RECEIVED,
    )
    return replace(base, **changes)


def item(n: int, **changes: Any) -> OutboxItem:
    base = OutboxItem(
        envelope_hash=bytes([n]) * 32,
        topic=b"\x00\x01\x02\x03",
        waku_message=b"waku-" + bytes([n]),
        message_id=message_id(n),
        created_ns=100 + n,
        next_attempt_ns=10 * n,
    )
    return replace(base, **changes)


def write(store: SessionStore, action: Callable[[StoreWriter], object]) -> object:
    """Run ``action`` in its own committed transaction; return what it returned."""
    with store.transaction() as tx:
        return action(tx)


class Abort(Exception):
    """Raised inside a transaction to abort it."""


def observe(reader: StoreReader) -> dict[str, object]:
    """Everything the tests write, as read through ``reader`` (the store, or a transaction's writer)."""
    return {
        "records": {kind: list(reader.records(kind)) for kind in ("a", "b")},
        "record": [reader.record(kind, key) for kind in ("a", "b") for key in (b"", b"k1", b"k2", b"\xff")],
        "meta": [reader.meta(key) for key in ("m1", "m2")],
        "cursors": [reader.cursor(name) for name in ("c1", "c2")],
        "seen": [reader.has_seen(h) for h in (b"h1", b"h2", b"h3")],
        "seen_any": [reader.has_seen(*hs) for hs in ((), (b"h3", b"h1"), (b"h2", b"h3"), (b"h3", b"h4"))],
        "message": [reader.message(message_id(n)) for n in range(6)],
        "messages": [reader.messages(chat, limit=limit) for chat in (ALICE, BOB) for limit in (None, 0, 2)],
        "message_count": reader.message_count(),
        "outbox": reader.outbox(),
        "due": [reader.outbox(due_ns=due) for due in (0, 6)],
    }


def populate(tx: StoreWriter) -> None:
    tx.put_record("a", b"k1", b"v1")
    tx.put_record("b", b"k2", b"v2")
    tx.put_meta("m1", b"meta")
    tx.set_cursor("c1", 7)
    tx.mark_seen(b"h1", 5)
    tx.add_message(message(0))
    tx.add_message(message(1, BOB))
    tx.enqueue(item(1))


def write_everything(tx: StoreWriter) -> None:
    """One call of every write method, each changing something :func:`populate` made."""
    tx.put_record("a", b"k1", b"changed")
    tx.put_record("a", b"k2", b"new")
    tx.delete_record("b", b"k2")
    tx.put_meta("m1", b"changed")
    tx.put_meta("m2", b"new")
    tx.set_cursor("c1", 8)
    tx.set_cursor("c2", 1)
    assert tx.mark_seen(b"h2", 6)
    assert tx.forget_seen(6) == 1
    assert tx.add_message(message(2))
    assert tx.set_message_state(message_id(0), DeliveryState.DELIVERED)
    tx.enqueue(item(2))
    tx.reschedule(item(1).envelope_hash, 3, 0)
    assert tx.dequeue(item(2).envelope_hash)


# --- records, meta, cursors -------------------------------------------------------------------------------------


def test_records_put_replace_delete_in_key_order(store: SessionStore) -> None:
    keys = [b"b", b"\xff", b"", b"a\x00", b"a", b"\x00\x01", b"ab"]
    with store.transaction() as tx:
        for index, key in enumerate(keys):
            tx.put_record("sessions", key, bytes([index]))
    assert [key for key, _ in store.records("sessions")] == sorted(keys)
    assert store.record("sessions", b"a\x00") == bytes([3])
    assert store.record("sessions", b"missing") is None

    with store.transaction() as tx:
        tx.put_record("sessions", b"a", b"replaced")
        tx.delete_record("sessions", b"b")
        tx.delete_record("sessions", b"not there")  # no error
    assert store.record("sessions", b"a") == b"replaced"
    assert store.record("sessions", b"b") is None
    assert len(list(store.records("sessions"))) == len(keys) - 1

    with store.transaction() as tx:  # deleting while iterating is safe
        for key, _ in tx.records("sessions"):
            tx.delete_record("sessions", key)
    assert list(store.records("sessions")) == []


def test_record_kinds_are_isolated(store: SessionStore) -> None:
    class Kind(StrEnum):
        SESSIONS = "sessions"

    with store.transaction() as tx:
        tx.put_record(Kind.SESSIONS, b"k", b"session")
        tx.put_record("prekeys", b"k", b"prekey")
    assert store.record("sessions", b"k") == b"session"
    assert store.record("prekeys", b"k") == b"prekey"
    assert list(store.records(Kind.SESSIONS)) == [(b"k", b"session")]
    assert list(store.records("other")) == []
    write(store, lambda tx: tx.delete_record("prekeys", b"k"))
    assert store.record("sessions", b"k") == b"session"
    assert list(store.records("prekeys")) == []


def test_meta(store: SessionStore) -> None:
    assert store.meta("account") is None
    write(store, lambda tx: tx.put_meta("account", b"\x00first"))
    assert store.meta("account") == b"\x00first"
    write(store, lambda tx: tx.put_meta("account", b""))
    assert store.meta("account") == b""
    assert store.meta("other") is None


def test_cursors(store: SessionStore) -> None:
    assert store.cursor("relay") is None
    write(store, lambda tx: tx.set_cursor("relay", 0))
    assert store.cursor("relay") == 0
    write(store, lambda tx: tx.set_cursor("relay", 2**63 - 1))
    assert store.cursor("relay") == 2**63 - 1
    write(store, lambda tx: tx.set_cursor("relay", 12))
    assert store.cursor("relay") == 12
    assert store.cursor("other") is None


# --- seen envelopes ---------------------------------------------------------------------------------------------


def test_mark_seen_is_false_on_repeat(store: SessionStore) -> None:
    assert not store.has_seen(b"h1")
    assert write(store, lambda tx: tx.mark_seen(b"h1", 10)) is True
    assert store.has_seen(b"h1")
    with store.transaction() as tx:
        assert tx.mark_seen(b"h1", 50) is False
        assert tx.mark_seen(b"h2", 20) is True
    # The repeat kept the first time: h1 (10) is older than 15, h2 (20) is not.
    assert write(store, lambda tx: tx.forget_seen(15)) == 1
    assert not store.has_seen(b"h1")
    assert store.has_seen(b"h2")


def test_forget_seen_drops_only_older_ones(store: SessionStore) -> None:
    with store.transaction() as tx:
        for n, seen_ns in enumerate([5, 10, 10, 11, 3]):
            tx.mark_seen(bytes([n]), seen_ns)
    assert write(store, lambda tx: tx.forget_seen(3)) == 0
    assert write(store, lambda tx: tx.forget_seen(10)) == 2  # 5 and 3; 10 is not older than 10
    assert [store.has_seen(bytes([n])) for n in range(5)] == [False, True, True, True, False]
    assert write(store, lambda tx: tx.forget_seen(10)) == 0
    assert write(store, lambda tx: tx.forget_seen(100)) == 3
    assert not any(store.has_seen(bytes([n])) for n in range(5))


# --- messages ---------------------------------------------------------------------------------------------------


def test_add_message_round_trips_every_field(store: SessionStore) -> None:
    stored = [
        message(1, text=MARKER, direction=Direction.IN, forward_secret=False, state=DeliveryState.RECEIVED),
        message(2, author=BOB, direction=Direction.OUT, state=DeliveryState.QUEUED, author_installation=""),
        message(3, direction=Direction.OUT_COPY, state=DeliveryState.SENT, text="", clock=2**63 - 1),
        message(4, direction=Direction.OUT, state=DeliveryState.DELIVERED, text="emoji 🔐 and \x00 nul"),
    ]
    with store.transaction() as tx:
        assert all(tx.add_message(m) for m in stored)
    for m in stored:
        got = store.message(m.message_id)
        assert got == m
        assert got is not None and type(got.direction) is Direction and type(got.state) is DeliveryState
        assert type(got.forward_secret) is bool
    assert store.message(message_id(99)) is None


def test_add_message_duplicate_returns_false_and_changes_nothing(store: SessionStore) -> None:
    first, second = message(1), message(2)
    write(store, lambda tx: (tx.add_message(first), tx.add_message(second)))
    duplicate = replace(first, text="other", state=DeliveryState.SENT, clock=0)
    assert write(store, lambda tx: tx.add_message(duplicate)) is False
    assert store.message(first.message_id) == first
    assert store.messages(ALICE) == [first, second]  # the duplicate did not move it to the end
    assert store.message_count() == 2


def test_messages_are_oldest_first_per_chat_and_limit_keeps_the_newest(store: SessionStore) -> None:
    alice = [message(n) for n in range(5)]
    bob = [message(n, BOB) for n in range(5, 8)]
    with store.transaction() as tx:
        for a, b in zip(alice, [*bob, None, None], strict=True):
            tx.add_message(a)
            if b is not None:
                tx.add_message(b)
    assert store.messages(ALICE) == alice
    assert store.messages(BOB) == bob
    assert store.messages(ALICE, limit=2) == alice[3:]
    assert store.messages(ALICE, limit=1) == alice[4:]
    assert store.messages(ALICE, limit=0) == []
    assert store.messages(ALICE, limit=5) == alice
    assert store.messages(ALICE, limit=50) == alice
    assert store.messages(b"\x02" + bytes(32)) == []
    with pytest.raises(ValueError, match="negative"):
        store.messages(ALICE, limit=-1)


def test_set_message_state(store: SessionStore) -> None:
    first, second = message(1, direction=Direction.OUT, state=DeliveryState.QUEUED), message(2)
    write(store, lambda tx: (tx.add_message(first), tx.add_message(second)))
    assert write(store, lambda tx: tx.set_message_state(first.message_id, DeliveryState.SENT)) is True
    assert store.message(first.message_id) == replace(first, state=DeliveryState.SENT)
    assert store.messages(ALICE) == [replace(first, state=DeliveryState.SENT), second]  # order kept
    assert write(store, lambda tx: tx.set_message_state(first.message_id, DeliveryState.SENT)) is True
    assert write(store, lambda tx: tx.set_message_state(message_id(9), DeliveryState.SENT)) is False
    assert store.message(message_id(9)) is None
    assert store.message(second.message_id) == second


def test_set_message_state_only_from(store: SessionStore) -> None:
    queued = message(1, direction=Direction.OUT, state=DeliveryState.QUEUED)
    write(store, lambda tx: tx.add_message(queued))
    undelivered = (DeliveryState.QUEUED, DeliveryState.SENT)
    assert write(store, lambda tx: tx.set_message_state(queued.message_id, DeliveryState.SENT,
                                                        only_from=(DeliveryState.QUEUED,))) is True
    assert write(store, lambda tx: tx.set_message_state(queued.message_id, DeliveryState.SENT,
                                                        only_from=(DeliveryState.QUEUED,))) is False
    assert write(store, lambda tx: tx.set_message_state(queued.message_id, DeliveryState.DELIVERED,
                                                        only_from=undelivered)) is True
    # Never back: a delivered message stays delivered when a late relay acknowledgement says "sent".
    assert write(store, lambda tx: tx.set_message_state(queued.message_id, DeliveryState.SENT,
                                                        only_from=undelivered)) is False
    assert store.message(queued.message_id) == replace(queued, state=DeliveryState.DELIVERED)
    assert write(store, lambda tx: tx.set_message_state(message_id(9), DeliveryState.SENT,
                                                        only_from=undelivered)) is False


def test_message_count(store: SessionStore) -> None:
    assert store.message_count() == 0
    write(store, lambda tx: [tx.add_message(message(n, ALICE if n % 2 else BOB)) for n in range(7)])
    assert store.message_count() == 7
    write(store, lambda tx: tx.add_message(message(3)))
    assert store.message_count() == 7


# --- outbox -----------------------------------------------------------------------------------------------------


def test_outbox_is_oldest_first_and_ignores_a_duplicate_hash(store: SessionStore) -> None:
    with store.transaction() as tx:
        tx.enqueue(item(3, sequence=99))  # the store assigns the sequence
        tx.enqueue(item(1))
        tx.enqueue(item(2, message_id=None, attempts=4))
        tx.enqueue(item(1, waku_message=b"other", next_attempt_ns=0))  # same hash: ignored
    items = store.outbox()
    assert [i.envelope_hash for i in items] == [item(n).envelope_hash for n in (3, 1, 2)]
    assert items[0].sequence < items[1].sequence < items[2].sequence
    assert items[1] == replace(item(1), sequence=items[1].sequence)
    assert items[2] == replace(item(2, message_id=None, attempts=4), sequence=items[2].sequence)


def test_outbox_due_filter_reschedule_and_dequeue(store: SessionStore) -> None:
    write(store, lambda tx: [tx.enqueue(item(n)) for n in (1, 2, 3)])  # next attempts at 10, 20, 30
    hashes = {n: item(n).envelope_hash for n in (1, 2, 3)}
    assert [i.envelope_hash for i in store.outbox(due_ns=20)] == [hashes[1], hashes[2]]
    assert store.outbox(due_ns=9) == []
    assert store.outbox(due_ns=30) == store.outbox()

    write(store, lambda tx: tx.reschedule(hashes[1], 1, 25))
    write(store, lambda tx: tx.reschedule(b"unknown", 1, 25))  # no error, no item
    rescheduled = store.outbox()[0]
    assert (rescheduled.envelope_hash, rescheduled.attempts, rescheduled.next_attempt_ns) == (hashes[1], 1, 25)
    assert [i.envelope_hash for i in store.outbox(due_ns=20)] == [hashes[2]]
    assert [i.envelope_hash for i in store.outbox(due_ns=25)] == [hashes[1], hashes[2]]  # order kept

    assert write(store, lambda tx: tx.dequeue(hashes[2])) is True
    assert write(store, lambda tx: tx.dequeue(hashes[2])) is False
    write(store, lambda tx: tx.enqueue(item(4)))
    assert [i.envelope_hash for i in store.outbox()] == [hashes[1], hashes[3], item(4).envelope_hash]
    assert [i.sequence for i in store.outbox()] == [1, 3, 4]  # one above every item present
    write(store, lambda tx: [tx.dequeue(item(n).envelope_hash) for n in (3, 4)])
    write(store, lambda tx: tx.enqueue(item(5)))
    assert [(i.envelope_hash, i.sequence) for i in store.outbox()] == [(hashes[1], 1), (item(5).envelope_hash, 2)]


# --- transactions -----------------------------------------------------------------------------------------------


def test_an_exception_rolls_back_every_kind_of_write(store: SessionStore) -> None:
    write(store, populate)
    before = observe(store)
    with pytest.raises(Abort), store.transaction() as tx:
        write_everything(tx)
        assert observe(tx) != before
        raise Abort
    assert observe(store) == before
    # Nothing of the aborted transaction is left, not even the outbox sequence it used.
    reference = MemorySessionStore()
    write(reference, populate)
    write(reference, lambda tx: tx.enqueue(item(5)))
    write(store, lambda tx: tx.enqueue(item(5)))
    assert store.outbox() == reference.outbox()


def test_a_committed_transaction_applies_every_kind_of_write(store: SessionStore) -> None:
    write(store, populate)
    before = observe(store)
    with store.transaction() as tx:
        write_everything(tx)
        inside = observe(tx)
    assert inside != before
    assert observe(store) == inside


def test_a_transaction_sees_its_own_writes(store: SessionStore) -> None:
    with store.transaction() as tx:
        tx.put_record("a", b"k", b"v")
        assert tx.record("a", b"k") == b"v"
        assert list(tx.records("a")) == [(b"k", b"v")]
        tx.put_meta("m", b"x")
        assert tx.meta("m") == b"x"
        tx.set_cursor("c", 3)
        assert tx.cursor("c") == 3
        tx.mark_seen(b"h", 1)
        assert tx.has_seen(b"h")
        tx.add_message(message(1))
        assert tx.message(message_id(1)) == message(1)
        assert tx.messages(ALICE) == [message(1)]
        assert tx.message_count() == 1
        tx.set_message_state(message_id(1), DeliveryState.SENT)
        assert tx.message(message_id(1)) == message(1, state=DeliveryState.SENT)
        tx.enqueue(item(1))
        assert [i.envelope_hash for i in tx.outbox(due_ns=10)] == [item(1).envelope_hash]
        tx.dequeue(item(1).envelope_hash)
        assert tx.outbox() == []
        tx.delete_record("a", b"k")
        assert tx.record("a", b"k") is None


def test_reads_outside_a_transaction_see_only_committed_data(store: SessionStore) -> None:
    write(store, lambda tx: tx.put_meta("m", b"committed"))
    with store.transaction() as tx:
        tx.put_meta("m", b"pending")
        with pytest.raises(RuntimeError, match="read through its writer"):
            store.meta("m")  # the store refuses rather than show the pending write
        with pytest.raises(RuntimeError, match="read through its writer"):
            store.outbox()
    assert store.meta("m") == b"pending"
    with pytest.raises(Abort), store.transaction() as tx:
        tx.put_meta("m", b"aborted")
        raise Abort
    assert store.meta("m") == b"pending"


def test_transactions_do_not_nest(store: SessionStore) -> None:
    with pytest.raises(RuntimeError, match="do not nest"), store.transaction() as tx:
        tx.put_meta("m", b"outer")
        with store.transaction():
            pass
    assert store.meta("m") is None
    write(store, lambda tx: tx.put_meta("m", b"after"))  # the store is usable again
    assert store.meta("m") == b"after"


def test_a_writer_is_unusable_after_its_block(store: SessionStore) -> None:
    with store.transaction() as tx:
        tx.put_meta("m", b"x")
    with pytest.raises(RuntimeError, match="ended"):
        tx.put_meta("m", b"late")
    with pytest.raises(RuntimeError, match="ended"):
        tx.meta("m")
    assert store.meta("m") == b"x"


def test_a_closed_store_refuses_use(store: SessionStore) -> None:
    store.close()
    store.close()  # harmless
    with pytest.raises(RuntimeError, match="closed"):
        store.meta("m")
    with pytest.raises(RuntimeError, match="closed"), store.transaction():
        pass


def test_make_durable_keeps_what_is_committed_and_is_refused_inside_a_transaction(store: SessionStore) -> None:
    store.make_durable()  # nothing committed yet: harmless
    write(store, lambda tx: tx.enqueue(item(1)))
    store.make_durable()
    store.make_durable()  # again with nothing new: harmless
    assert [i.envelope_hash for i in store.outbox()] == [item(1).envelope_hash]
    with pytest.raises(RuntimeError, match="transaction"), store.transaction() as tx:
        tx.enqueue(item(2))
        store.make_durable()
    assert [i.envelope_hash for i in store.outbox()] == [item(1).envelope_hash]
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.make_durable()


# --- SQLCipher only ---------------------------------------------------------------------------------------------


def test_migration_3_keeps_every_row_and_its_order(tmp_path: Path) -> None:
    """A profile made before migration 3 (records WITHOUT ROWID, AUTOINCREMENT sequences) reads the same after it,
    and what is written next still comes after what was there."""
    path, key = tmp_path / "store.db", os.urandom(32)
    old = SqlCipherSessionStore(Database.open(path, key, create=True, migrations=MIGRATIONS[:2]))
    write(old, populate)
    write(old, write_everything)
    write(old, lambda tx: [tx.add_message(message(n, BOB if n % 2 else ALICE)) for n in (3, 4, 5)])
    write(old, lambda tx: [tx.put_record("b", os.urandom(32), os.urandom(600)) for _ in range(40)])
    before, extra = observe(old), list(old.records("b"))
    old.close()

    store = SqlCipherSessionStore(Database.open(path, key))
    try:
        assert store.database.schema_version == 3
        assert observe(store) == before and list(store.records("b")) == extra
        write(store, lambda tx: (tx.add_message(message(6, BOB)), tx.enqueue(item(7))))
        assert [m.message_id for m in store.messages(BOB)][-1] == message_id(6)
        assert store.outbox()[-1].envelope_hash == item(7).envelope_hash
        write(store, lambda tx: tx.put_record("b", b"k2", b"again"))
        assert store.record("b", b"k2") == b"again"
        # what the migration is for: no sequence counter rewritten per insert, records kept in rowid order
        assert store.database.query("SELECT name FROM sqlite_sequence") == []
        assert len(store.database.query("SELECT rowid FROM protocol_records")) == len(extra) + 3
    finally:
        store.close()


def test_sqlcipher_store_persists_across_close_and_reopen(tmp_path: Path) -> None:
    path, key = tmp_path / "store.db", os.urandom(32)
    store = SqlCipherSessionStore(Database.open(path, key, create=True))
    write(store, populate)
    write(store, write_everything)
    before = observe(store)
    store.close()
    reopened = SqlCipherSessionStore(Database.open(path, key))
    try:
        assert observe(reopened) == before
        last_sequence = reopened.outbox()[-1].sequence
        write(reopened, lambda tx: tx.enqueue(item(6)))
        assert reopened.outbox()[-1].sequence == last_sequence + 1
    finally:
        reopened.close()


def test_sqlcipher_store_keeps_message_text_off_the_disk_in_clear(tmp_path: Path) -> None:
    store = new_sqlcipher_store(tmp_path)
    write(store, lambda tx: tx.add_message(message(1, text=MARKER)))
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert [p.name for p in files] == ["store.db", "store.db-shm", "store.db-wal"]
    store.close()
    for p in tmp_path.iterdir():
        assert MARKER.encode() not in p.read_bytes(), p
        assert MARKER.encode("utf-16-le") not in p.read_bytes(), p


def test_sqlcipher_store_opens_a_profile(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "alice"
    store = SqlCipherSessionStore.open_profile(profile, "pass", create=True, custody=custody)
    write(store, lambda tx: tx.add_message(message(1)))
    store.close()
    store = SqlCipherSessionStore.open_profile(profile, "pass", custody=custody)
    try:
        assert store.messages(ALICE) == [message(1)]
    finally:
        store.close()


def test_sqlcipher_store_needs_the_session_store_schema(tmp_path: Path) -> None:
    database = Database.open(tmp_path / "old.db", os.urandom(32), create=True, migrations=MIGRATIONS[:1])
    with database, pytest.raises(ValueError, match="schema version 1"):
        SqlCipherSessionStore(database)


def test_sqlcipher_store_surfaces_typed_driver_errors(tmp_path: Path) -> None:
    store = new_sqlcipher_store(tmp_path)
    try:
        with pytest.raises(errors.ConstraintViolation), store.transaction() as tx:
            tx.put_meta("m", "not bytes")  # type: ignore[arg-type]
            tx.put_record("a", b"k", "text is not a blob")  # type: ignore[arg-type]  # STRICT table refuses
        assert store.meta("m") is None
    finally:
        store.close()


# --- memory only: fault injection -------------------------------------------------------------------------------


def test_memory_store_fail_next_commit_discards_the_transaction() -> None:
    store = MemorySessionStore()
    write(store, populate)
    before = observe(store)
    store.fail_next_commit(errors.DiskFull())
    with pytest.raises(errors.DiskFull), store.transaction() as tx:
        write_everything(tx)
    assert observe(store) == before
    write(store, write_everything)  # only the next commit failed
    assert observe(store) != before


def test_memory_store_commit_hook_runs_before_each_commit_and_may_abort_it() -> None:
    calls: list[bool] = []

    def crash_on_second() -> None:
        calls.append(True)
        if len(calls) == 2:
            raise Abort

    store = MemorySessionStore(commit_hook=crash_on_second)
    write(store, lambda tx: tx.put_meta("m", b"1"))
    with pytest.raises(Abort):
        write(store, lambda tx: tx.put_meta("m", b"2"))
    assert store.meta("m") == b"1"
    with pytest.raises(Abort), store.transaction() as tx:  # an aborted block never reaches the hook
        tx.put_meta("m", b"3")
        raise Abort
    assert len(calls) == 2
    store.commit_hook = None
    write(store, lambda tx: tx.put_meta("m", b"4"))
    assert store.meta("m") == b"4"


def test_memory_store_does_not_share_state_between_stores_or_with_callers() -> None:
    first, second = MemorySessionStore(), MemorySessionStore()
    key, value = bytearray(b"k"), bytearray(b"v")
    write(first, lambda tx: tx.put_record("a", key, value))  # type: ignore[arg-type]
    key[0], value[0] = ord("x"), ord("x")
    assert first.record("a", b"k") == b"v"
    assert list(second.records("a")) == []


# --- both adapters, same random operations ----------------------------------------------------------------------

_kinds = st.sampled_from(["a", "b"])
_keys = st.sampled_from([b"", b"k1", b"k2", b"\xff"])
_values = st.binary(max_size=3)
_ns = st.integers(min_value=0, max_value=12)
_hashes = st.sampled_from([b"h1", b"h2", b"h3"])
_ids = st.integers(min_value=0, max_value=5)
_messages = st.builds(
    message,
    _ids,
    st.sampled_from([ALICE, BOB]),
    direction=st.sampled_from(Direction),
    state=st.sampled_from(DeliveryState),
    forward_secret=st.booleans(),
    text=st.text(max_size=4),
)
_items = st.builds(item, st.integers(min_value=1, max_value=4), next_attempt_ns=_ns)
_item_hashes = st.integers(min_value=1, max_value=5).map(lambda n: bytes([n]) * 32)

_operations = st.one_of(
    st.tuples(st.just("put_record"), st.tuples(_kinds, _keys, _values)),
    st.tuples(st.just("delete_record"), st.tuples(_kinds, _keys)),
    st.tuples(st.just("put_meta"), st.tuples(st.sampled_from(["m1", "m2"]), _values)),
    st.tuples(st.just("set_cursor"), st.tuples(st.sampled_from(["c1", "c2"]), st.integers(-(2**63), 2**63 - 1))),
    st.tuples(st.just("mark_seen"), st.tuples(_hashes, _ns)),
    st.tuples(st.just("forget_seen"), st.tuples(_ns)),
    st.tuples(st.just("add_message"), st.tuples(_messages)),
    st.tuples(st.just("set_message_state"), st.tuples(_ids.map(message_id), st.sampled_from(DeliveryState))),
    st.tuples(st.just("set_message_state"), st.tuples(
        _ids.map(message_id), st.sampled_from(DeliveryState),
        st.fixed_dictionaries({"only_from": st.sets(st.sampled_from(DeliveryState)).map(tuple)}))),
    st.tuples(st.just("enqueue"), st.tuples(_items)),
    st.tuples(st.just("reschedule"), st.tuples(_item_hashes, st.integers(0, 9), _ns)),
    st.tuples(st.just("dequeue"), st.tuples(_item_hashes)),
)
_aborts = st.sampled_from([False, False, True])
_transactions = st.lists(st.tuples(st.lists(_operations, max_size=8), _aborts), min_size=1, max_size=10)

Script = list[tuple[list[tuple[str, tuple[Any, ...]]], bool]]


def run(store: SessionStore, script: Script) -> list[object]:
    """Apply ``script`` (operations per transaction, and whether to abort it); return everything observed."""
    seen: list[object] = []
    for operations, abort in script:
        try:
            with store.transaction() as tx:
                for name, args in operations:
                    keywords = args[-1] if args and isinstance(args[-1], dict) else {}
                    seen.append(getattr(tx, name)(*args[: len(args) - bool(keywords)], **keywords))
                seen.append(observe(tx))
                if abort:
                    raise Abort
        except Abort:
            seen.append("aborted")
        seen.append(observe(store))
    return seen


@settings(
    max_examples=150,
    deadline=None,
    derandomize=os.environ.get("SOTTOVOCE_HYPOTHESIS_EXPLORE") != "1",
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_transactions)
def test_both_adapters_answer_the_same(script: Script) -> None:
    with tempfile.TemporaryDirectory() as directory:
        observed = {}
        for adapter in ADAPTERS:
            store = new_store(adapter, Path(directory))
            try:
                observed[adapter] = run(store, script)
            finally:
                store.close()
    assert observed["memory"] == observed["sqlcipher"]
