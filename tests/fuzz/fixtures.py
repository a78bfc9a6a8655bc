"""Deterministic live fixtures the stateful fuzz targets mutate: a Double Ratchet session and two engines.

Everything is built once per process from fixed seeds (:class:`~engine.simulation.entropy.SeededEntropy` and a
fixed clock, as ``tests/unit/test_session_engine.py`` and the simulation do), so a crashing input replays
exactly. Targets restore the pristine state before every input.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache

from engine.crypto.keys import KeyPair
from engine.protocol import waku
from engine.protocol.encryption import EncryptionProtocol
from engine.protocol.entropy import KeyPurpose
from engine.protocol.serialization import ratchet_to_bytes
from engine.protocol.state import ProtocolState, Table
from engine.sessions.accounts import create_account
from engine.sessions.core import SessionCore
from engine.sessions.engine import SessionEngine
from engine.simulation.entropy import SeededEntropy
from engine.store.memory_store import MemorySessionStore, _Tables

T0 = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z, the clock of every fixture."""
SECOND = 10**9
STORE_KINDS: tuple[str, ...] = (
    "meta:account", "meta:session_counter", *Table, "chat_clocks", "advertised", "peers", "datasync_out",
    "datasync_acks", "segments", "segments_done",
)
"""Record kinds (and meta keys) the store target can overwrite; the input's first byte picks one."""


def state_dump(state: ProtocolState) -> tuple[object, ...]:
    """Everything a :class:`ProtocolState` holds, in comparable form (ratchets serialized to bytes)."""
    sessions = sorted(
        (key, session.shared_key, session.initiator, session.created, session.pending_ephemeral,
         session.peer_ephemeral, ratchet_to_bytes(session.ratchet))
        for key, session in state.sessions.items())
    return (
        [(p.key.private, p.version, p.created_ns, p.expired) for p in state.own_prekeys],
        sorted((k, repr(v)) for k, v in state.peer_prekeys.items()),
        sorted((k, repr(v)) for k, v in state.installations.items()),
        sessions,
        sorted(state.shared_secrets.items()),
        sorted((k, sorted(v)) for k, v in state.agreed_installations.items()),
        state.session_counter,
    )


# --- the encryption layer: two installations with a live session ---------------------------------------


@dataclass(frozen=True)
class LivePair:
    """Bob's pristine state after a conversation with Alice, and genuine ProtocolMessages from Alice."""

    alice: bytes
    """Alice's compressed identity key (the envelope signer the decrypt path is given)."""
    bob_state: ProtocolState
    messages: tuple[bytes, ...]
    """Serialized ProtocolMessages Alice sent and Bob has not read yet (DR, and a DH-header one)."""
    read: tuple[bytes, ...]
    """ProtocolMessages Bob already read (replays: rejected)."""
    alice_bundle: bytes


def _device(name: str) -> tuple[EncryptionProtocol, SeededEntropy]:
    entropy = SeededEntropy(f"fuzz-{name}")
    identity = entropy.new_key(KeyPurpose.SIGNED_PREKEY)
    return EncryptionProtocol(ProtocolState(identity, f"{name}-installation")), entropy


@cache
def live_pair() -> LivePair:
    """Alice and Bob exchange bundles and a few messages each way; Alice then sends three Bob keeps unread."""
    alice, a_rand = _device("alice")
    bob, b_rand = _device("bob")
    now = T0
    alice.process_public_bundle(bob.own_bundle(now, b_rand).serialize(), now)
    bob.process_public_bundle(alice.own_bundle(now, a_rand).serialize(), now)
    a_pub, b_pub = alice.state.identity.public, bob.state.identity.public
    read: list[bytes] = []
    for i in range(3):
        now += SECOND
        wire = alice.encrypt(b_pub, f"a{i}".encode(), now, a_rand).SerializeToString()
        bob.decrypt(a_pub, wire, now, b_rand)
        read.append(wire)
        now += SECOND
        alice.decrypt(b_pub, bob.encrypt(a_pub, f"b{i}".encode(), now, b_rand).SerializeToString(), now, a_rand)
    pending = [alice.encrypt(b_pub, text, now, a_rand).SerializeToString()
               for text in (b"pending one", b"", b"x" * 300)]
    pending.append(alice.encrypt_with_dh(b_pub, b"dh header", now, a_rand).SerializeToString())
    pending.append(alice.public_message(b"public", now, a_rand).SerializeToString())
    bob.state.dirty.clear()
    return LivePair(a_pub, bob.state, tuple(pending), tuple(read), alice.own_bundle(now, a_rand).serialize())


# --- the whole receive path: two engines on memory stores ----------------------------------------------


class FixedClock:
    """The fixture's clock: always the same instant, unless a test moves it."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Installation:
    name: str
    store: MemorySessionStore
    engine: SessionEngine


def _install(name: str, clock: FixedClock, phrase: str | None = None) -> tuple[Installation, str]:
    store = MemorySessionStore()
    entropy = SeededEntropy(f"fuzz-engine-{name}")
    created = create_account(store, entropy, clock(), display_name=f"{name}_fuzz", device_name=name,
                             recovery_phrase=phrase)
    return Installation(name, store, SessionEngine(store, entropy, clock)), created.recovery_phrase


def _flush(device: Installation) -> list[bytes]:
    device.engine.tick()
    out = []
    for item in device.engine.outbox_due():
        out.append(item.waku_message)
        device.engine.published(item)
    return out


def _deliver(devices: list[Installation], data: bytes) -> None:
    topic = waku.WakuMessage.from_bytes(data).content_topic
    for device in devices:
        if topic in device.engine.core.subscriptions():
            device.engine.receive(data)


@dataclass(frozen=True)
class LiveEngines:
    """Bob's engine fixture: his committed store after a settled conversation, and Alice's pending envelopes."""

    clock: FixedClock
    alice_private: bytes
    alice_state: ProtocolState
    alice_store: MemorySessionStore
    bob_store: MemorySessionStore
    bob_tables: _Tables
    """Bob's committed tables (never mutated: the memory store copies on write), restored before each input."""
    envelopes: tuple[bytes, ...]
    """Envelopes Alice published to Bob that Bob has not received."""
    history: tuple[bytes, ...]
    """Envelopes Alice published during the conversation (Bob received them)."""
    topic: str
    key: waku.EnvelopeKey
    """The content topic and key of Alice's last envelope to Bob (where a sealed fuzz payload goes)."""
    sibling: SessionCore
    """Bob's paired phone (same identity): its core seals sync messages to Bob's installation (copy it)."""


@cache
def live_engines() -> LiveEngines:
    """Alice and Bob talk until settled (contact request, replies), then Alice queues three more messages."""
    clock = FixedClock(T0)
    (alice, _), (bob, phrase) = _install("alice", clock), _install("bob", clock)
    phone, _ = _install("bob phone", clock, phrase)
    devices = [alice, bob, phone]
    history: list[bytes] = []

    def settle() -> None:
        for _ in range(20):
            clock.now += SECOND
            from_alice = _flush(alice)
            history.extend(from_alice)
            pending = from_alice + _flush(bob) + _flush(phone)
            if not pending:
                return
            for data in pending:
                _deliver(devices, data)
        raise RuntimeError("fixture conversation did not settle")

    bob.engine.learn_bundle(phone.engine.own_bundle())
    phone.engine.learn_bundle(bob.engine.own_bundle())
    bob.engine.pair(phone.engine.installation_id)
    settle()
    phone.engine.pair(bob.engine.installation_id)
    settle()
    alice.engine.send_contact_request(bob.engine.identity, "hello from the fuzzer")
    settle()
    bob.engine.accept_contact_request(alice.engine.identity)
    settle()
    for text in ("one", "two"):
        alice.engine.send_text(bob.engine.identity, text)
        settle()
        bob.engine.send_text(alice.engine.identity, text.upper())
        settle()
    clock.now += SECOND
    alice.engine.send_text(bob.engine.identity, "unread " * 40)
    envelopes = _flush(alice)
    envelope = waku.WakuMessage.from_bytes(envelopes[-1])
    key = bob.engine.core.subscriptions()[envelope.content_topic]
    return LiveEngines(clock, alice.engine.account.identity.private, copy.deepcopy(alice.engine.core.state),
                       alice.store, bob.store, bob.store._live(), tuple(envelopes), tuple(history),
                       envelope.content_topic, key, copy.deepcopy(phone.engine.core))


def fresh_identity(seed: str) -> KeyPair:
    """A fixed key pair for stateless targets (ECIES recipient, Waku signer)."""
    return SeededEntropy(seed).new_key(KeyPurpose.SIGNED_PREKEY)
