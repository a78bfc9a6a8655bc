"""Deterministic building blocks for the property tests: seeded entropy, state snapshots, a two-party ratchet
conversation driven by a drawn script, and two introduced :class:`EncryptionProtocol` devices.

Runs are derandomized (the same examples every run, no deadline: nothing depends on the wall clock); set
``SOTTOVOCE_HYPOTHESIS_EXPLORE=1`` to let hypothesis draw fresh examples.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings

from engine.protocol.encryption import EncryptionProtocol
from engine.protocol.entropy import BytesPurpose, KeyPurpose
from engine.protocol.ratchet import RatchetHeader, RatchetState
from engine.protocol.state import ProtocolState, Session
from engine.simulation.entropy import SeededEntropy

T0 = 1_700_000_000 * 10**9
"""A fixed 'now' for the protocol layer (never the wall clock)."""

BASE = settings(
    deadline=None,
    derandomize=os.environ.get("SOTTOVOCE_HYPOTHESIS_EXPLORE") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


Snapshot = tuple[object, ...]


def snapshot(state: RatchetState) -> Snapshot:
    """Every field of a ratchet state, the skipped-key table in order."""
    return (state.root_key, state.sending_key.private, state.sending_key.public, state.remote_key,
            state.sending_chain, state.receiving_chain, state.sent, state.received, state.previous_sent,
            state.keys_count, tuple(state.skipped.items()))


def session_snapshot(session: Session) -> Snapshot:
    return (session.bundle_id, session.peer_identity, session.peer_installation, session.shared_key,
            session.initiator, session.created, session.pending_ephemeral, session.peer_ephemeral,
            snapshot(session.ratchet))


def protocol_snapshot(state: ProtocolState) -> Snapshot:
    """What a rejected message must not change: every session (ratchet included), counters and secrets."""
    sessions = tuple((key, session_snapshot(s)) for key, s in state.sessions.items())
    agreed = tuple(sorted((k, tuple(sorted(v))) for k, v in state.agreed_installations.items()))
    return sessions, state.session_counter, tuple(sorted(state.shared_secrets.items())), agreed


# --- a two-party Double Ratchet conversation ---------------------------------------------------------------------

PARTIES = ("alice", "bob")


@dataclass(frozen=True)
class Sent:
    """One ratchet message in flight."""

    sender: str
    header: RatchetHeader
    payload: bytes
    plaintext: bytes


@dataclass
class Conversation:
    """Alice (X3DH initiator) and Bob (responder) over bare :class:`RatchetState`s, every key from a seed."""

    seed: bytes
    states: dict[str, RatchetState] = field(init=False)
    entropy: dict[str, SeededEntropy] = field(init=False)
    in_flight: dict[str, list[Sent]] = field(init=False)
    delivered: list[Sent] = field(init=False, default_factory=list)
    sent_count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        setup = SeededEntropy(b"setup" + self.seed)
        shared = setup.random_bytes(32, BytesPurpose.PADDING)
        spk = setup.new_key(KeyPurpose.SIGNED_PREKEY)
        self.states = {
            "alice": RatchetState.initiator(shared, setup.new_key(KeyPurpose.RATCHET_INIT), spk.public),
            "bob": RatchetState.responder(shared, spk),
        }
        self.entropy = {name: SeededEntropy(name.encode() + self.seed) for name in PARTIES}
        self.in_flight = {name: [] for name in PARTIES}

    @staticmethod
    def peer(name: str) -> str:
        return "bob" if name == "alice" else "alice"

    def send(self, sender: str, plaintext: bytes | None = None) -> Sent:
        """Encrypt the next message of ``sender`` and put it in flight to the peer."""
        if plaintext is None:
            plaintext = f"{sender} #{self.sent_count}".encode() * (1 + self.sent_count % 3)
        self.sent_count += 1
        header, payload = self.states[sender].encrypt(plaintext)
        message = Sent(sender, header, payload, plaintext)
        self.in_flight[self.peer(sender)].append(message)
        return message

    def deliver(self, recipient: str, index: int) -> Sent | None:
        """Deliver the in-flight message ``index % len`` to ``recipient`` and check its plaintext."""
        queue = self.in_flight[recipient]
        if not queue:
            return None
        message = queue.pop(index % len(queue))
        plaintext = self.states[recipient].decrypt(message.header, message.payload, self.entropy[recipient],
                                                   confirm=True)
        assert plaintext == message.plaintext
        self.delivered.append(message)
        return message

    def run(self, script: list[tuple[bool, bool, int]]) -> None:
        """``(send?, alice?, index)`` steps: send a message, or deliver an in-flight one in any order."""
        for is_send, is_alice, index in script:
            who = "alice" if is_alice else "bob"
            if is_send:
                self.send(who)
            else:
                self.deliver(who, index)

    def flush(self, order: int = 0) -> None:
        """Deliver everything still in flight (alternating sides, a pseudo-random pick each time)."""
        step = 0
        while any(self.in_flight.values()):
            for name in PARTIES:
                if self.in_flight[name]:
                    self.deliver(name, order * 7919 + step * 104729)
                    step += 1

    def clone(self) -> Conversation:
        return copy.deepcopy(self)


# --- two EncryptionProtocol devices ---------------------------------------------------------------------------


def device(name: str, seed: bytes) -> tuple[EncryptionProtocol, SeededEntropy]:
    entropy = SeededEntropy(name.encode() + b"/" + seed)
    identity = entropy.new_key(KeyPurpose.SIGNED_PREKEY)
    return EncryptionProtocol(ProtocolState(identity, f"{name}-installation")), entropy


def introduced_pair(seed: bytes) -> tuple[EncryptionProtocol, SeededEntropy, EncryptionProtocol, SeededEntropy]:
    """Alice knows Bob's bundle (so her first message is an X3DH + Double Ratchet message)."""
    alice, alice_entropy = device("alice", seed)
    bob, bob_entropy = device("bob", seed)
    alice.process_public_bundle(bob.own_bundle(T0, bob_entropy).serialize(), T0)
    return alice, alice_entropy, bob, bob_entropy


def wire(sender: EncryptionProtocol, entropy: SeededEntropy, recipient: EncryptionProtocol, text: bytes) -> bytes:
    message = sender.encrypt(recipient.state.identity.public, text, T0, entropy)
    return message.SerializeToString(deterministic=True)
