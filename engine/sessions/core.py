"""One installation's 1:1 messaging, sans-I/O: from text to Waku envelopes, and from envelopes to messages.

:class:`SessionCore` stacks the layers of status-go's 1:1 path (spec: status-encryption.md §6-§10,
status-application.md §2, §6, §8): the signed application message (AMM + ChatMessage), the encryption layer
(:class:`~engine.protocol.encryption.EncryptionProtocol`: X3DH, Double Ratchet, installations), and the signed
Waku payload v1 on the right topic. Each call takes the time and an entropy source and returns a :class:`Step`:
what to store, what to publish, what to tell the user. The caller (:mod:`engine.sessions.engine`) commits a
step in one store transaction; the protocol state's own changes are in ``state.dirty``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto import encryption_pb2 as pb
from proto.chat_identity_pb2 import ChatIdentity
from proto.chat_message_pb2 import ChatMessage
from proto.pairing_pb2 import SyncPairInstallation
from proto.push_notifications_pb2 import ContactCodeAdvertisement

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
from ..protocol.application import messages as app
from ..protocol.application import metadata, wire
from ..protocol.application.datasync import application_bodies
from ..protocol.application.metadata import AmmType
from ..protocol.application.validation import ReceiveContext, validate, validate_text
from ..protocol.bundle import NO_INSTALLATION_ID, Bundle
from ..protocol.encryption import EncryptionProtocol
from ..protocol.entropy import BytesPurpose, Entropy, KeyPurpose
from ..protocol.state import Installation, ProtocolState
from ..protocol.topics import Topic, contact_code_topic, negotiated_topic, partitioned_topic
from ..store.port import DeliveryState, Direction, OutboxItem, StoredMessage, StoreReader
from .errors import (
    ForgedAuthor,
    MisdirectedMessage,
    NoAccount,
    NotForUs,
    NotSubscribed,
    UnknownInstallation,
    UnusableRecipient,
)
from .events import EnvelopeRejected, Event, InstallationFound, InstallationPaired, MessageReceived
from .records import Account, load_account, load_state

CHAT_CLOCKS = "chat_clocks"
"""Record kind: the Lamport clock of each 1:1 chat (key = the peer's C(IK))."""
ADVERTISED = "advertised"
"""Record kind: when we last answered an undecryptable message of a peer with our bundle."""
ADVERTISEMENT_INTERVAL_NS = 7_200 * 10**9
"""At most one bundle advertisement per peer per 2 h (spec §6.6, the throttle status-go intended)."""
NS_PER_MS = 1_000_000

_HEALABLE = (DeviceNotFound, SessionNotFound, DecryptionFailed)
"""Failures a fresh bundle of ours lets the peer repair (a replay or a flood of skipped keys is not one)."""
_NOT_HEALABLE = (MessageKeyDeleted, TooManySkippedKeys)


@dataclass(slots=True)
class Step:
    """The outcome of one protocol step, to commit in one transaction (protocol state: ``state.dirty``).

    ``consumed`` says whether the envelope is done with (processed or permanently rejected) and must be
    remembered as seen; ``authenticated`` that its payload opened and carried a valid signature (only then
    does its Waku message hash, which does not cover every field, name it); ``rejected`` is why an incoming
    envelope or message was dropped.
    """

    messages: list[StoredMessage] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    consumed: bool = True
    authenticated: bool = False
    rejected: SottovoceError | None = None

    def reject(self, error: SottovoceError) -> None:
        self.rejected = error
        self.events.append(EnvelopeRejected(error.code, str(error)))


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A queued chat message: its id, and who it was encrypted to.

    ``recipients`` are the peer's installation ids the message was encrypted to (``("none",)`` on the
    DH-header path, readable by any installation of the peer); ``copies`` are this account's paired
    installations that get a copy. ``envelope`` and ``copy_envelope`` are the outbox items' hashes.
    """

    message_id: str
    recipients: tuple[str, ...]
    copies: tuple[str, ...]
    envelope: bytes
    copy_envelope: bytes | None

    @property
    def forward_secret(self) -> bool:
        return NO_INSTALLATION_ID not in self.recipients


class SessionCore:
    """The 1:1 messaging state machine of one installation of one account."""

    def __init__(self, account: Account, state: ProtocolState, chat_clocks: dict[bytes, int] | None = None,
                 advertised: dict[bytes, int] | None = None) -> None:
        self.account = account
        self.state = state
        self.protocol = EncryptionProtocol(state)
        self.chat_clocks = dict(chat_clocks or {})
        self.advertised = dict(advertised or {})
        self._keyed: dict[str, Topic] = {}
        self._subscriptions: dict[str, waku.EnvelopeKey] = {}
        self._subscribed_for = (-1, -1)

    @classmethod
    def load(cls, store: StoreReader) -> SessionCore:
        """The core as committed in ``store`` (which must hold an account)."""
        account = load_account(store)
        if account is None:
            raise NoAccount()
        clocks = {key: int.from_bytes(value, "big") for key, value in store.records(CHAT_CLOCKS)}
        advertised = {key: int.from_bytes(value, "big") for key, value in store.records(ADVERTISED)}
        return cls(account, load_state(store, account), clocks, advertised)

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
        """Every other identity this installation has a chat with or knows an installation of."""
        known = {identity for identity, _ in self.state.installations} | self.chat_clocks.keys()
        known.discard(self.identity)
        return sorted(known)

    def subscriptions(self) -> dict[str, waku.EnvelopeKey]:
        """Content topic -> envelope key, for every topic this installation listens on (spec §9.3).

        Own partitioned topic (ECIES), and the contact-code and negotiated topics of this account and of every
        :meth:`contacts` identity. Neither installations nor chats are forgotten, so the set only grows.
        """
        version = (len(self.state.installations), len(self.chat_clocks))
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

    def pair(self, installation_id: str, now_ns: int, entropy: Entropy) -> Step:
        """Enable an own installation and send it our installation metadata (spec §8.4, app §8.1)."""
        self._own_installation(installation_id)
        self.state.set_installation_enabled(self.identity, installation_id, True)
        step = Step()
        step.events.append(InstallationPaired(installation_id, self.state.installations[
            (self.identity, installation_id)].name))
        self._send_pairing(step, installation_id, now_ns, entropy)
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
        wrapped = app.sign(inner, self.account.identity.private)
        message = self.protocol.encrypt_with_dh(self.identity, wrapped.amm, now_ns, entropy)
        step.outbox.append(self._envelope(self.identity, message, now_ns, entropy, None))

    def advertise(self, now_ns: int, entropy: Entropy) -> Step:
        """The contact-code broadcast: our bundle, readable by anyone who knows our chat key (spec §9.3)."""
        advert = ContactCodeAdvertisement(chat_identity=ChatIdentity(
            clock=now_ns // NS_PER_MS, display_name=app.sendable_display_name(self.account.display_name, is_alias)))
        wrapped = metadata.wrap(wire.go_marshal(advert), AmmType.CONTACT_CODE_ADVERTISEMENT,
                                self.account.identity.private)
        message = self.protocol.public_message(wrapped.amm, now_ns, entropy)
        step = Step()
        step.outbox.append(self._seal(self._topic(contact_code_topic(self.identity)), message, now_ns, entropy, None))
        return step

    # --- sending ----------------------------------------------------------------------------------------

    def send_text(self, peer: bytes, text: str, now_ns: int, entropy: Entropy) -> tuple[SentMessage, Step]:
        """Queue a text message to ``peer`` (33-byte key) and its copy to our paired installations.

        Returns what was sent and the step holding the stored message and the outbox items.
        """
        validate_text(text)
        try:
            parse_compressed(peer)
        except SottovoceError as exc:
            raise UnusableRecipient("that is not a valid chat key") from exc
        if peer == self.identity:
            raise UnusableRecipient("a 1:1 chat needs another account's chat key, not your own")
        step = Step()
        now_ms = now_ns // NS_PER_MS
        inner = app.chat_message(clock=self._next_clock(step, peer, now_ns), timestamp=now_ms, text=text,
                                 chat_id=app.key_id(peer),
                                 display_name=app.sendable_display_name(self.account.display_name, is_alias))
        wrapped = app.sign(inner, self.account.identity.private)
        to_peer = self.protocol.encrypt(peer, wrapped.amm, now_ns, entropy)
        envelope = self._envelope(peer, to_peer, now_ns, entropy, wrapped.message_id)
        step.outbox.append(envelope)
        copies: tuple[str, ...] = ()
        copy_envelope = None
        if self.state.active_installations(self.identity):
            to_self = self.protocol.encrypt(self.identity, wrapped.amm, now_ns, entropy, dh_fallback=False)
            if to_self.encrypted_message:
                copies = tuple(sorted(to_self.encrypted_message))
                copy = self._envelope(self.identity, to_self, now_ns, entropy, None)
                step.outbox.append(copy)
                copy_envelope = copy.envelope_hash
        sent = SentMessage(wrapped.message_id, tuple(sorted(to_peer.encrypted_message)), copies,
                           envelope.envelope_hash, copy_envelope)
        step.messages.append(StoredMessage(wrapped.message_id, peer, self.identity, self.installation_id,
                                           Direction.OUT, text, inner.clock, now_ms, now_ns, sent.forward_secret,
                                           DeliveryState.QUEUED))
        return sent, step

    def _next_clock(self, step: Step, chat: bytes, now_ns: int) -> int:
        clock = app.next_clock(self.chat_clocks.get(chat, 0), now_ns // NS_PER_MS)
        self._set_clock(step, chat, clock)
        return clock

    def _set_clock(self, step: Step, chat: bytes, clock: int) -> None:
        if clock > self.chat_clocks.get(chat, 0):
            self.chat_clocks[chat] = clock
            step.records.append((CHAT_CLOCKS, chat, clock.to_bytes(8, "big")))

    def _envelope(self, recipient: bytes, message: pb.ProtocolMessage, now_ns: int, entropy: Entropy,
                  message_id: str | None) -> OutboxItem:
        """Seal a 1:1 ProtocolMessage on the negotiated topic once agreed, else the partitioned one (§9.1)."""
        installations = [key for key in message.encrypted_message if key != NO_INSTALLATION_ID]
        if installations and self.state.agreed(recipient, installations):
            topic = self._topic(negotiated_topic(self.state.negotiated_secret(recipient)))
            return self._seal(topic, message, now_ns, entropy, message_id)
        data = message.SerializeToString(deterministic=True)
        payload = waku.seal_asymmetric(
            data, self.account.identity.private, recipient,
            padding=_padding(data, entropy), ephemeral=entropy.new_key(KeyPurpose.ECIES_EPHEMERAL),
            iv=entropy.random_bytes(waku.ECIES_IV_LEN, BytesPurpose.ECIES_IV))
        partitioned = partitioned_topic(recipient)
        return _outbox_item(waku.build_message(payload, partitioned.content_topic, now_ns), partitioned.topic,
                            message_id, now_ns)

    def _seal(self, topic: Topic, message: pb.ProtocolMessage, now_ns: int, entropy: Entropy,
              message_id: str | None) -> OutboxItem:
        assert topic.sym_key is not None
        data = message.SerializeToString(deterministic=True)
        payload = waku.seal_symmetric(data, self.account.identity.private, topic.sym_key,
                                      padding=_padding(data, entropy),
                                      nonce=entropy.random_bytes(12, BytesPurpose.GCM_NONCE))
        return _outbox_item(waku.build_message(payload, topic.content_topic, now_ns), topic.topic, message_id, now_ns)

    # --- receiving --------------------------------------------------------------------------------------

    def receive(self, envelope: waku.WakuMessage, now_ns: int, entropy: Entropy) -> Step:
        """Process one Waku message from a subscribed topic; a rejection is reported in the step, not raised."""
        step = Step()
        key = self.subscriptions().get(envelope.content_topic)
        if key is None:
            step.consumed = False  # a topic we may subscribe to later: catch-up will offer it again
            step.reject(NotSubscribed())
            return step
        try:
            opened = envelope.open(key)
        except SottovoceError as exc:
            # On our partitioned topic (shared with ~1/5000 of all users) most envelopes are for others.
            step.reject(NotForUs() if isinstance(key, waku.AsymmetricKey) and isinstance(exc, DecryptionFailed)
                        else exc)
            return step
        step.authenticated = True
        sender = opened.signer
        known_before = set(self.state.installations)
        try:
            decrypted = self.protocol.decrypt(sender, opened.data, now_ns, entropy)
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
        if decrypted.public or not decrypted.plaintext or own_echo:
            return step  # contact-code broadcast (bundle learned above), bundle advertisement or own echo
        context = ReceiveContext(self.identity, envelope.sent_s * 1000, is_alias, now_ns // NS_PER_MS)
        for body in application_bodies(decrypted.plaintext).bodies:
            try:
                self._application(step, body, sender, decrypted.sender_installation, decrypted.forward_secret,
                                  context, now_ns)
            except SottovoceError as exc:
                step.reject(exc)
        return step

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
        step.outbox.append(self._envelope(peer, message, now_ns, entropy, None))

    def _application(self, step: Step, body: bytes, sender: bytes, installation: str, forward_secret: bool,
                     context: ReceiveContext, now_ns: int) -> None:
        parsed = metadata.parse(body, sender)
        if parsed.author is None:
            return  # an ack-only datasync payload parses as an empty unsigned AMM: nothing to show
        if compress(parsed.author) != sender:
            raise ForgedAuthor()
        verdict = validate(parsed, context)
        verdict.raise_if_rejected()
        inner = verdict.inner
        if isinstance(inner, ChatMessage):
            self._chat_message(step, parsed.message_id, inner, sender, installation, forward_secret, now_ns)
        elif isinstance(inner, SyncPairInstallation):
            self._pair_installation(step, inner, installation)

    def _chat_message(self, step: Step, message_id: str, inner: ChatMessage, sender: bytes, installation: str,
                      forward_secret: bool, now_ns: int) -> None:
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
        self._set_clock(step, chat, inner.clock)
        stored = StoredMessage(message_id, chat, sender, installation, direction, inner.text, inner.clock,
                               inner.timestamp, now_ns, forward_secret, DeliveryState.RECEIVED)
        step.messages.append(stored)
        step.events.append(MessageReceived(stored))

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
