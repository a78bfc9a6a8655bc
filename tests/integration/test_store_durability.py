"""The durability rule: nothing leaves the machine before the store state behind it is durable.

* The outbox pump makes the store durable before the first publish of every batch (a fake transport and a
  spying memory store log both into one timeline), publishes in queue order with several acknowledgements in
  flight, starts nothing after a failure, and publishes nothing while the store cannot be made durable.
* The SQLCipher database commits with ``synchronous = NORMAL`` and ``make_durable`` really fsyncs the ``-wal``
  file (``os.fsync`` is spied on: the descriptor it gets is the WAL's inode), once per group of commits; a
  database opened again syncs on its first call, whatever an earlier process left unsynced.
* A commit survives the crash of the process that made it without any ``make_durable``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.runtime import outbox
from engine.runtime.inbox import Inbox
from engine.runtime.outbox import OutboxPump
from engine.sessions.engine import Arrival
from engine.store import errors
from engine.store.database import Database
from engine.store.memory_store import MemorySessionStore
from engine.store.port import OutboxItem
from engine.transport.errors import PublishTimeout
from engine.transport.port import ConnectionState, Envelope, ReceivedEnvelope

KEY = bytes(range(32))
TOPIC = b"\x00\x01\x02\x03"


def item(n: int) -> OutboxItem:
    return OutboxItem(envelope_hash=bytes([n]) * 32, topic=TOPIC, waku_message=b"waku-%d" % n, message_id=None,
                      created_ns=n)


class SpyStore(MemorySessionStore):
    """A memory store that writes each ``make_durable`` into the shared timeline (and can fail it)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.fail_durable: BaseException | None = None

    def durability(self) -> Callable[[], None] | None:
        sync = super().durability()
        assert sync is not None

        def logged() -> None:
            failure, self.fail_durable = self.fail_durable, None
            if failure is not None:
                self.log.append("durable failed")
                raise failure
            sync()
            self.log.append("durable")

        return logged


class FakeEngine:
    """What the pump uses of a SessionEngine, over the spy store."""

    def __init__(self, store: SpyStore) -> None:
        self.store = store
        self.now = 1_000

    def clock(self) -> int:
        return self.now

    def outbox_due(self) -> list[OutboxItem]:
        return self.store.outbox(due_ns=self.now)

    def published_many(self, items: list[OutboxItem]) -> list[Any]:
        with self.store.transaction() as tx:
            for item in items:
                tx.dequeue(item.envelope_hash)
        return []

    def publish_failed(self, item: OutboxItem, retry_in_ns: int) -> None:
        with self.store.transaction() as tx:
            tx.reschedule(item.envelope_hash, item.attempts + 1, self.now + retry_in_ns)

    def enqueue(self, *items: OutboxItem) -> None:
        with self.store.transaction() as tx:
            for one in items:
                tx.enqueue(one)

    # what the inbox uses: envelopes it hands over are recorded in ``received``
    received: list[bytes] | None = None

    def arrive(self, data: bytes) -> Arrival:
        return Arrival(data, None, None, None)

    def budget_key(self, arrival: Arrival) -> bytes | None:
        return None

    def receive_arrivals(self, arrivals: list[Arrival], cursor: tuple[str, int] | None = None) -> list[Any]:
        assert self.received is not None
        self.received.extend(a.data for a in arrivals)
        return []


class FakeTransport:
    """Logs each publish when it starts and when it is acknowledged; ``gate`` holds acknowledgements back."""

    state = ConnectionState.CONNECTED

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail: dict[bytes, BaseException] = {}

    async def publish(self, envelope: Envelope) -> None:
        name = envelope.payload.decode()
        self.log.append(f"publish {name}")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            failure = self.fail.pop(envelope.payload, None)
            if failure is not None:
                raise failure
            await self.gate.wait()
            self.log.append(f"ack {name}")
        finally:
            self.in_flight -= 1


async def _connected() -> None:
    return None


class Harness:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.store = SpyStore(self.log)
        self.engine = FakeEngine(self.store)
        self.transport = FakeTransport(self.log)
        self.pump = OutboxPump(self.engine, self.transport, lambda events: None, _connected)  # type: ignore[arg-type]

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.005)

        await asyncio.wait_for(poll(), timeout)


def run_pump(test: Callable[[Harness], Any]) -> None:
    async def main() -> None:
        harness = Harness()
        task = asyncio.create_task(harness.pump.run())
        try:
            await test(harness)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(main(), 20))


def test_the_pump_makes_the_store_durable_before_each_batch_and_publishes_in_queue_order() -> None:
    async def test(h: Harness) -> None:
        h.engine.enqueue(item(1), item(2), item(3))
        h.pump.wake()
        await h.until(h.pump.drained.is_set)
        publishes = [entry for entry in h.log if entry.startswith(("durable", "publish"))]
        assert publishes == ["durable", "publish waku-1", "publish waku-2", "publish waku-3"]
        assert h.store.outbox() == []
        h.engine.enqueue(item(4), item(5))  # a second batch: synced again before its first publish
        h.pump.wake()
        await h.until(lambda: h.pump.drained.is_set() and not h.store.outbox())
        second = h.log[h.log.index("ack waku-3") + 1 :]
        assert second[0] == "durable"
        assert [e for e in second if e.startswith("publish")] == ["publish waku-4", "publish waku-5"]
        assert h.store.durable_calls == h.pump.batches == 2

    run_pump(test)


def test_publishes_are_pipelined_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "MAX_IN_FLIGHT", 3)

    async def test(h: Harness) -> None:
        h.transport.gate.clear()  # hold every acknowledgement back
        h.engine.enqueue(*(item(n) for n in range(1, 7)))
        h.pump.wake()
        await h.until(lambda: h.transport.in_flight == 3)
        await asyncio.sleep(0.05)
        assert h.transport.in_flight == 3  # no more than the limit
        assert h.log == ["durable", "publish waku-1", "publish waku-2", "publish waku-3"]
        h.transport.gate.set()
        await h.until(lambda: not h.store.outbox())
        assert [e for e in h.log if e.startswith("publish")] == [f"publish waku-{n}" for n in range(1, 7)]
        assert h.transport.most_in_flight == 3
        assert h.log.count("durable") == 1

    run_pump(test)


def test_no_item_is_started_after_a_failure_and_the_failed_one_goes_first_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "MAX_IN_FLIGHT", 2)

    async def test(h: Harness) -> None:
        h.transport.fail[b"waku-2"] = PublishTimeout()
        h.engine.enqueue(*(item(n) for n in range(1, 6)))
        h.pump.wake()
        await h.until(lambda: "ack waku-1" in h.log)
        await asyncio.sleep(0.05)
        assert [e for e in h.log if e.startswith("publish")] == ["publish waku-1", "publish waku-2"]
        assert h.pump.failures == {"publish_timeout": 1}
        assert [i.attempts for i in h.store.outbox()] == [1, 0, 0, 0]  # item 2 rescheduled, 3-5 untouched
        h.engine.now += 10**12  # its backoff is over
        h.pump.wake(everything=True)
        await h.until(lambda: not h.store.outbox())
        retried = h.log[h.log.index("publish waku-2") + 1 :]
        assert retried[0] == "durable"
        assert [e for e in retried if e.startswith("publish")] == [f"publish waku-{n}" for n in range(2, 6)]

    run_pump(test)


def test_nothing_is_published_while_the_store_cannot_be_made_durable() -> None:
    async def test(h: Harness) -> None:
        h.store.fail_durable = errors.DatabaseIOError()
        h.engine.enqueue(item(1))
        h.pump.wake()
        await h.until(lambda: "durable failed" in h.log)
        await asyncio.sleep(0.05)
        assert h.log == ["durable failed"]
        assert h.pump.failures == {errors.DatabaseIOError.code: 1}
        h.pump.wake()  # the next try (after its backoff, or woken) syncs first
        await h.until(lambda: not h.store.outbox())
        assert h.log[1:3] == ["durable", "publish waku-1"]

    run_pump(test)


def test_the_inbox_skips_the_echo_of_what_the_pump_published() -> None:
    async def test(h: Harness) -> None:
        h.engine.enqueue(item(1))
        h.pump.wake()
        await h.until(lambda: not h.store.outbox())
        received: list[bytes] = []
        h.engine.received = received
        inbox = Inbox(h.engine, h.transport, lambda events: None, _connected,  # type: ignore[arg-type]
                      published=h.pump.published)
        burst = [ReceivedEnvelope(TOPIC, b"waku-%d" % n, "id", relay_time_ns=n, sequence=n) for n in (1, 2, 3)]
        inbox._process(burst[:1], keep_position=True)
        inbox._process(burst[1:], keep_position=True)
        assert received == [b"waku-2", b"waku-3"]  # only the envelopes we did not publish reach the engine
        assert inbox.echoes == 1 and inbox.processed == 3
        assert b"waku-1" in h.pump.published

    run_pump(test)


# --- SQLCipher ----------------------------------------------------------------------------------------------------


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


class FsyncSpy:
    """Records the (device, inode) of every descriptor given to ``os.fsync``, then syncs it for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[tuple[int, int]] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            info = os.fstat(fd)
            self.synced.append((info.st_dev, info.st_ino))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    @staticmethod
    def inode(path: Path) -> tuple[int, int]:
        info = path.stat()
        return info.st_dev, info.st_ino


def test_commits_do_not_sync_and_make_durable_fsyncs_the_wal_once_per_group(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    with Database.open(path, KEY, create=True) as db:
        assert db.query_one("PRAGMA synchronous") == (1,)  # NORMAL
        db.make_durable()  # first call: syncs whatever is there
        spy = FsyncSpy(monkeypatch)
        for n in range(3):
            with db.transaction() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", b"v"))
        assert spy.synced == []  # Python's fsync is not SQLite's, but nothing here asked for one
        syncs = db.durable_syncs
        db.make_durable()
        assert spy.synced == [spy.inode(_wal(path))]  # one fsync, of the WAL, for the three commits
        db.make_durable()  # nothing committed since: nothing to sync
        assert len(spy.synced) == 1 and db.durable_syncs == syncs + 1
        with db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('k9', x'00')")
        db.make_durable()
        assert spy.synced == [spy.inode(_wal(path))] * 2


def test_the_first_make_durable_syncs_the_wal_and_its_folder_even_with_nothing_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    Database.open(path, KEY, create=True).close()
    with Database.open(path, KEY) as db:  # an earlier process may have committed without syncing
        spy = FsyncSpy(monkeypatch)
        db.make_durable()
        assert spy.inode(_wal(path)) in spy.synced
        assert spy.inode(tmp_path) in spy.synced  # the folder, so that the WAL file itself is durable
        with pytest.raises(RuntimeError, match="transaction"), db.transaction():
            db.make_durable()


def test_a_failed_sync_is_a_typed_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Database.open(tmp_path / "a.db", KEY, create=True) as db:

        def broken(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(errors.DatabaseIOError):
            db.make_durable()


_COMMIT_THEN_CRASH = """
import os, sys
from pathlib import Path
from engine.store.database import Database
db = Database.open(Path(sys.argv[1]), bytes(range(32)))
with db.transaction() as tx:
    tx.execute("INSERT INTO meta (key, value) VALUES ('crash', x'01')")
os._exit(0)  # no close, no checkpoint, no make_durable
"""


def test_a_commit_survives_a_crash_of_the_process_without_make_durable(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Database.open(path, KEY, create=True).close()
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", _COMMIT_THEN_CRASH, str(path)], check=True, cwd=root)
    with Database.open(path, KEY) as db:
        assert db.query_one("SELECT value FROM meta WHERE key = 'crash'") == (b"\x01",)


def test_the_sync_half_of_durability_runs_on_another_thread_even_after_the_database_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    db = Database.open(path, KEY, create=True)
    db.make_durable()
    assert db.durability() is None  # nothing committed since the last sync
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('k', x'00')")
    spy = FsyncSpy(monkeypatch)
    sync = db.durability()
    assert sync is not None and spy.synced == []  # the first half does not wait on the disk
    wal = spy.inode(_wal(path))
    db.close()  # the pump may be cancelled and the profile closed while its sync is under way
    asyncio.run(asyncio.to_thread(sync))
    assert spy.synced == [wal]


def test_a_sync_that_fails_on_its_thread_is_the_same_typed_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with Database.open(tmp_path / "a.db", KEY, create=True) as db:
        db.make_durable()
        with db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('k', x'00')")
        sync = db.durability()
        assert sync is not None

        def broken(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(errors.DiskFull):
            asyncio.run(asyncio.to_thread(sync))
        monkeypatch.undo()
        assert db.durability() is not None  # not durable yet: the next call syncs again
