"""Building and reading ``ProtocolMessage``s: the 1:1 encryption layer of status-go (spec §6-§9).

:class:`EncryptionProtocol` is sans-I/O: it works on a :class:`~engine.protocol.state.ProtocolState` in
memory, takes the time and an :class:`~engine.protocol.entropy.Entropy` as arguments, and returns bytes and
results. A message that fails to decrypt leaves every session untouched; what it taught about the sender's
verified bundle is kept, because that is what lets a broken conversation heal.

Signing and recovering a bundle costs about as much as a whole Double Ratchet step, and a bundle rides on
every message, so an :class:`EncryptionProtocol` re-attaches its last signed bundle while its entries are
unchanged and it was signed less than :data:`BUNDLE_REUSE_NS` ago, and remembers the bundles it verified
(:class:`~engine.crypto.signatures.SignatureMemo`). Both are caches of pure functions of the state and the
time it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from proto import encryption_pb2 as pb

from ..crypto.ciphers import gcm_decrypt, gcm_encrypt
from ..crypto.keys import KeyPair, check_compressed, ecdh
from ..crypto.signatures import SignatureMemo
from ..errors import (
    DeviceNotFound,
    InvalidBundle,
    InvalidPublicKey,
    MalformedMessage,
    NoPayload,
    NotPairedDevice,
    SessionNotFound,
)
from .bundle import NO_INSTALLATION_ID, PROTOCOL_VERSION, Bundle, SignedPreKey
from .entropy import BytesPurpose, Entropy, KeyPurpose
from .ratchet import RatchetHeader, RatchetState
from .state import BUNDLE_REFRESH_NS, OwnPrekey, ProtocolState, Session
from .x3dh import x3dh_active, x3dh_passive

MAX_SIBLINGS_IN_BUNDLE = 2
BUNDLE_REUSE_NS = 250_000_000
"""An own bundle signed less than this long ago (ns) over the same entries is attached again as it is.

status-go re-signs its bundle for every message (spec §3.1) and receivers order a peer's installations by
the newest bundle timestamp (§8.3): a quarter of a second keeps that order as it is at any human pace while a
burst of messages pays one signature instead of one each."""
VERIFIED_BUNDLES = 256
"""Signed bundles remembered as verified (a few per peer installation in a burst)."""


@dataclass(frozen=True, slots=True)
class Decrypted:
    """A message the encryption layer accepted.

    ``forward_secret`` is true for Double Ratchet messages and false for the DH-header path and public
    messages; ``public`` marks an unencrypted ``public_message`` (contact code broadcasts).
    """

    plaintext: bytes
    sender: bytes
    sender_installation: str
    forward_secret: bool
    public: bool = False


class EncryptionProtocol:
    """status-go's ``encryption.Protocol`` for one installation, over a :class:`ProtocolState`."""

    def __init__(self, state: ProtocolState, *, bundle_reuse_ns: int = BUNDLE_REUSE_NS,
                 verified: SignatureMemo | None = None) -> None:
        """``bundle_reuse_ns=0`` signs a new bundle for every message, as status-go does."""
        if bundle_reuse_ns < 0:
            raise ValueError("bundle_reuse_ns must not be negative")
        self.state = state
        self.bundle_reuse_ns = bundle_reuse_ns
        self.verified = verified if verified is not None else SignatureMemo(VERIFIED_BUNDLES)
        self._signed: tuple[Bundle, pb.Bundle] | None = None
        """The last own bundle signed here and its protobuf form."""

    # --- own bundle -------------------------------------------------------------------------------------

    def _fresh_prekey(self, now_ns: int, entropy: Entropy) -> OwnPrekey:
        current = self.state.current_prekey()
        if current is None or current.created_ns < now_ns - BUNDLE_REFRESH_NS:
            current = self.state.add_own_prekey(entropy.new_key(KeyPurpose.SIGNED_PREKEY), now_ns)
        return current

    def own_bundle(self, now_ns: int, entropy: Entropy) -> Bundle:
        """This installation's bundle: own SPK (rotated after 24 h) plus up to two paired siblings.

        Signed at ``now_ns``, unless the last bundle signed here has the same entries and was signed at most
        :attr:`bundle_reuse_ns` before (not after) ``now_ns``: then that one, with its own timestamp.
        """
        state = self.state
        current = self._fresh_prekey(now_ns, entropy)
        entries = {state.installation_id: SignedPreKey(current.key.public, current.version, PROTOCOL_VERSION)}
        for sibling in state.active_installations(state.identity.public)[:MAX_SIBLINGS_IN_BUNDLE]:
            prekey = state.peer_prekey(sibling.identity, sibling.installation_id)
            if prekey is not None:
                entries[sibling.installation_id] = SignedPreKey(prekey.public, prekey.version,
                                                                sibling.protocol_version)
        if self._signed is not None:
            last = self._signed[0]
            if (last.timestamp <= now_ns < last.timestamp + self.bundle_reuse_ns
                    and last.identity == state.identity.public and last.signed_prekeys == entries):
                return last
        bundle = Bundle.create(state.identity, entries, now_ns)
        self._signed = (bundle, bundle.to_proto())
        return bundle

    def _bundle_proto(self, bundle: Bundle) -> pb.Bundle:
        signed = self._signed
        return signed[1] if signed is not None and signed[0] is bundle else bundle.to_proto()

    # --- bundles from others ----------------------------------------------------------------------------

    def process_bundle(self, bundle: Bundle, now_ns: int, expected_identity: bytes | None = None) -> list[str]:
        """Verify a bundle, then learn its SPKs and installations; returns the installation ids new to us.

        Nothing is stored unless the signature verifies (unlike status-go, spec Appendix B.1).
        """
        bundle.verify(self.verified)
        bundle.check_well_formed(now_ns)
        if expected_identity is not None and bundle.identity != expected_identity:
            raise InvalidBundle("bundle of another identity than the message's sender")
        state = self.state
        new: list[str] = []
        for installation_id, entry in bundle.signed_prekeys.items():
            if installation_id == state.installation_id and bundle.identity == state.identity.public:
                continue
            state.learn_prekey(bundle.identity, installation_id, entry.public, entry.version, bundle.timestamp)
            if state.learn_installation(bundle.identity, installation_id, entry.protocol_version,
                                        bundle.timestamp):
                new.append(installation_id)
        return new

    def process_public_bundle(self, data: bytes, now_ns: int) -> Bundle:
        """A bundle received out of band (QR code, contact code): parse, verify, learn."""
        bundle = Bundle.parse(data)
        self.process_bundle(bundle, now_ns)
        return bundle

    # --- sending ----------------------------------------------------------------------------------------

    def encrypt(self, recipient: bytes, plaintext: bytes, now_ns: int, entropy: Entropy, *,
                dh_fallback: bool = True) -> pb.ProtocolMessage:
        """Encrypt ``plaintext`` to every active installation of ``recipient`` (33-byte key), with our bundle.

        Falls back to the DH-header path (no forward secrecy) when no installation of the recipient is known,
        unless ``dh_fallback`` is false (then the map stays empty). ``recipient`` may be our own identity, to
        reach our paired installations: pass ``dh_fallback=False`` there, since any own device, paired or
        not, could read a DH-path copy.
        """
        check_compressed(recipient)
        entries: dict[str, pb.EncryptedMessageProtocol] = {}
        for installation in self.state.active_installations(recipient):
            entry = self._encrypt_to_installation(recipient, installation.installation_id, plaintext, entropy)
            if entry is not None:
                entries[installation.installation_id] = entry
        if not entries and dh_fallback:
            entries[NO_INSTALLATION_ID] = self._dh_entry(recipient, plaintext, entropy)
        return self._protocol_message(entries, now_ns, entropy)

    def encrypt_with_dh(self, recipient: bytes, plaintext: bytes, now_ns: int,
                        entropy: Entropy) -> pb.ProtocolMessage:
        """A DH-header message (bundle advertisement, own-device pairing): any device of ``recipient`` reads it."""
        check_compressed(recipient)
        entries = {NO_INSTALLATION_ID: self._dh_entry(recipient, plaintext, entropy)}
        return self._protocol_message(entries, now_ns, entropy)

    def public_message(self, plaintext: bytes, now_ns: int, entropy: Entropy) -> pb.ProtocolMessage:
        """An unencrypted message carrying our bundle (contact-code broadcast)."""
        message = self._protocol_message({}, now_ns, entropy)
        message.public_message = plaintext
        return message

    def _protocol_message(self, entries: dict[str, pb.EncryptedMessageProtocol], now_ns: int,
                          entropy: Entropy) -> pb.ProtocolMessage:
        message = pb.ProtocolMessage(installation_id=self.state.installation_id)
        message.bundles.append(self._bundle_proto(self.own_bundle(now_ns, entropy)))
        for installation_id, entry in entries.items():
            message.encrypted_message[installation_id].CopyFrom(entry)
        return message

    def _dh_entry(self, recipient: bytes, plaintext: bytes, entropy: Entropy) -> pb.EncryptedMessageProtocol:
        ephemeral = entropy.new_key(KeyPurpose.DH_EPHEMERAL)
        key = ecdh(ephemeral.private, recipient)
        payload = gcm_encrypt(key, plaintext, entropy.random_bytes(12, BytesPurpose.GCM_NONCE))
        return pb.EncryptedMessageProtocol(DH_header=pb.DHHeader(key=ephemeral.public), payload=payload)

    def _encrypt_to_installation(self, recipient: bytes, installation_id: str, plaintext: bytes,
                                 entropy: Entropy) -> pb.EncryptedMessageProtocol | None:
        state = self.state
        session = state.usable_session(recipient, installation_id)
        if session is None:
            prekey = state.peer_prekey(recipient, installation_id)
            if prekey is None:
                return None
            ephemeral = entropy.new_key(KeyPurpose.X3DH_EPHEMERAL)
            shared = x3dh_active(state.identity.private, ephemeral.private, recipient, prekey.public)
            ratchet = RatchetState.initiator(shared, entropy.new_key(KeyPurpose.RATCHET_INIT), prekey.public)
            session = Session(prekey.public, recipient, installation_id, shared, True, ratchet,
                              state.next_session_number(), pending_ephemeral=ephemeral.public)
            state.put_session(session)
        header, payload = session.ratchet.encrypt(plaintext)
        state.touch_session(session)
        entry = pb.EncryptedMessageProtocol(
            DR_header=pb.DRHeader(key=header.key, n=header.n, pn=header.pn, id=session.bundle_id),
            payload=payload,
        )
        if session.pending_ephemeral is not None:
            entry.X3DH_header.key = session.pending_ephemeral
            entry.X3DH_header.id = session.bundle_id
        return entry

    # --- receiving --------------------------------------------------------------------------------------

    def decrypt(self, sender: bytes, data: bytes, now_ns: int, entropy: Entropy, *,
                confirm: bool = True) -> Decrypted:
        """Read a serialized ``ProtocolMessage`` whose envelope was signed by ``sender`` (33-byte key).

        With ``confirm`` (the engine's way) the message key is deleted once used, so a replay is rejected.
        Raises a typed :class:`~engine.errors.SottovoceError`; sessions are unchanged on any error.
        """
        message = pb.ProtocolMessage()
        try:
            message.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise MalformedMessage("malformed protocol message") from exc
        return self.decrypt_message(sender, message, now_ns, entropy, confirm=confirm)

    def decrypt_message(self, sender: bytes, message: pb.ProtocolMessage, now_ns: int, entropy: Entropy, *,
                        confirm: bool = True) -> Decrypted:
        """As :meth:`decrypt`, for an already parsed message."""
        check_compressed(sender)
        state = self.state
        for bundle_message in message.bundles:
            self.process_bundle(Bundle.from_proto(bundle_message), now_ns, expected_identity=sender)
        sender_installation = message.installation_id
        if message.public_message:
            return Decrypted(bytes(message.public_message), sender, sender_installation, False, public=True)
        if not message.encrypted_message:
            raise NoPayload()

        entries = message.encrypted_message
        if state.installation_id in entries:
            entry = entries[state.installation_id]
        elif NO_INSTALLATION_ID in entries:
            entry = entries[NO_INSTALLATION_ID]
        elif sender != state.identity.public:
            raise DeviceNotFound()
        elif sender_installation != state.installation_id:
            raise NotPairedDevice()
        else:
            return Decrypted(b"", sender, sender_installation, False)

        if entry.HasField("DR_header"):
            plaintext = self._decrypt_ratchet(sender, sender_installation, entry, entropy, confirm)
            forward_secret = True
        elif entry.HasField("DH_header"):
            plaintext = gcm_decrypt(ecdh(state.identity.private, _compressed(entry.DH_header.key)),
                                    entry.payload)
            forward_secret = False
        elif entry.HasField("HR_header"):
            raise NoPayload("hash-ratchet (community) messages are not supported")
        else:
            raise NoPayload("no key specified")

        self._record_agreement(sender, sender_installation, message)
        return Decrypted(plaintext, sender, sender_installation, forward_secret)

    def _decrypt_ratchet(self, sender: bytes, sender_installation: str, entry: pb.EncryptedMessageProtocol,
                         entropy: Entropy, confirm: bool) -> bytes:
        state = self.state
        dr = entry.DR_header
        session_key = (bytes(dr.id), sender, sender_installation)
        session = state.sessions.get(session_key)
        replacement: Session | None = None
        if entry.HasField("X3DH_header"):
            peer_ephemeral = _compressed(entry.X3DH_header.key)
            own = state.own_prekey_by_public(bytes(entry.X3DH_header.id))
            if own is None:
                raise SessionNotFound()
            if session is None or session.initiator or session.peer_ephemeral != peer_ephemeral:
                # A new X3DH run (or a re-initiation by a peer that lost its state): a fresh responder session.
                shared = x3dh_passive(own.key.private, state.identity.private, sender, peer_ephemeral)
                replacement = _responder_session(own.key, sender, sender_installation, shared,
                                                 peer_ephemeral, state.session_counter + 1)
                if replacement.key == session_key:
                    session = replacement
        if session is None:
            raise SessionNotFound()

        header = RatchetHeader(_compressed(dr.key), dr.n, dr.pn)
        plaintext = session.ratchet.decrypt(header, entry.payload, entropy, confirm=confirm)

        if session is replacement:
            state.next_session_number()
            state.put_session(session)
        else:
            session.pending_ephemeral = None  # the peer answered on this session: stop sending X3DH
            state.touch_session(session)
        return plaintext

    def _record_agreement(self, sender: bytes, sender_installation: str, message: pb.ProtocolMessage) -> None:
        """Spec §6.5 step 8: a peer installation announcing protocol version >= 1 agrees on the shared topic."""
        version = 0
        for bundle_message in message.bundles:
            if bundle_message.signed_pre_keys:
                if sender_installation in bundle_message.signed_pre_keys:
                    version = bundle_message.signed_pre_keys[sender_installation].protocol_version
                break
        if version >= 1 and sender_installation:
            secret = self.state.shared_secrets.get(sender) or ecdh(self.state.identity.private, sender)
            self.state.agree(sender, secret, sender_installation)


def _responder_session(signed_prekey: KeyPair, sender: bytes, sender_installation: str, shared: bytes,
                       peer_ephemeral: bytes, number: int) -> Session:
    return Session(signed_prekey.public, sender, sender_installation, shared, False,
                   RatchetState.responder(shared, signed_prekey), number, peer_ephemeral=peer_ephemeral)


def _compressed(data: bytes) -> bytes:
    """A header's key, if shaped as a 33-byte compressed point, else :class:`InvalidPublicKey`.

    The point itself is validated by the ECDH that uses it.
    """
    if len(data) != 33 or data[0] not in (2, 3):
        raise InvalidPublicKey()
    return bytes(data)
