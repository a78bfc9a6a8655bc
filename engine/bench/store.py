"""``sottovoce bench store``: loading sessions from the SQLCipher store, and the database's size per message.

**Sessions loaded per second.** One account (the hub) makes real sessions with N peers on the encryption
layer (X3DH, then a few Double Ratchet messages each way; half the sessions initiated by the hub, half by the
peer). Some peer messages are lost on the way, so the hub keeps skipped message keys: none for 70% of the
sessions, 1-5 for 25%, 10-50 for 5%. The hub's whole protocol state is committed to a fresh SQLCipher
database in a temporary directory, which is closed. Each measurement then opens it again (SQLCipher's page
cache is cold, so every page read is decrypted; the file itself is in the OS cache) and times:

* loading every session: ``store.records(Table.SESSIONS)`` and ``session_from_bytes`` on each row;
* ``load_state``: the whole protocol state (sessions, installations, prekeys, negotiated secrets).

Floors, measured in the same run: the *read* floor is a plain SQLCipher ``SELECT key, value`` of the same
rows with no parsing (for ``load_state``: of every record kind it reads, and its meta row); the *parse* floor
is the same parsing over rows already in memory (``session_from_bytes`` over a list; ``load_state`` over a
:class:`~engine.store.memory_store.MemorySessionStore` holding the same records). Ratios are
``load / (read floor + parse floor)``. Rounds alternate between the loads and the floors; the best counts.

**Database size per 10,000 messages.** Two accounts on SQLCipher stores, having scanned each other's bundle,
hold a conversation of M messages (turns of 1-4 messages; texts of 20-200 characters, mostly short, some
non-ASCII) through the real :class:`~engine.sessions.engine.SessionEngine`: ``send_text`` (one transaction
with the outbox insert), ``published`` for each due outbox item, and the envelope's bytes to the peer's
``receive``. Each database then holds all M messages (about half sent, half received). After
``PRAGMA wal_checkpoint(TRUNCATE)`` each file's size is normalised to 10,000 messages; the floors are the
bytes of the texts and of the Waku envelopes exchanged.

The engine commits with ``synchronous = FULL`` (an fsync per transaction), which would take minutes for
10,000 messages on a slow disk. So the last ``timed`` messages run with it and give the messages-per-second
figures; the ones before run with ``synchronous = OFF``, which writes the same pages (the file's contents and
size are unchanged) without waiting for the disk, and give a without-fsync rate.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..identity import installation_id
from ..protocol.encryption import EncryptionProtocol
from ..protocol.entropy import BytesPurpose, KeyPurpose
from ..protocol.state import ProtocolState, Session, Table
from ..sessions.accounts import create_account
from ..sessions.engine import SessionEngine
from ..sessions.events import MessageReceived
from ..sessions.records import (
    ACCOUNT_META,
    SESSION_COUNTER_META,
    Account,
    account_to_bytes,
    load_state,
    save_dirty,
    session_from_bytes,
    session_to_bytes,
)
from ..simulation.entropy import SeededEntropy
from ..store.database import Database, Row
from ..store.memory_store import MemorySessionStore
from ..store.sqlcipher_store import SqlCipherSessionStore

EPOCH_NS = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z: where the benchmark's clock starts."""
PER_MESSAGES = 10_000
"""Database sizes are given per this many messages."""
_WORDS = (
    "ciao", "sotto", "voce", "piano", "forte", "domani", "stasera", "sì", "perché", "città", "caffè", "ok",
    "the", "meeting", "is", "at", "five", "can", "you", "send", "me", "that", "file", "please", "thanks",
    "see", "later", "tomorrow", "sounds", "good", "I'll", "be", "there", "in", "ten", "minutes", "lol",
    "did", "read", "message", "about", "train", "is", "late", "again", "😀", "👍", "🙏", "→", "naïve", "déjà",
)  # fmt: skip


@dataclass(frozen=True)
class StoreFigures:
    """Session-load times (seconds, best round) and floors; database sizes and the conversation's figures."""

    sessions: int
    session_record_bytes: float
    """Mean size of a stored session record."""
    skipped_keys: float
    """Mean skipped message keys per session."""
    load_sessions_s: float
    load_state_s: float
    read_floor_s: float
    parse_floor_s: float
    state_read_floor_s: float
    state_parse_floor_s: float
    messages: int
    text_bytes: int
    envelope_bytes: int
    db_bytes_a: int
    db_bytes_b: int
    timed_messages: int
    send_s: float
    """Time of ``send_text`` (encrypt + commit) over the timed messages."""
    publish_s: float
    """Time of ``published`` (outbox delete + state change) over the timed messages."""
    receive_s: float
    """Time of ``receive`` (decrypt + commit) over the timed messages."""
    unsynced_messages: int
    unsynced_s: float
    """Wall time of the whole exchange (send, publish, receive) of the messages before the timed ones."""

    # --- sessions ---------------------------------------------------------------------------------------

    def _rate(self, seconds: float) -> float:
        return self.sessions / seconds

    @property
    def load_sessions_ratio(self) -> float:
        return self.load_sessions_s / (self.read_floor_s + self.parse_floor_s)

    @property
    def load_state_ratio(self) -> float:
        return self.load_state_s / (self.state_read_floor_s + self.state_parse_floor_s)

    @property
    def read_share(self) -> float:
        """The storage part of the sessions floor (the rest is parsing)."""
        return self.read_floor_s / (self.read_floor_s + self.parse_floor_s)

    @property
    def state_read_share(self) -> float:
        return self.state_read_floor_s / (self.state_read_floor_s + self.state_parse_floor_s)

    # --- messages ---------------------------------------------------------------------------------------

    def per_10k(self, size: int) -> float:
        return size * PER_MESSAGES / self.messages

    @property
    def messages_per_s(self) -> float:
        """Whole engine, with fsync: messages through send + publish + receive per second."""
        return self.timed_messages / (self.send_s + self.publish_s + self.receive_s)

    @property
    def unsynced_messages_per_s(self) -> float | None:
        return self.unsynced_messages / self.unsynced_s if self.unsynced_messages else None

    def report_lines(self) -> list[str]:
        n = self.sessions
        lines = [
            f"store: {n} sessions (real X3DH + Double Ratchet; mean record {self.session_record_bytes:.0f} B, "
            f"{self.skipped_keys:.2f} skipped keys/session), database reopened each round",
            f"  load sessions:  {self._rate(self.load_sessions_s):10,.0f} sessions/s   floor "
            f"{self._rate(self.read_floor_s + self.parse_floor_s):10,.0f} sessions/s (read "
            f"{self.read_share:.0%} / parse {1 - self.read_share:.0%})   ratio {self.load_sessions_ratio:.3f}x",
            f"  load_state:     {self._rate(self.load_state_s):10,.0f} sessions/s   floor "
            f"{self._rate(self.state_read_floor_s + self.state_parse_floor_s):10,.0f} sessions/s (read "
            f"{self.state_read_share:.0%} / parse {1 - self.state_read_share:.0%})   "
            f"ratio {self.load_state_ratio:.3f}x",
            f"store: {self.messages:,} messages exchanged in one conversation; text {self.text_bytes:,} B, "
            f"Waku envelopes {self.envelope_bytes:,} B",
        ]
        for side, size in (("A", self.db_bytes_a), ("B", self.db_bytes_b)):
            lines.append(
                f"  database {side} per {PER_MESSAGES:,} messages: {self.per_10k(size) / 1e6:7.2f} MB   "
                f"{size / self.text_bytes:5.2f}x the text   {size / self.envelope_bytes:5.2f}x the envelopes"
            )
        timed = self.timed_messages
        lines.append(
            f"  whole engine, fsync on (synchronous=FULL, last {timed:,} messages): {self.messages_per_s:,.1f} msg/s"
            f"   send {timed / self.send_s:,.1f}/s, publish ack {timed / self.publish_s:,.1f}/s, "
            f"receive {timed / self.receive_s:,.1f}/s"
        )
        unsynced = self.unsynced_messages_per_s
        if unsynced is not None:
            lines.append(
                f"  whole engine, fsync off (synchronous=OFF, first {self.unsynced_messages:,} messages, "
                f"same file contents): {unsynced:,.1f} msg/s"
            )
        return lines

    def as_dict(self) -> dict[str, float | int | None]:
        unsynced = self.unsynced_messages_per_s
        return {
            "sessions": self.sessions,
            "session_record_bytes": round(self.session_record_bytes, 1),
            "skipped_keys_per_session": round(self.skipped_keys, 3),
            "load_sessions_per_s": round(self._rate(self.load_sessions_s), 1),
            "load_sessions_floor_per_s": round(self._rate(self.read_floor_s + self.parse_floor_s), 1),
            "load_sessions_ratio": round(self.load_sessions_ratio, 4),
            "load_sessions_read_share": round(self.read_share, 4),
            "load_state_sessions_per_s": round(self._rate(self.load_state_s), 1),
            "load_state_floor_per_s": round(self._rate(self.state_read_floor_s + self.state_parse_floor_s), 1),
            "load_state_ratio": round(self.load_state_ratio, 4),
            "load_state_read_share": round(self.state_read_share, 4),
            "load_sessions_ms": round(self.load_sessions_s * 1e3, 3),
            "load_state_ms": round(self.load_state_s * 1e3, 3),
            "read_floor_ms": round(self.read_floor_s * 1e3, 3),
            "parse_floor_ms": round(self.parse_floor_s * 1e3, 3),
            "state_read_floor_ms": round(self.state_read_floor_s * 1e3, 3),
            "state_parse_floor_ms": round(self.state_parse_floor_s * 1e3, 3),
            "messages": self.messages,
            "text_bytes": self.text_bytes,
            "envelope_bytes": self.envelope_bytes,
            "db_bytes_a": self.db_bytes_a,
            "db_bytes_b": self.db_bytes_b,
            "db_bytes_a_per_10k": round(self.per_10k(self.db_bytes_a)),
            "db_bytes_b_per_10k": round(self.per_10k(self.db_bytes_b)),
            "db_a_text_ratio": round(self.db_bytes_a / self.text_bytes, 4),
            "db_b_text_ratio": round(self.db_bytes_b / self.text_bytes, 4),
            "db_a_envelope_ratio": round(self.db_bytes_a / self.envelope_bytes, 4),
            "db_b_envelope_ratio": round(self.db_bytes_b / self.envelope_bytes, 4),
            "timed_messages": self.timed_messages,
            "messages_per_s": round(self.messages_per_s, 2),
            "send_per_s": round(self.timed_messages / self.send_s, 2),
            "publish_per_s": round(self.timed_messages / self.publish_s, 2),
            "receive_per_s": round(self.timed_messages / self.receive_s, 2),
            "unsynced_messages": self.unsynced_messages,
            "unsynced_messages_per_s": None if unsynced is None else round(unsynced, 2),
        }


# --- sessions -----------------------------------------------------------------------------------------------


def _lost_messages(rng: random.Random) -> int:
    draw = rng.random()
    if draw < 0.70:
        return 0
    if draw < 0.95:
        return rng.randint(1, 5)
    return rng.randint(10, 50)


def _new_party(entropy: SeededEntropy) -> EncryptionProtocol:
    identity = entropy.new_key(KeyPurpose.SIGNED_PREKEY)  # the purpose only labels a seeded draw
    return EncryptionProtocol(
        ProtocolState(identity, installation_id(entropy.random_bytes(16, BytesPurpose.INSTALLATION_ID)))
    )


def _build_hub(sessions: int, rng: random.Random) -> tuple[Account, ProtocolState]:
    """The hub's protocol state after a short real conversation with each of ``sessions`` peers."""
    entropy = SeededEntropy("sottovoce-bench-store-sessions")
    hub = _new_party(entropy)
    now = EPOCH_NS
    hub_bundle = hub.own_bundle(now, entropy)

    def send(sender: EncryptionProtocol, receiver: EncryptionProtocol, lost: int = 0) -> None:
        text = b"x" * rng.randint(40, 300)
        for _ in range(lost):
            sender.encrypt(receiver.state.identity.public, text, now, entropy)
        data = sender.encrypt(receiver.state.identity.public, text, now, entropy).SerializeToString()
        receiver.decrypt(sender.state.identity.public, data, now, entropy)

    for index in range(sessions):
        now += 10**9
        peer = _new_party(entropy)
        peer.process_bundle(hub_bundle, now)
        if index % 2:
            hub.process_bundle(peer.own_bundle(now, entropy), now)
            send(hub, peer)
            send(peer, hub)
        else:
            send(peer, hub)
            send(hub, peer)
        for _ in range(rng.randint(0, 2)):
            send(peer, hub)
            send(hub, peer)
        send(peer, hub, lost=_lost_messages(rng))
    if len(hub.state.sessions) != sessions:
        raise RuntimeError(f"the hub made {len(hub.state.sessions)} sessions, not {sessions}")
    return Account(hub.state.identity, hub.state.installation_id, EPOCH_NS), hub.state


def _open(path: Path, key: bytes) -> SqlCipherSessionStore:
    return SqlCipherSessionStore(Database.open(path, key))


def _open_new(path: Path, key: bytes) -> SqlCipherSessionStore:
    return SqlCipherSessionStore(Database.open(path, key, create=True))


def _timed(path: Path, key: bytes, load: Callable[[SqlCipherSessionStore], object]) -> float:
    """Seconds ``load`` takes on a freshly opened store (the opening is not timed)."""
    store = _open(path, key)
    try:
        start = time.perf_counter()
        load(store)
        return time.perf_counter() - start
    finally:
        store.close()


def _sessions_of(rows: list[Row] | list[tuple[bytes, bytes]]) -> list[Session]:
    return [session_from_bytes(key, value) for key, value in rows]


def _read_state_rows(store: SqlCipherSessionStore) -> list[Row]:
    database = store.database
    rows: list[Row] = []
    for table in Table:
        rows += database.query("SELECT key, value FROM protocol_records WHERE kind = ?", (table.value,))
    rows += database.query("SELECT value FROM meta WHERE key = ?", (SESSION_COUNTER_META,))
    return rows


def _measure_sessions(directory: Path, sessions: int, repeat: int, rng: random.Random) -> dict[str, float]:
    account, state = _build_hub(sessions, rng)
    stored = [session_to_bytes(session) for session in state.sessions.values()]
    skipped = sum(len(session.ratchet.skipped) for session in state.sessions.values())
    path, key = directory / "sessions.db", os.urandom(32)
    store = _open_new(path, key)
    try:
        with store.transaction() as writer:
            writer.put_meta(ACCOUNT_META, account_to_bytes(account))
            save_dirty(state, writer)
    finally:
        store.close()

    # Rows in memory, for the parse floors.
    store = _open(path, key)
    try:
        session_rows = list(store.records(Table.SESSIONS))
        memory = MemorySessionStore()
        with memory.transaction() as writer:
            for table in Table:
                for record_key, value in store.records(table):
                    writer.put_record(table, record_key, value)
            counter = store.meta(SESSION_COUNTER_META)
            if counter is not None:
                writer.put_meta(SESSION_COUNTER_META, counter)
    finally:
        store.close()

    def load_sessions(store: SqlCipherSessionStore) -> None:
        if len(_sessions_of(list(store.records(Table.SESSIONS)))) != sessions:
            raise RuntimeError("the store did not give back every session")

    def load_whole_state(store: SqlCipherSessionStore) -> None:
        if len(load_state(store, account).sessions) != sessions:
            raise RuntimeError("load_state did not give back every session")

    def read_floor(store: SqlCipherSessionStore) -> None:
        store.database.query("SELECT key, value FROM protocol_records WHERE kind = 'sessions'")

    def parse_floor() -> float:
        start = time.perf_counter()
        _sessions_of(session_rows)
        return time.perf_counter() - start

    def state_parse_floor() -> float:
        start = time.perf_counter()
        load_state(memory, account)
        return time.perf_counter() - start

    runs: dict[str, Callable[[], float]] = {
        "load_sessions_s": lambda: _timed(path, key, load_sessions),
        "read_floor_s": lambda: _timed(path, key, read_floor),
        "parse_floor_s": parse_floor,
        "load_state_s": lambda: _timed(path, key, load_whole_state),
        "state_read_floor_s": lambda: _timed(path, key, _read_state_rows),
        "state_parse_floor_s": state_parse_floor,
    }
    best = {name: float("inf") for name in runs}
    for round_ in range(repeat + 1):  # the first round warms up
        for name, measure in runs.items():
            seconds = measure()
            if round_:
                best[name] = min(best[name], seconds)
    best["session_record_bytes"] = sum(map(len, stored)) / sessions
    best["skipped_keys"] = skipped / sessions
    return best


# --- messages -----------------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = EPOCH_NS

    def __call__(self) -> int:
        return self.now


def _text(rng: random.Random) -> str:
    """A chat text of 20-200 characters, mostly short."""
    target = round(rng.triangular(20, 200, 40))
    words: list[str] = []
    length = -1
    while length < target:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    text = " ".join(words)[:target].rstrip()
    return text[0].upper() + text[1:] + rng.choice((".", "!", "?", "", ""))


def _synchronous(stores: list[SqlCipherSessionStore], mode: str) -> None:
    for store in stores:
        store.database.query(f"PRAGMA synchronous = {mode}")


def _file_size(store: SqlCipherSessionStore) -> int:
    database = store.database
    database.query("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = database.path.with_name(database.path.name + "-wal")
    return database.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _measure_messages(directory: Path, messages: int, timed: int, rng: random.Random) -> dict[str, float]:
    clock = _Clock()
    stores: list[SqlCipherSessionStore] = []
    engines: list[SessionEngine] = []
    try:
        for name in ("a", "b"):
            store = _open_new(directory / f"{name}.db", os.urandom(32))
            stores.append(store)
            entropy = SeededEntropy(f"sottovoce-bench-store-{name}")
            create_account(store, entropy, clock(), display_name=f"Bench {name.upper()}", device_name="bench")
            engines.append(SessionEngine(store, entropy, clock))
        engines[1].learn_bundle(engines[0].own_bundle())  # both scanned each other's code
        engines[0].learn_bundle(engines[1].own_bundle())

        figures = dict.fromkeys(("send_s", "publish_s", "receive_s", "unsynced_s"), 0.0)
        text_bytes = envelope_bytes = received = 0
        unsynced = messages - timed
        _synchronous(stores, "OFF" if unsynced else "FULL")
        speaker, turn_left = 0, 0
        started = time.perf_counter()
        for index in range(messages):
            if index == unsynced and unsynced:
                figures["unsynced_s"] = time.perf_counter() - started
                _synchronous(stores, "FULL")
            if turn_left == 0:
                speaker, turn_left = 1 - speaker, rng.randint(1, 4)
            turn_left -= 1
            clock.now += rng.randint(1, 30) * 10**9
            sender, receiver = engines[speaker], engines[1 - speaker]
            text = _text(rng)
            text_bytes += len(text.encode())
            start = time.perf_counter()
            sender.send_text(receiver.identity, text)
            send_end = time.perf_counter()
            publish = receive = 0.0
            for item in sender.outbox_due():
                envelope_bytes += len(item.waku_message)
                start_item = time.perf_counter()
                sender.published(item)
                published = time.perf_counter()
                events = receiver.receive(item.waku_message)
                publish += published - start_item
                receive += time.perf_counter() - published
                received += sum(isinstance(event, MessageReceived) for event in events)
            if index >= unsynced:
                figures["send_s"] += send_end - start
                figures["publish_s"] += publish
                figures["receive_s"] += receive
        if received != messages or any(store.message_count() != messages for store in stores):
            raise RuntimeError(f"the conversation lost messages: {received} of {messages} received")
        figures["db_bytes_a"], figures["db_bytes_b"] = (_file_size(store) for store in stores)
        figures["text_bytes"], figures["envelope_bytes"] = text_bytes, envelope_bytes
        return figures
    finally:
        for store in stores:
            store.close()


def run(sessions: int = 2000, messages: int = 10_000, timed_messages: int = 1000, repeat: int = 5) -> StoreFigures:
    """Measure both parts in a temporary directory (deleted afterwards); see the module docstring."""
    if sessions < 1 or messages < 1 or timed_messages < 1 or repeat < 1:
        raise ValueError("sessions, messages, timed messages and rounds must be at least 1")
    timed = min(timed_messages, messages)
    rng = random.Random("sottovoce-bench-store")
    with tempfile.TemporaryDirectory(prefix="sottovoce-bench-") as name:
        loads = _measure_sessions(Path(name), sessions, repeat, rng)
        exchange = _measure_messages(Path(name), messages, timed, rng)
    return StoreFigures(
        sessions=sessions,
        session_record_bytes=loads["session_record_bytes"],
        skipped_keys=loads["skipped_keys"],
        load_sessions_s=loads["load_sessions_s"],
        load_state_s=loads["load_state_s"],
        read_floor_s=loads["read_floor_s"],
        parse_floor_s=loads["parse_floor_s"],
        state_read_floor_s=loads["state_read_floor_s"],
        state_parse_floor_s=loads["state_parse_floor_s"],
        messages=messages,
        text_bytes=int(exchange["text_bytes"]),
        envelope_bytes=int(exchange["envelope_bytes"]),
        db_bytes_a=int(exchange["db_bytes_a"]),
        db_bytes_b=int(exchange["db_bytes_b"]),
        timed_messages=timed,
        send_s=exchange["send_s"],
        publish_s=exchange["publish_s"],
        receive_s=exchange["receive_s"],
        unsynced_messages=messages - timed,
        unsynced_s=exchange["unsynced_s"],
    )
