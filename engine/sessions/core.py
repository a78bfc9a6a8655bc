"""One installation's 1:1 messaging, sans-I/O: from text to Waku envelopes, and from envelopes to messages.

:class:`SessionCore` stacks the layers of status-go's 1:1 path (spec: status-encryption.md §6-§10,
status-application.md §2-§8): the signed application message (AMM), MVDS datasync with acks and status-go's
retransmission schedule, the encryption layer (:class:`~engine.protocol.encryption.EncryptionProtocol`:
X3DH, Double Ratchet, installations), segmentation, and the signed Waku payload v1 on the right topic. Above
them it keeps each peer's contact-request state and announced profile (:mod:`engine.sessions.peers`).

Each call takes the time and an entropy source and returns a :class:`Step`: what to store, what to publish,
what to tell the user. The caller (:mod:`engine.sessions.engine`) commits a step in one store transaction;
the protocol state's own changes are in ``state.dirty``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from google.protobuf.message import Message as ProtoMessage

from proto import encryption_pb2 as pb
from proto.chat_identity_pb2 import ChatIdentity
from proto.chat_message_pb2 import ChatMessage
from proto.contact_pb2 import AcceptContactRequest, ContactUpdate, RetractContactRequest
from proto.pairing_pb2 import SyncContactRequestDecision, SyncInstallationContactV2, SyncPairInstallation
from proto.push_notifications_pb2 import ContactCodeAdvertisement

from ..crypto.hashing import sha256
from ..crypto.keys import compress, parse_compressed
from ..errors import (
    DecryptionFailed,
    DeviceNotFound,
    MessageKeyDeleted,
    NotPairedDevice,
    SessionNotFound,
    SottovoceError,
    TooManySkippedKeys,
)
from ..identity import is_alias
from ..protocol import waku
from ..protocol.application import datasync, metadata, wire
from ..protocol.application import messages as app
from ..protocol.application.datasync import DatasyncMessage, application_bodies
from ..protocol.application.metadata import AmmType
from ..protocol.application.segmentation import Outcome, Reassembler, parse_segment, segment_message
from ..protocol.application.validation import ReceiveContext, validate, validate_display_name, validate_text
from ..protocol.bundle import NO_INSTALLATION_ID, Bundle
from ..protocol.encryption import EncryptionProtocol
from ..protocol.entropy import BytesPurpose, Entropy, KeyPurpose
from ..protocol.state import Installation, ProtocolState
from ..protocol.topics import Topic, contact_code_topic, negotiated_topic, partitioned_topic
from ..store.port import DeliveryState, Direction, OutboxItem, StoredMessage, StoreReader
from .datasync_state import DATASYNC_ACKS, DATASYNC_OUT, Outgoing, PendingAcks, first_transmission
from .errors import (
    BlockedPeer,
    ForgedAuthor,
    MisdirectedMessage,
    NoAccount,
    NoContactRequest,
    NotForUs,
    NotSubscribed,
    TooManySegments,
    UnknownInstallation,
    UnusableRecipient,
)
from .events import (
    ContactChanged,
    ContactRequestReceived,
    ContactSynced,
    EnvelopeRejected,
    Event,
    InstallationFound,
    InstallationPaired,
    MessageReceived,
    ProfileChanged,
)
from .peers import PEERS, AddressEntry, Peer
from .records import Account, load_account, load_state, stored_uint64

CHAT_CLOCKS = "chat_clocks"
"""Record kind: the Lamport clock of each 1:1 chat (key = the peer's C(IK))."""
ADVERTISED = "advertised"
"""Record kind: when we last answered an undecryptable message of a peer with our bundle."""
SEGMENTS = "segments"
"""Record kind: a segment of a message not complete yet (key = hash ‖ signer ‖ sha256(segment)[:8])."""
SEGMENTS_DONE = "segments_done"
"""Record kind: the hash of a message whose segments were all received (value = when, BE64 ns)."""
ADVERTISEMENT_INTERVAL_NS = 7_200 * 10**9
"""At most one bundle advertisement per peer per 2 h (spec §6.6, the throttle status-go intended)."""
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
MAX_MESSAGES_PER_PAYLOAD = 100
"""Datasync messages due together for one peer go out in payloads of at most this many."""
MAX_TRANSMISSIONS = datasync.MAX_SEND_COUNT + 1

_HEALABLE = (DeviceNotFound, SessionNotFound, DecryptionFailed)
"""Failures a fresh bundle of ours lets the peer repair (a replay or a flood of skipped keys is not one)."""
_NOT_HEALABLE = (MessageKeyDeleted, TooManySkippedKeys)
_NO_PEER = Peer()

Record = tuple[str, bytes, bytes | None]
"""A record to write (kind, key, value), or to delete when the value is None."""


@dataclass(slots=True)
class Step:
    """The outcome of one protocol step, to commit in one transaction (protocol state: ``state.dirty``).

    ``consumed`` says whether the envelope is done with (processed or permanently rejected) and must be
    remembered as seen; ``authenticated`` that its payload opened and carried a valid signature (only then
    does its Waku message hash, which does not cover every field, name it); ``rejected`` is why an incoming
    envelope or message was dropped; ``delivered`` are outgoing messages the peer acknowledged.
    """

    messages: list[StoredMessage] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    address_book: list[ContactSynced] = field(default_factory=list)
    consumed: bool = True
    authenticated: bool = False
    rejected: SottovoceError | None = None

    def reject(self, error: SottovoceError) -> None:
        self.rejected = error
        self.events.append(EnvelopeRejected(error.code, str(error)))


class Opening(NamedTuple):
    """What opening an envelope gave (:meth:`SessionCore.open`): its data and signer, or why it did not open."""

    opened: waku.ReceivedEnvelope | None
    error: SottovoceError | None

    @property
    def sender(self) -> bytes | None:
        """The signer's compressed key, None if the envelope did not open."""
        return None if self.opened is None else self.opened.signer


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A queued chat message: its id, and who it was encrypted to.

    ``recipients`` are the peer's installation ids the message was encrypted to (``("none",)`` on the
    DH-header path, readable by any installation of the peer); ``copies`` are this account's paired
    installations that get a copy. ``envelope`` and ``copy_envelope`` are the outbox items' hashes;
    ``stored`` is the message as the step stores it (state ``QUEUED``).
    """

    message_id: str
    recipients: tuple[str, ...]
    copies: tuple[str, ...]
    envelope: bytes
    copy_envelope: bytes | None
    stored: StoredMessage

    @property
    def forward_secret(self) -> bool:
        """Encrypted through the Double Ratchet to named installations (not the DH-header path)."""
        return self.stored.forward_secret


@dataclass(frozen=True, slots=True)
class _Transmitted:
    message: pb.ProtocolMessage
    items: list[OutboxItem]


class SessionCore:
    """The 1:1 messaging state machine of one installation of one account."""

    def __init__(self, account: Account, state: ProtocolState, chat_clocks: Mapping[bytes, int] | None = None,
                 advertised: Mapping[bytes, int] | None = None, peers: Mapping[bytes, Peer] | None = None,
                 outgoing: Mapping[bytes, Outgoing] | None = None,
                 acks: Mapping[bytes, PendingAcks] | None = None) -> None:
        self.account = account
        self.state = state
        self.protocol = EncryptionProtocol(state)
        self.chat_clocks = dict(chat_clocks or {})
        self.advertised = dict(advertised or {})
        self.peers = dict(peers or {})
        self.outgoing = dict(outgoing or {})
        """MVDS id -> a datasync message not acknowledged yet"""
        self.acks = dict(acks or {})
        """peer -> MVDS ids to acknowledge"""
        self.segments = Reassembler()
        self._segment_keys: dict[bytes, list[bytes]] = {}
        self._next_due: int | None = None
        self._refresh_next_due()
        self._keyed: dict[str, Topic] = {}
        self._subscriptions: dict[str, waku.EnvelopeKey] = {}
        self._subscribed_for = (-1, -1, -1)

    @classmethod
    def load(cls, store: StoreReader) -> SessionCore:
        """The core as committed in ``store`` (which must hold an account)."""
        account = load_account(store)
        if account is None:
            raise NoAccount()
        clocks = {key: stored_uint64(value, "chat clock") for key, value in store.records(CHAT_CLOCKS)}
        advertised = {key: stored_uint64(value, "advertisement time") for key, value in store.records(ADVERTISED)}
        peers = {key: Peer.from_bytes(value) for key, value in store.records(PEERS)}
        outgoing = {key: Outgoing.from_bytes(value) for key, value in store.records(DATASYNC_OUT)}
        acks = {key: PendingAcks.from_bytes(value) for key, value in store.records(DATASYNC_ACKS)}
        core = cls(account, load_state(store, account), clocks, advertised, peers, outgoing, acks)
        for key, _ in store.records(SEGMENTS_DONE):
            core.segments.mark_completed(key)
        for key, value in store.records(SEGMENTS):
            core.segments.receive(value, key[32:65])
            core._segment_keys.setdefault(key[:65], []).append(key)
        return core

    @property
    def identity(self) -> bytes:
        """This account's compressed identity (chat) key."""
        return self.account.identity.public

    @property
    def installation_id(self) -> str:
        return self.account.installation_id

    # --- topics -----------------------------------------------------------------------------------------

    def _topic(self, topic: Topic) -> Topic:
        """``topic`` with its symmetric key, derived once (PBKDF2 is slow)."""
        keyed = self._keyed.get(topic.name)
        if keyed is None:
            keyed = self._keyed[topic.name] = topic.with_key()
        return keyed

    def contacts(self) -> list[bytes]:
        """Every other identity this installation has a chat with, a contact state for, or an installation of."""
        known = {identity for identity, _ in self.state.installations} | self.chat_clocks.keys() | self.peers.keys()
        known.discard(self.identity)
        return sorted(known)

    def subscriptions(self) -> dict[str, waku.EnvelopeKey]:
        """Content topic -> envelope key, for every topic this installation listens on (spec §9.3).

        Own partitioned topic (ECIES), and the contact-code and negotiated topics of this account and of every
        :meth:`contacts` identity. Neither installations nor chats are forgotten, so the set only grows.
        """
        version = (len(self.state.installations), len(self.chat_clocks), len(self.peers))
        if self._subscribed_for != version:
            self._subscriptions = self._compute_subscriptions()
            self._subscribed_for = version
        return self._subscriptions

    def _compute_subscriptions(self) -> dict[str, waku.EnvelopeKey]:
        keys: dict[str, waku.EnvelopeKey] = {
            partitioned_topic(self.identity).content_topic: waku.AsymmetricKey(self.account.identity.private),
        }
        for identity in [self.identity, *self.contacts()]:
            code = self._topic(contact_code_topic(identity))
            assert code.sym_key is not None
            keys[code.content_topic] = waku.SymmetricKey(code.sym_key)
            negotiated = self._topic(negotiated_topic(self.state.negotiated_secret(identity)))
            assert negotiated.sym_key is not None
            keys[negotiated.content_topic] = waku.SymmetricKey(negotiated.sym_key)
        return keys

    # --- bundles and devices ----------------------------------------------------------------------------

    def own_bundle(self, now_ns: int, entropy: Entropy) -> Bundle:
        """This installation's current signed bundle (rotating the prekey after 24 h)."""
        return self.protocol.own_bundle(now_ns, entropy)

    def learn_bundle(self, bundle: Bundle, now_ns: int) -> Step:
        """A bundle received out of band (contact code, QR, pairing code): verify and learn it."""
        step = Step()
        for installation_id in self.protocol.process_bundle(bundle, now_ns):
            step.events.append(InstallationFound(bundle.identity, installation_id, bundle.identity == self.identity))
        return step

    def devices(self) -> list[Installation]:
        """This account's other installations known here, newest bundle first."""
        found = [i for i in self.state.installations.values() if i.identity == self.identity]
        return sorted(found, key=lambda i: i.timestamp, reverse=True)

    def pair(self, installation_id: str, now_ns: int, entropy: Entropy,
             address_book: Mapping[bytes, AddressEntry] | None = None) -> Step:
        """Enable an own installation, send it our installation metadata (spec §8.4, app §8.1), then every
        contact we know (app §8.2: ``SyncInstallationContactV2``, with the user's nicknames)."""
        self._own_installation(installation_id)
        self.state.set_installation_enabled(self.identity, installation_id, True)
        step = Step()
        step.events.append(InstallationPaired(installation_id, self.state.installations[
            (self.identity, installation_id)].name))
        self._send_pairing(step, installation_id, now_ns, entropy)
        book = dict(address_book or {})
        contacts = sorted((self.peers.keys() | book.keys()) - {self.identity})
        self._sync_contacts(step, [(peer, book.get(peer)) for peer in contacts], now_ns, entropy)
        return step

    def unpair(self, installation_id: str) -> Step:
        """Disable an own installation: it gets no more copies and leaves our bundle (local, as status-go)."""
        self._own_installation(installation_id)
        self.state.set_installation_enabled(self.identity, installation_id, False)
        return Step()

    def _own_installation(self, installation_id: str) -> None:
        if installation_id == self.installation_id or (self.identity, installation_id) not in \
                self.state.installations:
            raise UnknownInstallation(f"no other installation {installation_id!r} of this account is known")

    def _send_pairing(self, step: Step, target: str, now_ns: int, entropy: Entropy) -> None:
        clock = self._next_clock(step, self.identity, now_ns)
        inner = app.sync_pair_installation(clock=clock, installation_id=self.installation_id,
                                           device_type=self.account.device_type or "desktop",
                                           name=self.account.device_name or "Sottovoce",
                                           target_installation_id=target)
        wrapped = app.sign(inner, self.account.identity.private, self.identity)
        message = self.protocol.encrypt_with_dh(self.identity, wrapped.amm, now_ns, entropy)
        step.outbox.extend(self._envelope(self.identity, message, now_ns, entropy, None))

    def advertise(self, now_ns: int, entropy: Entropy) -> Step:
        """The contact-code broadcast: our bundle, readable by anyone who knows our chat key (spec §9.3)."""
        advert = ContactCodeAdvertisement(chat_identity=ChatIdentity(
            clock=now_ns // NS_PER_MS, display_name=self._display_name()))
        wrapped = metadata.wrap(wire.go_marshal(advert), AmmType.CONTACT_CODE_ADVERTISEMENT,
                                self.account.identity.private)
        message = self.protocol.public_message(wrapped.amm, now_ns, entropy)
        step = Step()
        step.outbox.extend(self._seal(self._topic(contact_code_topic(self.identity)), message, now_ns, entropy,
                                      None))
        return step

    def _display_name(self) -> str:
        return app.sendable_display_name(self.account.display_name, is_alias)

    # --- contacts ---------------------------------------------------------------------------------------

    def peer(self, identity: bytes) -> Peer:
        """What we know of ``identity`` (a blank state for a stranger)."""
        return self.peers.get(identity, _NO_PEER)

    def _update_peer(self, step: Step, identity: bytes, peer: Peer) -> None:
        before = self.peer(identity)
        if peer == before:
            return
        self.peers[identity] = peer
        step.records.append((PEERS, identity, peer.to_bytes()))
        if (peer.added, peer.has_added_us, peer.blocked) != (before.added, before.has_added_us, before.blocked):
            step.events.append(ContactChanged(identity, peer.added, peer.has_added_us, peer.blocked))
        if peer.display_name != before.display_name:
            step.events.append(ProfileChanged(identity, peer.display_name))

    def add_contact(self, peer: bytes, now_ns: int, entropy: Entropy, entry: AddressEntry | None = None) -> Step:
        """We add ``peer``: our request state goes to "sent", and a ContactUpdate with our display name tells
        the peer (status-go's ``AddContact``, spec §7.2); our other devices get the contact. Adding a contact
        already added sends nothing."""
        self._check_recipient(peer)
        step = Step()
        if self.peer(peer).added:
            return step
        self._update_peer(step, peer, self.peer(peer).request(self._next_clock(step, peer, now_ns)))
        self._send_contact_update(step, peer, now_ns, entropy)
        self._sync_contacts(step, [(peer, entry)], now_ns, entropy)
        return step

    def send_contact_request(self, peer: bytes, text: str, now_ns: int, entropy: Entropy,
                             entry: AddressEntry | None = None) -> tuple[SentMessage, Step]:
        """A contact request: a chat message of content type 11 carrying our "sent" state (spec §7.2)."""
        validate_text(text)
        self._check_recipient(peer)
        step = Step()
        request_clock = self._next_clock(step, peer, now_ns)
        updated = self.peer(peer).request(request_clock)
        self._update_peer(step, peer, updated)
        inner = app.contact_request(clock=self._next_clock(step, peer, now_ns), timestamp=now_ns // NS_PER_MS,
                                    chat_id=app.key_id(peer), display_name=self._display_name(),
                                    request_clock=updated.local_clock, text=text,
                                    remote_clock=updated.remote_clock, remote_state=updated.remote_state)
        sent = self._send_chat_message(step, peer, inner, now_ns, entropy)
        self._sync_contacts(step, [(peer, entry)], now_ns, entropy)
        return sent, step

    def accept_contact_request(self, peer: bytes, now_ns: int, entropy: Entropy,
                               entry: AddressEntry | None = None) -> Step:
        """Accept the peer's request: ``AcceptContactRequest`` through datasync, and our devices told (§7.4)."""
        current = self.peer(peer)
        if not current.has_added_us:
            raise NoContactRequest()
        step = Step()
        clock = self._next_clock(step, peer, now_ns)
        request_id = current.request_id or app.default_contact_request_id(peer)
        self._update_peer(step, peer, current.request(clock))
        self._send_datasync(step, peer, self._sign(app.accept_contact_request(request_id, clock)), now_ns=now_ns,
                            entropy=entropy)
        self._sync_decision(step, request_id, False, now_ns, entropy)
        self._sync_contacts(step, [(peer, entry)], now_ns, entropy)
        return step

    def decline_contact_request(self, peer: bytes, now_ns: int, entropy: Entropy) -> Step:
        """Decline the peer's request: local, and shared with our devices; the requester is never told (§7.5)."""
        current = self.peer(peer)
        if not current.pending_request:
            raise NoContactRequest()
        step = Step()
        self._update_peer(step, peer, current.dismiss(self._next_clock(step, peer, now_ns)))
        self._sync_decision(step, current.request_id or app.default_contact_request_id(peer), True, now_ns, entropy)
        self._sync_contacts(step, [(peer, None)], now_ns, entropy)
        return step

    def remove_contact(self, peer: bytes, now_ns: int, entropy: Entropy) -> Step:
        """Remove the peer: both requests are forgotten, and ``RetractContactRequest`` tells the peer (§7.6)."""
        step = Step()
        clock = self._next_clock(step, peer, now_ns)
        self._update_peer(step, peer, self.peer(peer).retract(clock))
        self._send_datasync(step, peer, self._sign(app.retract_contact_request(clock)), now_ns=now_ns,
                            entropy=entropy)
        self._sync_contacts(step, [(peer, None)], now_ns, entropy)
        return step

    def set_blocked(self, peer: bytes, blocked: bool, now_ns: int, entropy: Entropy,
                    entry: AddressEntry | None = None) -> Step:
        """Block (or unblock) the peer: its envelopes are dropped unread and nothing more is sent to it."""
        self._check_recipient(peer)
        step = Step()
        self._update_peer(step, peer, self.peer(peer).with_blocked(blocked))
        if blocked:
            self._forget_datasync(step, peer)
        self._sync_contacts(step, [(peer, entry)], now_ns, entropy)
        return step

    def sync_contact(self, peer: bytes, now_ns: int, entropy: Entropy, entry: AddressEntry | None) -> Step:
        """Share the user's changed record of ``peer`` (nickname, verified) with our other devices."""
        step = Step()
        self._sync_contacts(step, [(peer, entry)], now_ns, entropy)
        return step

    def _send_contact_update(self, step: Step, peer: bytes, now_ns: int, entropy: Entropy) -> None:
        state = self.peer(peer).propagated()
        inner = app.contact_update(clock=self._next_clock(step, peer, now_ns), display_name=self._display_name(),
                                   public_key=app.key_id(peer), propagated_state=state)
        self._send_datasync(step, peer, self._sign(inner), now_ns=now_ns, entropy=entropy)

    def _sync_contacts(self, step: Step, contacts: Iterable[tuple[bytes, AddressEntry | None]], now_ns: int,
                       entropy: Entropy) -> None:
        if not self.state.active_installations(self.identity):
            return
        bodies = []
        for identity, given in contacts:
            peer, entry = self.peer(identity), given or AddressEntry()
            inner = app.sync_installation_contact(
                clock=self._next_clock(step, self.identity, now_ns), public_key=identity, state=peer.propagated(),
                nickname=entry.nickname, display_name=peer.display_name, verified=entry.verified,
                blocked=peer.blocked, last_updated=peer.last_updated, customization_color=peer.customization_color)
            bodies.append(self._sign(inner))
        self._send_datasync(step, self.identity, *bodies, now_ns=now_ns, entropy=entropy)

    def _sync_decision(self, step: Step, request_id: str, declined: bool, now_ns: int, entropy: Entropy) -> None:
        if self.state.active_installations(self.identity):
            inner = app.contact_request_decision(clock=self._next_clock(step, self.identity, now_ns),
                                                 request_id=request_id, declined=declined)
            self._send_datasync(step, self.identity, self._sign(inner), now_ns=now_ns, entropy=entropy)

    # --- sending ----------------------------------------------------------------------------------------

    def _check_recipient(self, peer: bytes) -> None:
        try:
            parse_compressed(peer)
        except SottovoceError as exc:
            raise UnusableRecipient("that is not a valid chat key") from exc
        if peer == self.identity:
            raise UnusableRecipient("a 1:1 chat needs another account's chat key, not your own")

    def check_text(self, peer: bytes, text: str) -> None:
        """Raise what :meth:`send_text` would raise before changing anything (``EmptyText``, ``TextTooLong``,
        ``UnusableRecipient``); anything it raises after that is a fault, not a refusal."""
        validate_text(text)
        self._check_recipient(peer)

    def send_text(self, peer: bytes, text: str, now_ns: int, entropy: Entropy) -> tuple[SentMessage, Step]:
        """Queue a text message to ``peer`` (33-byte key) and its copy to our paired installations.

        Returns what was sent and the step holding the stored message and the outbox items.
        """
        self.check_text(peer, text)
        step = Step()
        inner = app.chat_message(clock=self._next_clock(step, peer, now_ns), timestamp=now_ns // NS_PER_MS,
                                 text=text, chat_id=app.key_id(peer), display_name=self._display_name(),
                                 propagated_state=self.peer(peer).propagated())
        return self._send_chat_message(step, peer, inner, now_ns, entropy), step

    def _send_chat_message(self, step: Step, peer: bytes, inner: ChatMessage, now_ns: int,
                           entropy: Entropy) -> SentMessage:
        """Datasync ``inner`` to the peer, and the same AMM as a copy to our paired installations (§8.3)."""
        wrapped = app.sign(inner, self.account.identity.private, self.identity)
        to_peer = self._send_datasync(step, peer, wrapped.amm, now_ns=now_ns, entropy=entropy,
                                      message_id=wrapped.message_id)
        assert to_peer is not None  # the DH-header path always reaches a peer
        copies: tuple[str, ...] = ()
        copy_envelope = None
        to_self = self._send_datasync(step, self.identity, wrapped.amm, now_ns=now_ns, entropy=entropy)
        if to_self is not None:
            copies = tuple(sorted(to_self.message.encrypted_message))
            copy_envelope = to_self.items[-1].envelope_hash
        recipients = tuple(sorted(to_peer.message.encrypted_message))
        stored = StoredMessage(wrapped.message_id, peer, self.identity, self.installation_id, Direction.OUT,
                               inner.text, inner.clock, inner.timestamp, now_ns,
                               NO_INSTALLATION_ID not in recipients, DeliveryState.QUEUED)
        step.messages.append(stored)
        return SentMessage(wrapped.message_id, recipients, copies, to_peer.items[-1].envelope_hash, copy_envelope,
                           stored)

    def _sign(self, inner: ProtoMessage) -> bytes:
        return app.sign(inner, self.account.identity.private, self.identity).amm

    def _send_datasync(self, step: Step, recipient: bytes, *bodies: bytes, now_ns: int, entropy: Entropy,
                       message_id: str = "") -> _Transmitted | None:
        """Send AMMs to ``recipient`` (a peer, or our own identity for our paired installations) as new
        datasync messages, remembered until acknowledged; None when there is nobody to send them to."""
        if not bodies or (recipient == self.identity and not self.state.active_installations(self.identity)):
            return None  # (a tick forgets what is still owed to own installations that were unpaired since)
        group = datasync.group_id(self.identity, recipient)
        timestamp = now_ns // NS_PER_S
        outgoing = [first_transmission(recipient, DatasyncMessage(group, timestamp, body), now_ns, entropy,
                                       message_id) for body in bodies]
        return self._transmit(step, recipient, outgoing, now_ns, entropy, message_id or None)

    def _transmit(self, step: Step, recipient: bytes, outgoing: list[Outgoing], now_ns: int, entropy: Entropy,
                  message_id: str | None = None) -> _Transmitted | None:
        """One datasync payload to ``recipient``: ``outgoing`` plus every ack we owe it."""
        pending = self.acks.get(recipient)
        acks = pending.ids if pending is not None else ()
        own = recipient == self.identity
        if own and not self.state.active_installations(self.identity):
            self._forget_datasync(step, recipient)
            return None
        payload = datasync.wrap([o.message for o in outgoing], acks)
        message = self.protocol.encrypt(recipient, payload, now_ns, entropy, dh_fallback=not own)
        if not message.encrypted_message:
            self._forget_datasync(step, recipient)
            return None
        if pending is not None:
            del self.acks[recipient]
            step.records.append((DATASYNC_ACKS, recipient, None))
        for out in outgoing:
            self.outgoing[out.mvds_id] = out
            step.records.append((DATASYNC_OUT, out.mvds_id, out.to_bytes()))
            self._due(out.next_due_ns)
        items = self._envelope(recipient, message, now_ns, entropy, message_id)
        step.outbox.extend(items)
        return _Transmitted(message, items)

    def _forget_datasync(self, step: Step, recipient: bytes) -> None:
        """Nothing more is owed to ``recipient``: drop its retransmissions and acks."""
        for mvds_id in [i for i, out in self.outgoing.items() if out.peer == recipient]:
            del self.outgoing[mvds_id]
            step.records.append((DATASYNC_OUT, mvds_id, None))
        if self.acks.pop(recipient, None) is not None:
            step.records.append((DATASYNC_ACKS, recipient, None))

    # --- the datasync clock -----------------------------------------------------------------------------

    @property
    def next_due_ns(self) -> int | None:
        """When :meth:`tick` next has something to send (a retransmission or acks), or None."""
        return self._next_due

    def _due(self, when: int) -> None:
        if self._next_due is None or when < self._next_due:
            self._next_due = when

    def _refresh_next_due(self) -> None:
        dues = [out.next_due_ns for out in self.outgoing.values()] + [a.due_ns for a in self.acks.values()]
        self._next_due = min(dues) if dues else None

    def tick(self, now_ns: int, entropy: Entropy) -> Step:
        """Send what datasync has due: retransmissions (status-go's back-off, 16 at most) and acks (§5.5)."""
        step = Step()
        due: dict[bytes, list[Outgoing]] = {}
        for mvds_id, out in list(self.outgoing.items()):
            if out.next_due_ns > now_ns:
                continue
            if out.send_count >= MAX_TRANSMISSIONS or self.peer(out.peer).blocked:
                del self.outgoing[mvds_id]
                step.records.append((DATASYNC_OUT, mvds_id, None))
                continue
            due.setdefault(out.peer, []).append(out.sent_again(now_ns, entropy))
        for peer, pending in self.acks.items():
            if pending.due_ns <= now_ns:
                due.setdefault(peer, [])
        for peer, outs in due.items():
            for start in range(0, max(len(outs), 1), MAX_MESSAGES_PER_PAYLOAD):
                self._transmit(step, peer, outs[start:start + MAX_MESSAGES_PER_PAYLOAD], now_ns, entropy)
        self._refresh_next_due()
        return step

    def _set_clock(self, step: Step, chat: bytes, clock: int) -> None:
        if clock > self.chat_clocks.get(chat, 0):
            self.chat_clocks[chat] = clock
            step.records.append((CHAT_CLOCKS, chat, clock.to_bytes(8, "big")))

    def _next_clock(self, step: Step, chat: bytes, now_ns: int) -> int:
        clock = app.next_clock(self.chat_clocks.get(chat, 0), now_ns // NS_PER_MS)
        self._set_clock(step, chat, clock)
        return clock

    # --- envelopes --------------------------------------------------------------------------------------

    def _envelope(self, recipient: bytes, message: pb.ProtocolMessage, now_ns: int, entropy: Entropy,
                  message_id: str | None) -> list[OutboxItem]:
        """Seal a 1:1 ProtocolMessage on the negotiated topic once agreed, else the partitioned one (§9.1)."""
        installations = [key for key in message.encrypted_message if key != NO_INSTALLATION_ID]
        if installations and self.state.agreed(recipient, installations):
            topic = self._topic(negotiated_topic(self.state.negotiated_secret(recipient)))
            return self._seal(topic, message, now_ns, entropy, message_id)
        return self._sealed(partitioned_topic(recipient), message, now_ns, message_id,
                            lambda data: waku.seal_asymmetric(
                                data, self.account.identity.private, recipient, padding=_padding(data, entropy),
                                ephemeral=entropy.new_key(KeyPurpose.ECIES_EPHEMERAL),
                                iv=entropy.random_bytes(waku.ECIES_IV_LEN, BytesPurpose.ECIES_IV)))

    def _seal(self, topic: Topic, message: pb.ProtocolMessage, now_ns: int, entropy: Entropy,
              message_id: str | None) -> list[OutboxItem]:
        key = topic.sym_key
        assert key is not None
        return self._sealed(topic, message, now_ns, message_id, lambda data: waku.seal_symmetric(
            data, self.account.identity.private, key, padding=_padding(data, entropy),
            nonce=entropy.random_bytes(12, BytesPurpose.GCM_NONCE)))

    @staticmethod
    def _sealed(topic: Topic, message: pb.ProtocolMessage, now_ns: int, message_id: str | None,
                seal: Callable[[bytes], bytes]) -> list[OutboxItem]:
        """Outbox items for ``message`` on ``topic``: one per segment (app §4.3), each sealed on its own; only
        the last names the message, so it is shown as sent once every segment is."""
        items = [_outbox_item(waku.build_message(seal(data), topic.content_topic, now_ns), topic.topic, None, now_ns)
                 for data in segment_message(message.SerializeToString(deterministic=True))]
        items[-1] = dataclasses.replace(items[-1], message_id=message_id)
        return items

    # --- receiving --------------------------------------------------------------------------------------

    def open(self, envelope: waku.WakuMessage) -> Opening:
        """Decrypt ``envelope`` with its topic's key and recover its signer; changes nothing (so a caller can
        learn who sent an envelope, to schedule it, before :meth:`receive` processes it)."""
        key = self.subscriptions().get(envelope.content_topic)
        if key is None:
            return Opening(None, NotSubscribed())
        try:
            return Opening(envelope.open(key), None)
        except SottovoceError as exc:
            # On our partitioned topic (shared with ~1/5000 of all users) most envelopes are for others.
            return Opening(None, NotForUs() if isinstance(key, waku.AsymmetricKey)
                           and isinstance(exc, DecryptionFailed) else exc)

    def receive(self, envelope: waku.WakuMessage, now_ns: int, entropy: Entropy,
                opening: Opening | None = None) -> Step:
        """Process one Waku message from a subscribed topic; a rejection is reported in the step, not raised.

        ``opening``: what :meth:`open` gave for this envelope, if the caller opened it already."""
        step = Step()
        opened, error = opening or self.open(envelope)
        if opened is None:
            # Not subscribed: a topic we may subscribe to later, catch-up will offer it again.
            step.consumed = not isinstance(error, NotSubscribed)
            step.reject(error or NotSubscribed())
            return step
        step.authenticated = True
        sender = opened.signer
        if self.peer(sender).blocked:
            step.reject(BlockedPeer())
            return step
        data = self._reassemble(step, opened.data, sender, now_ns)
        if data is None:
            return step
        known_before = set(self.state.installations)
        try:
            decrypted = self.protocol.decrypt(sender, data, now_ns, entropy)
        except NotPairedDevice as exc:
            step.reject(exc)  # a sibling's message to a peer, seen on the shared negotiated topic (§8.6)
            return step
        except SottovoceError as exc:
            self._report_new_installations(step, known_before)
            step.reject(exc)
            if isinstance(exc, _HEALABLE) and not isinstance(exc, _NOT_HEALABLE):
                self._advertise_to(step, sender, now_ns, entropy)
            return step
        self._report_new_installations(step, known_before)
        self.state.saw_installation(sender, decrypted.sender_installation, now_ns)
        own_echo = sender == self.identity and decrypted.sender_installation == self.installation_id
        if not decrypted.plaintext or own_echo:
            return step  # bundle advertisement or own echo
        context = ReceiveContext(self.identity, envelope.sent_s * 1000, is_alias, now_ns // NS_PER_MS)
        if decrypted.public:
            self._public(step, decrypted.plaintext, sender, context)
            return step
        unwrapped = application_bodies(decrypted.plaintext)
        if unwrapped.payload is not None:
            self._datasync_received(step, sender, unwrapped.payload, now_ns)
        for body in unwrapped.bodies:
            try:
                self._application(step, body, sender, decrypted.sender_installation, decrypted.forward_secret,
                                  context, now_ns, entropy)
            except SottovoceError as exc:
                step.reject(exc)
        return step

    def _reassemble(self, step: Step, data: bytes, sender: bytes, now_ns: int) -> bytes | None:
        """The segmentation layer (app §4.5): the whole payload, or None while segments are missing."""
        result = self.segments.receive(data, sender)
        if result.outcome == Outcome.NOT_A_SEGMENT:
            return data
        entire = parse_segment(data).entire_message_hash
        if result.outcome == Outcome.TOO_MANY:
            step.reject(TooManySegments())
            return None
        if result.outcome == Outcome.INCOMPLETE:
            key = entire + sender + sha256(data)[:8]
            self._segment_keys.setdefault(entire + sender, []).append(key)
            step.records.append((SEGMENTS, key, data))
            return None
        if result.outcome == Outcome.COMPLETE:
            for key in self._segment_keys.pop(entire + sender, []):
                step.records.append((SEGMENTS, key, None))
            step.records.append((SEGMENTS_DONE, entire, now_ns.to_bytes(8, "big")))
        return result.data

    def _datasync_received(self, step: Step, sender: bytes, payload: datasync.DatasyncPayload, now_ns: int) -> None:
        """Acks stop retransmissions (and mark chat messages delivered); every message received is acked."""
        for mvds_id in payload.acks:
            out = self.outgoing.get(mvds_id)
            if out is None or out.peer != sender:
                continue
            del self.outgoing[mvds_id]
            step.records.append((DATASYNC_OUT, mvds_id, None))
            if out.message_id and sender != self.identity:
                step.delivered.append(out.message_id)
        if payload.messages:
            pending = (self.acks.get(sender) or PendingAcks((), now_ns)).adding(*(m.id for m in payload.messages))
            self.acks[sender] = pending
            step.records.append((DATASYNC_ACKS, sender, pending.to_bytes()))
            self._due(pending.due_ns)

    def _report_new_installations(self, step: Step, known_before: set[tuple[bytes, str]]) -> None:
        for identity, installation_id in self.state.installations.keys() - known_before:
            step.events.append(InstallationFound(identity, installation_id, identity == self.identity))

    def _advertise_to(self, step: Step, peer: bytes, now_ns: int, entropy: Entropy) -> None:
        """Answer an undecryptable message with our bundle, at most every 2 h per peer (spec §6.6)."""
        last = self.advertised.get(peer)
        if last is not None and now_ns - last < ADVERTISEMENT_INTERVAL_NS:
            return
        self.advertised[peer] = now_ns
        step.records.append((ADVERTISED, peer, now_ns.to_bytes(8, "big")))
        message = self.protocol.encrypt_with_dh(peer, b"", now_ns, entropy)
        step.outbox.extend(self._envelope(peer, message, now_ns, entropy, None))

    def _public(self, step: Step, body: bytes, sender: bytes, context: ReceiveContext) -> None:
        """A contact-code broadcast: its bundle was learned by the encryption layer; take the display name."""
        if sender == self.identity:
            return
        try:
            parsed = metadata.parse(body, sender)
        except SottovoceError as exc:
            step.reject(exc)
            return
        if parsed.type != AmmType.CONTACT_CODE_ADVERTISEMENT or parsed.author is None \
                or compress(parsed.author) != sender:
            return
        verdict = validate(parsed, context)
        if isinstance(verdict.inner, ContactCodeAdvertisement) and verdict.accepted:
            identity = verdict.inner.chat_identity
            if identity.display_name:
                try:
                    validate_display_name(identity.display_name, is_alias)
                except SottovoceError as exc:
                    step.reject(exc)
                    return
                self._update_peer(step, sender, self.peer(sender).announced(identity.display_name, identity.clock))

    def _application(self, step: Step, body: bytes, sender: bytes, installation: str, forward_secret: bool,
                     context: ReceiveContext, now_ns: int, entropy: Entropy) -> None:
        parsed = metadata.parse(body, sender)
        if parsed.author is None:
            return  # an ack-only datasync payload parses as an empty unsigned AMM: nothing to show
        if compress(parsed.author) != sender:
            raise ForgedAuthor()
        verdict = validate(parsed, context)
        verdict.raise_if_rejected()
        inner = verdict.inner
        if isinstance(inner, ChatMessage):
            self._chat_message(step, parsed.message_id, inner, sender, installation, forward_secret, now_ns,
                               entropy)
        elif sender == self.identity:
            self._from_own_device(step, inner, installation)
        elif isinstance(inner, ContactUpdate):
            self._contact_update(step, inner, sender)
        elif isinstance(inner, AcceptContactRequest):
            current = self.peer(sender)
            if current.remote_clock <= inner.clock:
                self._they_request(step, sender, current, inner.clock, inner.id, "")
        elif isinstance(inner, RetractContactRequest):
            self._update_peer(step, sender, self.peer(sender).retracted(inner.clock))
        elif isinstance(inner, ChatIdentity):
            self._update_peer(step, sender, self.peer(sender).announced(inner.display_name, inner.clock,
                                                                       inner.customization_color))

    def _from_own_device(self, step: Step, inner: object, installation: str) -> None:
        if isinstance(inner, SyncPairInstallation):
            self._pair_installation(step, inner, installation)
        elif isinstance(inner, SyncInstallationContactV2):
            self._synced_contact(step, inner)
        elif isinstance(inner, SyncContactRequestDecision):
            self._synced_decision(step, inner)

    def _they_request(self, step: Step, sender: bytes, current: Peer, clock: int, request_id: str,
                      text: str) -> None:
        updated, new = current.requested(clock, request_id, text)
        self._update_requester(step, sender, updated, new)

    def _update_requester(self, step: Step, sender: bytes, peer: Peer, new_request: bool) -> None:
        """Store the peer's state; a new request from someone we have not added is one to answer."""
        self._update_peer(step, sender, peer)
        if new_request and not peer.added:
            step.events.append(ContactRequestReceived(sender, peer.request_id, peer.request_text, peer.display_name))

    def _chat_message(self, step: Step, message_id: str, inner: ChatMessage, sender: bytes, installation: str,
                      forward_secret: bool, now_ns: int, entropy: Entropy) -> None:
        if sender == self.identity:
            if installation == self.installation_id:
                return  # our own message coming back
            try:
                chat = compress(bytes.fromhex(inner.chat_id.removeprefix("0x")))
            except (ValueError, SottovoceError) as exc:
                raise MisdirectedMessage("a copy from an own installation names no valid chat") from exc
            direction = Direction.OUT_COPY
        else:
            if inner.chat_id != app.key_id(self.identity):
                raise MisdirectedMessage()
            chat, direction = sender, Direction.IN
            self._peer_state_in_message(step, message_id, inner, sender, now_ns, entropy)
        self._set_clock(step, chat, inner.clock)
        stored = StoredMessage(message_id, chat, sender, installation, direction, inner.text, inner.clock,
                               inner.timestamp, now_ns, forward_secret, DeliveryState.RECEIVED)
        step.messages.append(stored)
        step.events.append(MessageReceived(stored))

    def _peer_state_in_message(self, step: Step, message_id: str, inner: ChatMessage, sender: bytes, now_ns: int,
                               entropy: Entropy) -> None:
        """A peer's chat message carries its contact-request state and display name (§7.1, §7.3, §7.8)."""
        before = self.peer(sender)
        current = before.announced(inner.display_name, inner.clock)
        new_request = send_back = False
        if inner.HasField("contact_request_propagated_state"):
            outcome = current.receive_propagated(inner.contact_request_propagated_state, message_id, inner.text)
            current, new_request, send_back = outcome.peer, outcome.new_request, outcome.send_back
        if inner.content_type == ChatMessage.ContentType.CONTACT_REQUEST and not (current.mutual or current.dismissed):
            current, new = current.requested(inner.clock, message_id, inner.text)
            new_request = new_request or new
        self._update_requester(step, sender, current, new_request)
        if send_back:
            self._send_contact_update(step, sender, now_ns, entropy)

    def _contact_update(self, step: Step, inner: ContactUpdate, sender: bytes) -> None:
        made_up_id = app.default_contact_request_id(sender)
        outcome = self.peer(sender).receive_propagated(inner.contact_request_propagated_state, made_up_id)
        current = outcome.peer
        new_request = outcome.new_request
        if inner.clock > current.last_updated:
            current = current.announced(inner.display_name, inner.clock, inner.customization_color)
            if inner.contact_request_clock:
                current, new = current.requested(inner.contact_request_clock, made_up_id)
                new_request = new_request or new
            current = current.updated_at(inner.clock)
        self._update_requester(step, sender, current, new_request)

    def _synced_contact(self, step: Step, inner: SyncInstallationContactV2) -> None:
        """An own installation's record of a contact (§8.4): its state, block, profile and the user's nickname."""
        try:
            identity = compress(bytes.fromhex(inner.id.removeprefix("0x")))
        except (ValueError, SottovoceError) as exc:
            raise MisdirectedMessage("a synced contact names no valid chat key") from exc
        if identity == self.identity:
            return
        current = self.peer(identity).synced(inner.contact_request_local_state, inner.contact_request_local_clock,
                                              inner.contact_request_remote_state,
                                              inner.contact_request_remote_clock)
        current = current.announced(inner.display_name, inner.last_updated, inner.customization_color)
        self._update_peer(step, identity, current.with_blocked(inner.blocked).updated_at(inner.last_updated))
        if inner.local_nickname:
            step.address_book.append(ContactSynced(identity, inner.local_nickname, inner.verification_status == 2,
                                                   current.display_name))

    def _synced_decision(self, step: Step, inner: SyncContactRequestDecision) -> None:
        found = next((identity for identity, peer in self.peers.items() if peer.request_id == inner.requestId), None)
        if found is None and inner.contactId:
            found = next((i for i in self.peers if app.key_id(i) == inner.contactId), None)
        if found is None:
            return
        current = self.peer(found)
        declined = inner.decision_status == SyncContactRequestDecision.DECLINED
        self._update_peer(step, found, current.dismiss(inner.clock) if declined else current.request(inner.clock))

    def _pair_installation(self, step: Step, inner: SyncPairInstallation, installation: str) -> None:
        """A sibling's metadata; when it is aimed at us, the pairing the user started there completes here."""
        if inner.installation_id != installation or (self.identity, installation) not in self.state.installations:
            raise UnknownInstallation("pairing message for an installation its bundle did not name")
        self.state.describe_installation(self.identity, installation, inner.name, inner.device_type)
        known = self.state.installations[(self.identity, installation)]
        if inner.target_installation_id == self.installation_id and not known.enabled:
            self.state.set_installation_enabled(self.identity, installation, True)
            step.events.append(InstallationPaired(installation, inner.name))


def _padding(data: bytes, entropy: Entropy) -> bytes:
    length = waku.padding_length(len(data))
    padding = entropy.random_bytes(length, BytesPurpose.PADDING)
    return padding if any(padding) or length <= 3 else b"\x01" + padding[1:]


def _outbox_item(message: waku.WakuMessage, topic: bytes, message_id: str | None, now_ns: int) -> OutboxItem:
    return OutboxItem(message.hash(), topic, message.to_bytes(), message_id, now_ns)
