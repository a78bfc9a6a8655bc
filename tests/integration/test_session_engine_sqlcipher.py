"""The session engine on the real encrypted store: conversations survive closing and reopening the databases,
plaintext and keys never reach the files unencrypted, and the databases stay intact."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.protocol import waku
from engine.protocol.state import Table
from engine.sessions.accounts import create_account
from engine.sessions.engine import SessionEngine
from engine.sessions.events import Event, MessageReceived
from engine.store import sqlcipher_store
from engine.store.database import Database, side_files
from engine.store.errors import DiskFull
from engine.store.port import Direction, StoredMessage
from engine.store.sqlcipher_store import SqlCipherSessionStore
from tests.helpers import SeededEntropy

T0 = 1_767_225_600 * 10**9
SECOND = 10**9


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += SECOND  # every reading is a second later: distinct, increasing timestamps
        return self.now


@dataclass
class Installation:
    """One account on its own SQLCipher database; ``runs`` counts the (re)starts, each with fresh entropy."""

    name: str
    path: Path
    clock: Clock
    store: SqlCipherSessionStore | None = None
    engine: SessionEngine | None = None
    runs: int = 0
    inbox: list[StoredMessage] = field(default_factory=list)

    @property
    def key(self) -> bytes:
        return hashlib.sha256(f"database key of {self.name}".encode()).digest()

    def start(self, *, create: bool = False) -> SessionEngine:
        self.store = SqlCipherSessionStore(Database.open(self.path, key=self.key, create=create))
        entropy = SeededEntropy(f"sqlcipher-{self.name}-run-{self.runs}")  # never the same randomness twice
        self.runs += 1
        if create:
            create_account(self.store, entropy, self.clock(), device_name=self.name)
        self.engine = SessionEngine(self.store, entropy, self.clock)
        return self.engine

    def stop(self) -> None:
        assert self.store is not None
        self.store.close()
        self.store = self.engine = None

    @property
    def running(self) -> SessionEngine:
        assert self.engine is not None
        return self.engine

    @property
    def identity(self) -> bytes:
        return self.running.identity

    def receive(self, data: bytes) -> list[Event]:
        events = self.running.receive(data)
        self.inbox.extend(e.message for e in events if isinstance(e, MessageReceived))
        return events

    def file_bytes(self) -> bytes:
        """The database file and its side files (WAL, shared memory), as they are on disk now."""
        return b"".join(p.read_bytes() for p in [self.path, *side_files(self.path)] if p.exists())


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Installation, Installation]]:
    clock = Clock()
    alice = Installation("alice", tmp_path / "alice.db", clock)
    bob = Installation("bob", tmp_path / "bob.db", clock)
    alice.start(create=True)
    bob.start(create=True)
    yield alice, bob
    for installation in (alice, bob):
        if installation.store is not None:
            installation.stop()


def publish(sender: Installation) -> list[bytes]:
    """Everything in the sender's outbox, acknowledged by the (imaginary) relay."""
    published = []
    for item in sender.running.outbox_due():
        published.append(item.waku_message)
        sender.running.published(item)
    return published


def deliver(data: bytes, *receivers: Installation) -> None:
    topic = waku.WakuMessage.from_bytes(data).content_topic
    for receiver in receivers:
        if topic in receiver.running.core.subscriptions():
            receiver.receive(data)


def say(sender: Installation, peer: Installation, text: str) -> StoredMessage:
    """Send ``text``, deliver everything both ways until quiet, and return the peer's copy of it."""
    sent = sender.running.send_text(peer.identity, text)
    for _ in range(5):
        envelopes = publish(sender) + publish(peer)
        if not envelopes:
            break
        for data in envelopes:
            deliver(data, sender, peer)
    [shown] = [m for m in peer.inbox if m.message_id == sent.message_id]
    assert shown.text == text
    return shown


def test_a_conversation_survives_closing_and_reopening_both_databases(pair: tuple[Installation, Installation]) -> None:
    alice, bob = pair
    said: list[tuple[Installation, str]] = []

    def talk(sender: Installation, peer: Installation, text: str) -> StoredMessage:
        said.append((sender, text))
        return say(sender, peer, text)

    before = [talk(alice, bob, "hello by chat key"), talk(bob, alice, "hi"), talk(alice, bob, "how are you?")]
    assert [m.forward_secret for m in before] == [False, True, True]
    said.append((alice, "published before the restart, delivered after"))
    in_flight = alice.running.send_text(bob.identity, said[-1][1])
    [in_flight_envelope] = publish(alice)
    said.append((bob, "queued before the restart, published after"))
    queued = bob.running.send_text(alice.identity, said[-1][1])
    sessions = {i.name: list(i.running.store.records(Table.SESSIONS)) for i in pair}
    identities = [i.identity for i in pair]

    for installation in pair:
        installation.stop()
        installation.start()

    assert [i.identity for i in pair] == identities
    assert {i.name: list(i.running.store.records(Table.SESSIONS)) for i in pair} == sessions
    deliver(in_flight_envelope, bob)
    assert bob.inbox[-1].message_id == in_flight.message_id and bob.inbox[-1].forward_secret
    [item] = bob.running.outbox_due()  # the outbox was committed with the message
    assert item.message_id == queued.message_id
    for data in publish(bob):
        deliver(data, alice)
    assert alice.inbox[-1].message_id == queued.message_id and alice.inbox[-1].forward_secret

    after = [talk(alice, bob, "still there?"), talk(bob, alice, "yes"), talk(alice, bob, "good")]
    assert all(m.forward_secret for m in after)
    assert not alice.running.rejections and not bob.running.rejections
    # A store lists a chat in the order its messages were committed: bob stored his queued message before
    # he received alice's in-flight one.
    committed = {"alice": said, "bob": [*said[:3], said[4], said[3], *said[5:]]}
    for installation, peer in (pair, pair[::-1]):
        stored = installation.running.store.messages(peer.identity)
        assert [m.text for m in stored] == [text for _, text in committed[installation.name]]
        assert [m.direction for m in stored] == [Direction.OUT if sender is installation else Direction.IN
                                                 for sender, _ in committed[installation.name]]


def test_an_envelope_seen_before_the_restart_is_skipped_after_it(pair: tuple[Installation, Installation]) -> None:
    alice, bob = pair
    say(alice, bob, "one")
    say(bob, alice, "two")
    alice.running.send_text(bob.identity, "three")
    [data] = publish(alice)
    deliver(data, bob)
    count = bob.running.store.message_count()
    bob.stop()
    bob.start()
    assert bob.running.receive(data) == []
    assert bob.running.store.message_count() == count
    assert not bob.running.rejections


def test_plaintext_and_keys_never_reach_the_database_files(pair: tuple[Installation, Installation]) -> None:
    alice, bob = pair
    marker = "PLAINTEXT-MARKER-" + hashlib.sha256(b"marker").hexdigest()[:16]
    say(alice, bob, "hello")
    say(bob, alice, "hi")
    sent = say(alice, bob, f"{marker} from alice")
    reply = say(bob, alice, f"{marker} from bob")
    secrets = {
        "alice's identity key": alice.running.account.identity.private,
        "bob's identity key": bob.running.account.identity.private,
        "a prekey": alice.running.core.state.own_prekeys[0].key.private,
        "a root key": next(iter(bob.running.core.state.sessions.values())).ratchet.root_key,
    }
    assert bob.running.store.message(sent.message_id).text.startswith(marker)  # type: ignore[union-attr]
    assert alice.running.store.message(reply.message_id).text.startswith(marker)  # type: ignore[union-attr]

    open_files = {i.name: i.file_bytes() for i in pair}
    assert all(any(p.exists() for p in side_files(i.path)) for i in pair)  # WAL mode: side files in use
    for installation in pair:
        installation.stop()
    closed_files = {i.name: i.file_bytes() for i in pair}

    for name, data in [*open_files.items(), *closed_files.items()]:
        assert data, f"{name}: no bytes read"
        assert marker.encode() not in data, f"{name}: the plaintext is in the file"
        for what, secret in secrets.items():
            assert secret not in data, f"{name}: {what} is in the file"


def test_a_failed_commit_on_sqlcipher_rolls_back_and_the_engine_goes_on(
        pair: tuple[Installation, Installation], monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = pair
    say(alice, bob, "one")
    say(bob, alice, "two")
    alice.running.send_text(bob.identity, "arrives while the disk is full")
    [data] = publish(alice)
    store = bob.running.store
    records = {kind: list(store.records(kind)) for kind in Table}
    count = store.message_count()

    original = sqlcipher_store._SqlWriter.add_message
    calls = []

    def full(self: sqlcipher_store._SqlWriter, message: StoredMessage) -> bool:
        calls.append(message.message_id)
        original(self, message)  # written inside the transaction, then the disk fills up
        raise DiskFull()

    monkeypatch.setattr(sqlcipher_store._SqlWriter, "add_message", full)
    with pytest.raises(DiskFull):
        bob.running.receive(data)
    monkeypatch.undo()

    assert calls
    assert {kind: list(store.records(kind)) for kind in Table} == records
    assert store.message_count() == count
    assert not store.has_seen(waku.WakuMessage.from_bytes(data).hash())
    bob.receive(data)
    assert bob.inbox[-1].text == "arrives while the disk is full"
    say(alice, bob, "next")
    say(bob, alice, "answer")
    assert not alice.running.rejections and not bob.running.rejections


def test_the_databases_pass_the_integrity_check_after_a_long_conversation(
        pair: tuple[Installation, Installation]) -> None:
    alice, bob = pair
    for round_ in range(10):
        say(alice, bob, f"ping {round_}")
        say(bob, alice, f"pong {round_}")
        if round_ == 5:
            for installation in pair:
                installation.stop()
                installation.start()
    for installation in pair:
        assert installation.store is not None
        database = installation.store.database
        assert [tuple(row) for row in database.query("PRAGMA integrity_check")] == [("ok",)]
        database.check_integrity(quick=False)
    assert bob.running.store.message_count() == alice.running.store.message_count() == 20
