"""The session engine over the in-memory store, scenario by scenario, with a hand-rolled relay.

Every installation runs the real :class:`~engine.sessions.engine.SessionEngine` on a
:class:`~engine.store.memory_store.MemorySessionStore`, with its own :class:`SeededEntropy` and one shared,
hand-advanced clock. The relay publishes an installation's outbox and hands each envelope to every installation
subscribed to its content topic, as ``engine/simulation/simulation.py`` does, but only when a test says so.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from engine.crypto.keys import KeyPair, parse_compressed
from engine.errors import (
    DecryptionFailed,
    MalformedMessage,
    MessageKeyDeleted,
    NotPairedDevice,
    SottovoceError,
)
from engine.protocol import waku
from engine.protocol.application import messages as app
from engine.protocol.application.errors import EmptyText
from engine.protocol.bundle import NO_INSTALLATION_ID, Bundle, SignedPreKey
from engine.protocol.entropy import BytesPurpose, KeyPurpose
from engine.protocol.state import BUNDLE_REFRESH_NS, Table
from engine.protocol.topics import partitioned_topic
from engine.sessions.accounts import create_account
from engine.sessions.core import ADVERTISED, ADVERTISEMENT_INTERVAL_NS, CHAT_CLOCKS, SentMessage
from engine.sessions.engine import SessionEngine
from engine.sessions.errors import ForgedAuthor, NotSubscribed, UnknownInstallation, UnusableRecipient
from engine.sessions.events import (
    DeliveryChanged,
    EnvelopeRejected,
    Event,
    InstallationFound,
    InstallationPaired,
    MessageReceived,
)
from engine.store.errors import DiskFull
from engine.store.memory_store import MemorySessionStore
from engine.store.port import DeliveryState, Direction, StoredMessage
from proto import encryption_pb2 as pb
from tests.helpers import SeededEntropy

T0 = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z."""
SECOND = 10**9
RECORD_KINDS = (*Table, CHAT_CLOCKS, ADVERTISED)


class Clock:
    """One clock for every installation of a test, advanced by hand."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


@dataclass
class Device:
    """An installation: its store, its engine and the recovery phrase of its account."""

    name: str
    store: MemorySessionStore
    engine: SessionEngine
    phrase: str
    inbox: list[Event] = field(default_factory=list)

    @property
    def identity(self) -> bytes:
        return self.engine.identity

    @property
    def installation_id(self) -> str:
        return self.engine.installation_id

    def received(self) -> list[StoredMessage]:
        return [e.message for e in self.inbox if isinstance(e, MessageReceived)]

    def texts(self) -> list[str]:
        return [m.text for m in self.received()]

    def rejected(self) -> list[str]:
        return [e.code for e in self.inbox if isinstance(e, EnvelopeRejected)]


class Relay:
    """Publishes outboxes and delivers envelopes to the subscribed installations, when told to."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.devices: list[Device] = []

    def device(self, name: str, *, phrase: str | None = None, display_name: str = "") -> Device:
        """A new installation: a new account, or (with ``phrase``) one more installation of an existing one."""
        store = MemorySessionStore()
        entropy = SeededEntropy(f"test-session-engine-{name}")
        created = create_account(store, entropy, self.clock(), recovery_phrase=phrase, display_name=display_name,
                                 device_name=name)
        device = Device(name, store, SessionEngine(store, entropy, self.clock), created.recovery_phrase)
        self.devices.append(device)
        return device

    def flush(self, device: Device) -> list[bytes]:
        """Publish ``device``'s due outbox (acknowledging each item); returns the envelopes, oldest first."""
        published = []
        device.engine.tick()  # datasync acks and retransmissions that fell due
        for item in device.engine.outbox_due():
            published.append(item.waku_message)
            device.engine.published(item)
        return published

    def subscribers(self, data: bytes) -> list[Device]:
        topic = waku.WakuMessage.from_bytes(data).content_topic
        return [d for d in self.devices if topic in d.engine.core.subscriptions()]

    def deliver(self, data: bytes, *, to: Iterable[Device] | None = None) -> None:
        """Hand one envelope to its subscribers (or to those of ``to`` that subscribe); events go to inboxes."""
        targets = self.subscribers(data)
        if to is not None:
            allowed = [id(d) for d in to]
            targets = [d for d in targets if id(d) in allowed]
        for device in targets:
            device.inbox.extend(device.engine.receive(data))

    def send(self, device: Device, peer: Device, text: str) -> tuple[SentMessage, list[bytes]]:
        """Queue a text and publish ``device``'s outbox (not delivered yet)."""
        sent = device.engine.send_text(peer.identity, text)
        return sent, self.flush(device)

    def settle(self) -> None:
        """Publish and deliver until every outbox is empty."""
        for _ in range(20):
            envelopes = [data for device in self.devices for data in self.flush(device)]
            if not envelopes:
                return
            for data in envelopes:
                self.deliver(data)
        raise AssertionError("the relay did not settle")


def talk(relay: Relay, sender: Device, peer: Device, text: str) -> SentMessage:
    """Send ``text`` and deliver everything; the peer must show it."""
    sent, envelopes = relay.send(sender, peer, text)
    for data in envelopes:
        relay.deliver(data)
    relay.settle()
    assert text in peer.texts()
    return sent


def _last_to(relay: Relay, sender: Device, peer: Device, text: str) -> bytes:
    """Send ``text`` and return its envelope (published, not delivered)."""
    sent, envelopes = relay.send(sender, peer, text)
    [data] = [d for d in envelopes if waku.WakuMessage.from_bytes(d).hash() == sent.envelope]
    return data


def talk_to_nobody(relay: Relay, sender: Device, peer: Device, text: str) -> SentMessage:
    """Send and deliver, but publish nothing the receivers queue in answer."""
    sent, envelopes = relay.send(sender, peer, text)
    for data in envelopes:
        relay.deliver(data)
    return sent


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def _established(relay: Relay) -> tuple[Device, Device]:
    alice, bob = relay.device("alice"), relay.device("bob")
    talk(relay, alice, bob, "one")
    talk(relay, bob, alice, "two")
    return alice, bob


def snapshot(store: MemorySessionStore) -> dict[str, object]:
    """Everything committed that a step may change, through the port (seen envelopes aside)."""
    chats = {key for key, _ in store.records(CHAT_CLOCKS)}
    return {
        "records": {kind: list(store.records(kind)) for kind in RECORD_KINDS},
        "messages": {chat: store.messages(chat) for chat in chats},
        "message_count": store.message_count(),
        "outbox": store.outbox(),
    }


def committed(store: MemorySessionStore) -> object:
    """The memory store's whole committed state, seen envelopes and cursors included (a private attribute)."""
    return copy.deepcopy(store._committed)


def protocol_message(receiver: Device, data: bytes) -> pb.ProtocolMessage:
    """The encryption layer's message in an envelope ``receiver`` can open."""
    envelope = waku.WakuMessage.from_bytes(data)
    opened = envelope.open(receiver.engine.core.subscriptions()[envelope.content_topic])
    message = pb.ProtocolMessage()
    message.ParseFromString(opened.data)
    return message


def protocol_entry(receiver: Device, data: bytes) -> pb.EncryptedMessageProtocol:
    """The encryption layer's entry for ``receiver`` (its own, else the DH path's) in an envelope it can open."""
    message = protocol_message(receiver, data)
    for key in (receiver.installation_id, NO_INSTALLATION_ID):
        if key in message.encrypted_message:
            return message.encrypted_message[key]
    raise AssertionError(f"no entry for {receiver.name}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def relay(clock: Clock) -> Relay:
    return Relay(clock)


# --- forward secrecy of the first messages ------------------------------------------------------------------


def test_first_message_by_chat_key_takes_the_dh_path_and_everything_after_is_double_ratchet(relay: Relay) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")

    first = talk(relay, alice, bob, "hello by chat key")
    assert not first.forward_secret
    assert first.recipients == (NO_INSTALLATION_ID,)
    [shown] = bob.received()
    assert (shown.forward_secret, shown.direction, shown.chat, shown.author) == (False, Direction.IN,
                                                                                alice.identity, alice.identity)
    own = alice.store.message(first.message_id)
    assert own is not None
    assert (own.chat, own.author, own.direction, own.text, own.clock, own.forward_secret, own.state) == (
        bob.identity, alice.identity, Direction.OUT, shown.text, shown.clock, False, DeliveryState.SENT)

    reply = talk(relay, bob, alice, "reply")
    assert reply.forward_secret
    assert reply.recipients == (alice.installation_id,)
    later = [talk(relay, alice, bob, "second"), talk(relay, bob, alice, "third"), talk(relay, alice, bob, "fourth")]
    assert all(sent.forward_secret for sent in later)
    assert [m.forward_secret for m in bob.received()] == [False, True, True]
    assert [m.forward_secret for m in alice.received()] == [True, True]
    assert [m.text for m in bob.store.messages(alice.identity)] == ["hello by chat key", "reply", "second", "third",
                                                                   "fourth"]
    assert not alice.engine.rejections and not bob.engine.rejections


def test_first_message_after_a_contact_code_bundle_is_already_forward_secret(relay: Relay) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    events = alice.engine.learn_bundle(bob.engine.own_bundle())
    assert events == [InstallationFound(bob.identity, bob.installation_id, False)]

    sent = talk(relay, alice, bob, "hello by QR code")
    assert sent.forward_secret
    assert sent.recipients == (bob.installation_id,)
    [shown] = bob.received()
    assert shown.forward_secret
    assert protocol_entry(bob, _last_to(relay, alice, bob, "again")).HasField("DR_header")


def test_sending_marks_the_message_sent_once_the_relay_acknowledges_it(relay: Relay) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    sent = alice.engine.send_text(bob.identity, "queued first")
    stored = alice.store.message(sent.message_id)
    assert stored is not None and stored.state == DeliveryState.QUEUED
    [item] = alice.engine.outbox_due()
    assert item.message_id == sent.message_id and item.envelope_hash == sent.envelope
    assert alice.engine.published(item) == [DeliveryChanged(sent.message_id, DeliveryState.SENT)]
    assert alice.store.message(sent.message_id).state == DeliveryState.SENT  # type: ignore[union-attr]
    assert alice.engine.outbox_due() == []
    assert alice.engine.published(item) == []  # a second acknowledgement changes nothing


def test_a_failed_publish_is_retried_after_the_delay(relay: Relay, clock: Clock) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    alice.engine.send_text(bob.identity, "retry me")
    [item] = alice.engine.outbox_due()
    alice.engine.publish_failed(item, 5 * SECOND)
    assert alice.engine.outbox_due() == []
    clock.advance(5 * SECOND)
    [again] = alice.engine.outbox_due()
    assert (again.envelope_hash, again.attempts) == (item.envelope_hash, item.attempts + 1)


# --- replays, tampering, forgeries ---------------------------------------------------------------------------


def test_a_replayed_envelope_is_skipped_silently_even_after_a_restart(relay: Relay, clock: Clock) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    talk(relay, alice, bob, "one")
    talk(relay, bob, alice, "two")
    data = _last_to(relay, alice, bob, "three, forward secret")
    assert protocol_entry(bob, data).HasField("DR_header")

    first = bob.engine.receive(data)
    assert [e.message.text for e in first if isinstance(e, MessageReceived)] == ["three, forward secret"]
    before = committed(bob.store)
    assert bob.engine.receive(data) == []
    assert committed(bob.store) == before
    assert not bob.engine.rejections

    restarted = SessionEngine(bob.store, SeededEntropy("bob after restart"), clock)
    assert restarted.receive(data) == []
    assert not restarted.rejections
    assert committed(bob.store) == before


def test_a_replayed_dh_path_envelope_is_skipped_too(relay: Relay) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    data = _last_to(relay, alice, bob, "no forward secrecy, no key to delete")
    assert protocol_entry(bob, data).HasField("DH_header")
    assert [type(e) for e in bob.engine.receive(data)] == [InstallationFound, MessageReceived]
    assert bob.engine.receive(data) == []
    assert bob.store.message_count() == 1 and not bob.engine.rejections


def _payload(change: Callable[[bytes], bytes]) -> Callable[[waku.WakuMessage], bytes]:
    return lambda envelope: dataclasses.replace(envelope, payload=change(envelope.payload)).to_bytes()


TAMPERINGS: dict[str, tuple[Callable[[waku.WakuMessage], bytes], type[SottovoceError]]] = {
    "first payload byte flipped": (_payload(lambda p: _flip(p, 0)), DecryptionFailed),
    "middle payload byte flipped": (_payload(lambda p: _flip(p, len(p) // 2)), DecryptionFailed),
    "last payload byte flipped (nonce)": (_payload(lambda p: _flip(p, len(p) - 1)), DecryptionFailed),
    "payload truncated": (_payload(lambda p: p[:10]), waku.Truncated),
    "payload empty": (_payload(lambda p: b""), waku.Truncated),
    "payload oversized": (_payload(lambda p: p * 2_000), waku.EnvelopeTooLarge),
    "version 0 (plaintext)": (lambda e: dataclasses.replace(e, version=0).to_bytes(), waku.UnsignedEnvelope),
    "version 2": (lambda e: dataclasses.replace(e, version=2).to_bytes(), waku.UnsupportedVersion),
    "another content topic": (lambda e: dataclasses.replace(e, content_topic="/waku/1/0x00000000/rfc26").to_bytes(),
                              NotSubscribed),
    "not a WakuMessage": (lambda e: b"\xff" + e.to_bytes(), MalformedMessage),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_envelope_is_rejected_with_a_typed_code_and_changes_nothing(relay: Relay, tampering: str) -> None:
    change, error = TAMPERINGS[tampering]
    alice, bob = _established(relay)
    data = _last_to(relay, alice, bob, "tamper with me")
    tampered = change(waku.WakuMessage.from_bytes(data))
    before = snapshot(bob.store)

    events = bob.engine.receive(tampered)

    assert [(type(e), e.code) for e in events if isinstance(e, EnvelopeRejected)] == [(EnvelopeRejected, error.code)]
    assert len(events) == 1
    assert bob.engine.rejections == {error.code: 1}
    assert snapshot(bob.store) == before


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_copy_received_first_does_not_stop_the_genuine_envelope(relay: Relay, tampering: str) -> None:
    change, _ = TAMPERINGS[tampering]
    alice, bob = _established(relay)
    data = _last_to(relay, alice, bob, "tamper with me")
    bob.inbox.extend(bob.engine.receive(change(waku.WakuMessage.from_bytes(data))))
    bob.inbox.extend(bob.engine.receive(data))
    assert bob.texts()[-1] == "tamper with me"


def test_an_envelope_on_a_topic_not_listened_to_is_not_remembered_as_seen(relay: Relay) -> None:
    alice, bob = _established(relay)
    carol = relay.device("carol")
    data = _last_to(relay, alice, carol, "for carol")
    envelope = waku.WakuMessage.from_bytes(data)
    assert envelope.content_topic not in bob.engine.core.subscriptions()
    assert [e.code for e in bob.engine.receive(data) if isinstance(e, EnvelopeRejected)] == [NotSubscribed.code]
    assert not bob.store.has_seen(envelope.hash())  # catch-up may offer it again once bob listens there


def test_a_replay_with_another_envelope_timestamp_is_not_shown_twice(relay: Relay) -> None:
    """The Waku timestamp is not signed: changing it makes a new envelope hash around the same message."""
    alice, bob = _established(relay)
    ratchet = _last_to(relay, alice, bob, "forward secret")
    alice_new = relay.device("alice's new contact")
    dh_path = _last_to(relay, alice_new, bob, "by chat key")
    for data in (ratchet, dh_path):
        relay.deliver(data, to=[bob])
    shown = bob.store.message_count()
    bob.inbox.clear()

    for data in (ratchet, dh_path):
        envelope = waku.WakuMessage.from_bytes(data)
        moved = dataclasses.replace(envelope, timestamp_ns=(envelope.timestamp_ns or 0) + SECOND).to_bytes()
        relay.deliver(moved, to=[bob])

    assert bob.received() == []
    assert bob.store.message_count() == shown
    assert set(bob.rejected()) <= {MessageKeyDeleted.code}  # the ratchet message's key is gone; the DH one is a dup


def test_a_tampered_ratchet_payload_inside_a_validly_signed_envelope_changes_no_session(relay: Relay) -> None:
    alice, bob = _established(relay)
    data = _last_to(relay, alice, bob, "tamper inside")
    envelope = waku.WakuMessage.from_bytes(data)
    key = bob.engine.core.subscriptions()[envelope.content_topic]
    message = pb.ProtocolMessage()
    message.ParseFromString(envelope.open(key).data)
    entry = message.encrypted_message[bob.installation_id]
    entry.payload = _flip(entry.payload, len(entry.payload) // 2)
    assert isinstance(key, waku.SymmetricKey)
    entropy = SeededEntropy("tamperer")
    inner = message.SerializeToString()
    resealed = waku.build_message(
        waku.seal_symmetric(inner, alice.engine.account.identity.private, key.key,
                            padding=b"\x01" * waku.padding_length(len(inner)),
                            nonce=entropy.random_bytes(12, BytesPurpose.GCM_NONCE)),
        envelope.content_topic, T0).to_bytes()
    sessions_before = list(bob.store.records(Table.SESSIONS))
    messages_before = bob.store.message_count()

    events = bob.engine.receive(resealed)

    assert [e.code for e in events if isinstance(e, EnvelopeRejected)] == [DecryptionFailed.code]
    assert not [e for e in events if isinstance(e, MessageReceived)]
    assert list(bob.store.records(Table.SESSIONS)) == sessions_before
    assert bob.store.message_count() == messages_before
    bob.inbox.extend(bob.engine.receive(data))
    assert bob.texts()[-1] == "tamper inside"


def _chat_message_envelope(sender: Device, recipient: Device, author: KeyPair, text: str) -> bytes:
    """A 1:1 ChatMessage signed (AMM) by ``author``, encrypted and sealed by ``sender``, on the DH path."""
    inner = app.chat_message(clock=1, timestamp=T0 // 10**6, text=text, chat_id=app.key_id(recipient.identity))
    wrapped = app.sign(inner, author.private)
    entropy = SeededEntropy(f"forger-{text}")
    message = sender.engine.core.protocol.encrypt_with_dh(recipient.identity, wrapped.amm, T0, entropy)
    data = message.SerializeToString()
    payload = waku.seal_asymmetric(data, sender.engine.account.identity.private, recipient.identity,
                                   padding=b"\x01" * waku.padding_length(len(data)),
                                   ephemeral=entropy.new_key(KeyPurpose.ECIES_EPHEMERAL),
                                   iv=entropy.random_bytes(waku.ECIES_IV_LEN, BytesPurpose.ECIES_IV))
    return waku.build_message(payload, partitioned_topic(recipient.identity).content_topic, T0).to_bytes()


def test_an_amm_signed_by_another_key_than_the_envelope_is_rejected_as_forged(relay: Relay) -> None:
    alice, bob, mallory = relay.device("alice"), relay.device("bob"), relay.device("mallory")
    honest = _chat_message_envelope(mallory, bob, mallory.engine.account.identity, "signed by mallory")
    forged = _chat_message_envelope(mallory, bob, alice.engine.account.identity, "claims to be alice")

    bob.inbox.extend(bob.engine.receive(honest))
    assert bob.texts() == ["signed by mallory"]  # the construction itself is accepted
    before = snapshot(bob.store)
    events = bob.engine.receive(forged)

    assert [(type(e), getattr(e, "code", None)) for e in events] == [(EnvelopeRejected, ForgedAuthor.code)]
    assert bob.engine.rejections == {ForgedAuthor.code: 1}
    assert snapshot(bob.store) == before
    assert bob.store.messages(alice.identity) == []


# --- store failures ------------------------------------------------------------------------------------------


def test_a_failed_commit_on_receive_raises_changes_nothing_and_the_engine_goes_on(relay: Relay) -> None:
    alice, bob = _established(relay)
    data = _last_to(relay, alice, bob, "arrives while the disk is full")
    before = committed(bob.store)

    bob.store.fail_next_commit(DiskFull())
    with pytest.raises(DiskFull):
        bob.engine.receive(data)

    assert committed(bob.store) == before
    assert not bob.store.has_seen(waku.WakuMessage.from_bytes(data).hash())
    bob.inbox.extend(bob.engine.receive(data))  # the same envelope again, once there is room
    assert bob.texts()[-1] == "arrives while the disk is full"
    talk(relay, alice, bob, "and the next one")
    talk(relay, bob, alice, "answered")
    assert all(m.forward_secret for m in bob.received()[1:])
    assert not bob.engine.rejections and not alice.engine.rejections


def test_a_failed_commit_on_send_raises_queues_nothing_and_the_next_message_decrypts(relay: Relay) -> None:
    alice, bob = _established(relay)
    before = committed(alice.store)

    alice.store.fail_next_commit(DiskFull())
    with pytest.raises(DiskFull):
        alice.engine.send_text(bob.identity, "never stored")

    assert committed(alice.store) == before
    assert alice.engine.outbox_due() == []
    sent = talk(relay, alice, bob, "stored this time")
    assert sent.forward_secret and bob.received()[-1].forward_secret
    talk(relay, bob, alice, "still in sync")
    assert "never stored" not in bob.texts()
    assert not bob.engine.rejections and not alice.engine.rejections


# --- recovery ------------------------------------------------------------------------------------------------


def test_recovery_keeps_the_identity_on_a_new_installation_that_the_peer_learns_after_device_not_found(
        relay: Relay, clock: Clock) -> None:
    alice, bob = _established(relay)
    relay.devices.remove(alice)  # the old computer is gone
    recovered = relay.device("alice recovered", phrase=alice.phrase)
    assert recovered.identity == alice.identity
    assert recovered.installation_id != alice.installation_id
    assert recovered.phrase == alice.phrase
    recovered.engine.learn_bundle(bob.engine.own_bundle())  # scans bob's QR code again: listens to their topic

    still_old = talk_to_nobody(relay, bob, recovered, "only the old installation can read this")
    assert still_old.recipients == (alice.installation_id,)
    assert recovered.rejected() == ["device_not_found"]
    assert recovered.texts() == []
    [advertisement] = relay.flush(recovered)
    relay.deliver(advertisement)
    assert InstallationFound(alice.identity, recovered.installation_id, False) in bob.inbox

    sent = talk(relay, bob, recovered, "now you can")
    assert set(sent.recipients) == {alice.installation_id, recovered.installation_id}
    assert recovered.received()[-1].forward_secret
    talk(relay, recovered, bob, "back on a new computer")
    assert bob.received()[-1].author == alice.identity


def test_the_device_not_found_advertisement_is_throttled_to_once_per_two_hours_per_peer(
        relay: Relay, clock: Clock) -> None:
    alice, bob = _established(relay)
    carol = relay.device("carol")
    talk(relay, carol, alice, "carol knows alice")
    talk(relay, alice, carol, "and alice carol")
    relay.devices.remove(alice)
    recovered = relay.device("alice recovered", phrase=alice.phrase)
    recovered.engine.learn_bundle(bob.engine.own_bundle())
    recovered.engine.learn_bundle(carol.engine.own_bundle())

    def undecryptable(sender: Device) -> int:
        talk_to_nobody(relay, sender, recovered, f"for the old installation at {clock.now}")
        return len(recovered.engine.outbox_due())

    assert undecryptable(bob) == 1
    assert undecryptable(bob) == 1
    clock.advance(ADVERTISEMENT_INTERVAL_NS - SECOND)
    assert undecryptable(bob) == 1
    assert undecryptable(carol) == 2  # another peer has its own allowance
    clock.advance(SECOND)
    assert undecryptable(bob) == 3
    # Five messages for the old installation, and datasync re-sending the ones due after 2 h, all unreadable.
    assert set(recovered.rejected()) == {"device_not_found"} and len(recovered.rejected()) >= 5
    assert set(recovered.engine.rejections) == {"device_not_found"}


# --- prekey rotation -----------------------------------------------------------------------------------------



@pytest.mark.parametrize("rotated_by", ["showing the QR code", "the first send"])
def test_after_the_24_h_rotation_the_next_message_starts_a_new_x3dh_session_and_a_late_one_still_decrypts(
        relay: Relay, clock: Clock, rotated_by: str) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    alice.engine.learn_bundle(bob.engine.own_bundle())
    talk(relay, alice, bob, "hello")
    talk(relay, bob, alice, "hi")
    settled = _last_to(relay, alice, bob, "on the established session")
    assert not protocol_entry(bob, settled).HasField("X3DH_header")
    relay.deliver(settled, to=[bob])
    late = _last_to(relay, alice, bob, "late, sent before the rotation")
    old_session = bytes(protocol_entry(bob, late).DR_header.id)

    clock.advance(BUNDLE_REFRESH_NS + SECOND)
    if rotated_by == "showing the QR code":
        assert bob.engine.own_bundle().signed_prekeys[bob.installation_id].version == 2
    else:
        # As status-go, the bundle (and so the rotation) is made after the payload is encrypted: this message
        # still goes on the session bound to the old prekey, and carries the new one.
        first = _last_to(relay, bob, alice, "first after 24 h")
        assert not protocol_entry(alice, first).HasField("X3DH_header")
        assert bytes(protocol_entry(alice, first).DR_header.id) == old_session
        assert protocol_message(alice, first).bundles[0].signed_pre_keys[bob.installation_id].version == 2
        relay.deliver(first, to=[alice])
    sessions_before = len(list(bob.store.records(Table.SESSIONS)))

    rotated = _last_to(relay, bob, alice, "after the rotation")
    entry = protocol_entry(alice, rotated)
    assert entry.HasField("X3DH_header")
    assert bytes(entry.DR_header.id) != old_session
    assert len(list(bob.store.records(Table.SESSIONS))) == sessions_before + 1
    relay.deliver(rotated, to=[alice])
    assert alice.texts()[-1] == "after the rotation" and alice.received()[-1].forward_secret

    relay.deliver(late, to=[bob])
    assert bob.texts()[-1] == "late, sent before the rotation" and bob.received()[-1].forward_secret
    answer = _last_to(relay, alice, bob, "alice answers")
    assert bytes(protocol_entry(bob, answer).DR_header.id) != old_session
    relay.deliver(answer, to=[bob])
    assert bob.texts()[-1] == "alice answers"
    talk(relay, bob, alice, "all good")
    talk(relay, alice, bob, "all good here too")
    assert not alice.engine.rejections and not bob.engine.rejections

# --- concurrent initiation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["by chat key", "by QR code"])
def test_both_sides_sending_first_before_receiving_works_both_ways(relay: Relay, start: str) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    if start == "by QR code":
        alice.engine.learn_bundle(bob.engine.own_bundle())
        bob.engine.learn_bundle(alice.engine.own_bundle())
    for round_ in range(3):  # round 1 crosses X3DH initiations on the chat-key path too
        a, a_out = relay.send(alice, bob, f"alice {round_}")
        b, b_out = relay.send(bob, alice, f"bob {round_}")
        assert a.forward_secret == b.forward_secret == (start == "by QR code" or round_ > 0)
        for data in a_out + b_out:
            relay.deliver(data)
        relay.settle()
    for round_ in range(3, 5):
        talk(relay, alice, bob, f"alice {round_}")
        talk(relay, bob, alice, f"bob {round_}")
    assert bob.texts() == [f"alice {i}" for i in range(5)]
    assert alice.texts() == [f"bob {i}" for i in range(5)]
    assert not alice.engine.rejections and not bob.engine.rejections


# --- pairing -------------------------------------------------------------------------------------------------


def test_own_copies_reach_only_enabled_siblings_and_pairing_enables_the_pairer_on_the_target(relay: Relay) -> None:
    bob = relay.device("bob")
    laptop = relay.device("alice laptop")
    phone = relay.device("alice phone", phrase=laptop.phrase)
    tablet = relay.device("alice tablet", phrase=laptop.phrase)
    assert laptop.identity == phone.identity == tablet.identity
    for device in (phone, tablet):  # pairing codes scanned: the siblings know each other, nothing enabled
        assert laptop.engine.learn_bundle(device.engine.own_bundle()) == [
            InstallationFound(laptop.identity, device.installation_id, True)]
        device.engine.learn_bundle(laptop.engine.own_bundle())
    assert [d.enabled for d in laptop.engine.devices()] == [False, False]

    alone = talk(relay, laptop, bob, "before pairing")
    assert alone.copies == () and alone.copy_envelope is None
    assert phone.received() == [] == tablet.received()

    assert laptop.engine.pair(phone.installation_id) == [InstallationPaired(phone.installation_id, "")]
    relay.settle()
    assert InstallationPaired(laptop.installation_id, "alice laptop") in phone.inbox
    assert {d.installation_id: d.enabled for d in phone.engine.devices()}[laptop.installation_id]
    assert not any(isinstance(e, InstallationPaired) for e in tablet.inbox)

    paired = talk(relay, laptop, bob, "after pairing")
    assert paired.copies == (phone.installation_id,)
    [copy_] = phone.received()
    assert (copy_.text, copy_.direction, copy_.chat, copy_.author_installation) == (
        "after pairing", Direction.OUT_COPY, bob.identity, laptop.installation_id)
    assert copy_.message_id == paired.message_id
    from_phone = talk(relay, phone, bob, "from the phone")
    assert from_phone.copies == (laptop.installation_id,)
    assert laptop.texts() == ["from the phone"]
    assert tablet.received() == []

    assert laptop.engine.unpair(phone.installation_id) == []
    unpaired = talk(relay, laptop, bob, "after unpairing")
    assert unpaired.copies == ()
    assert phone.texts() == ["after pairing"]
    assert tablet.received() == []
    assert bob.texts() == ["before pairing", "after pairing", "from the phone", "after unpairing"]
    # The copies did reach the unpaired tablet's topic: it could not read them.
    assert tablet.rejected() and set(tablet.rejected()) == {NotPairedDevice.code}


def test_pairing_an_unknown_or_own_installation_is_refused(relay: Relay) -> None:
    laptop = relay.device("alice laptop")
    for target in ("no-such-installation", laptop.installation_id):
        with pytest.raises(UnknownInstallation):
            laptop.engine.pair(target)
        with pytest.raises(UnknownInstallation):
            laptop.engine.unpair(target)
    assert laptop.engine.outbox_due() == []


# --- send_text errors ----------------------------------------------------------------------------------------


def _not_a_point() -> bytes:
    """33 bytes shaped like a compressed key whose x has no point on the curve."""
    for x in range(1, 100):
        candidate = b"\x02" + x.to_bytes(32, "big")
        try:
            parse_compressed(candidate)
        except SottovoceError:
            return candidate
    raise AssertionError("no invalid x found")


@pytest.mark.parametrize(("case", "error"), [
    ("empty text", EmptyText), ("blank text", EmptyText), ("own chat key", UnusableRecipient),
    ("short key", UnusableRecipient), ("not a point", UnusableRecipient), ("uncompressed prefix", UnusableRecipient),
])
def test_send_text_refuses_with_a_typed_error_and_stores_nothing(relay: Relay, case: str,
                                                                 error: type[SottovoceError]) -> None:
    alice, bob = relay.device("alice"), relay.device("bob")
    peer, text = {
        "empty text": (bob.identity, ""),
        "blank text": (bob.identity, " \t\n"),
        "own chat key": (alice.identity, "hello me"),
        "short key": (bob.identity[:32], "hello"),
        "not a point": (_not_a_point(), "hello"),
        "uncompressed prefix": (b"\x04" + bob.identity[1:], "hello"),
    }[case]
    before = committed(alice.store)
    with pytest.raises(error) as raised:
        alice.engine.send_text(peer, text)
    assert raised.value.code == error.code
    assert committed(alice.store) == before
    assert alice.engine.outbox_due() == []


# --- determinism of the fan-out ------------------------------------------------------------------------------

_FAN_OUT_SCRIPT = textwrap.dedent("""
    from engine.crypto.keys import KeyPair, parse_compressed
    from engine.protocol.bundle import Bundle, SignedPreKey
    from engine.sessions.accounts import create_account
    from engine.sessions.engine import SessionEngine
    from engine.simulation.entropy import SeededEntropy
    from engine.store.memory_store import MemorySessionStore

    T0 = 1_767_225_600 * 10**9
    store = MemorySessionStore()
    entropy = SeededEntropy("fan-out")
    create_account(store, entropy, T0)
    engine = SessionEngine(store, entropy, lambda: T0)
    for peer in range(3):
        identity = KeyPair.from_private(bytes([peer + 1]) * 32)
        prekeys = {f"peer{peer}-installation-{i}": SignedPreKey(KeyPair.from_private(bytes([peer + 1, i + 1]) * 16)
                   .public, 1) for i in range(8)}
        engine.learn_bundle(Bundle.parse(Bundle.create(identity, prekeys, T0).serialize()))  # as from a QR code
        print(sorted(engine.send_text(identity.public, "which three?").recipients))
""")


def test_the_fan_out_among_installations_with_equal_timestamps_is_the_same_in_every_process() -> None:
    bundle_order = _run_fan_out_in_a_fresh_interpreter()
    assert all(len(line.split(",")) == 3 for line in bundle_order[0])
    for other in bundle_order[1:]:
        assert other == bundle_order[0]


def _run_fan_out_in_a_fresh_interpreter(times: int = 3) -> list[list[str]]:
    outputs = []
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for _ in range(times):
        done = subprocess.run([sys.executable, "-c", _FAN_OUT_SCRIPT], capture_output=True, text=True, cwd=root,
                              check=True, timeout=60)
        outputs.append(done.stdout.splitlines())
    return outputs


def test_bundles_learned_list_every_installation(relay: Relay) -> None:
    """The fan-out script's set-up works in-process: 8 installations per peer, 3 chosen."""
    alice = relay.device("alice")
    identity = KeyPair.from_private(b"\x07" * 32)
    prekeys = {f"installation-{i}": SignedPreKey(KeyPair.from_private(bytes([7, i + 1]) * 16).public, 1)
               for i in range(8)}
    found = alice.engine.learn_bundle(Bundle.create(identity, prekeys, T0))
    assert sorted(e.installation_id for e in found if isinstance(e, InstallationFound)) == sorted(prekeys)
    sent = alice.engine.send_text(identity.public, "which three?")
    assert len(sent.recipients) == 3 and set(sent.recipients) <= set(prekeys)


def test_the_session_counter_is_stored_when_it_moves_and_only_then(relay: Relay) -> None:
    alice, bob = _established(relay)
    counter = alice.engine.core.state.session_counter
    assert counter > 0
    assert SessionEngine(alice.store, SeededEntropy("reloaded"), relay.clock).core.state.session_counter == counter
    meta_before = alice.store._committed.meta  # type: ignore[union-attr]
    talk(relay, alice, bob, "no new session for this one")
    assert alice.engine.core.state.session_counter == counter
    # not rewritten for nothing (the memory store copies a table on its first write in a transaction)
    assert alice.store._committed.meta is meta_before  # type: ignore[union-attr]
