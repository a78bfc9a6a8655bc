"""Waku payload v1 envelopes and the WakuMessage, byte-compatible with status-go / go-waku (spec §10).

Sans-I/O: every random value (padding, AES-GCM nonce, ECIES ephemeral key and IV) and every timestamp is
passed in by the caller; nothing here reads ``os.urandom`` or the clock.

Plaintext layout: ``flags ‖ size (1 to 3 bytes LE) ‖ data ‖ padding ‖ signature (65)``; ``flags & 0x03`` is
the size-field length and ``0x04`` marks a signed payload, whose signature covers ``K256`` of everything
before it.
Wire formats: symmetric ``AES-256-GCM ciphertext ‖ tag ‖ nonce``; asymmetric go-ethereum ECIES
``R (65) ‖ IV (16) ‖ AES-128-CTR ciphertext ‖ HMAC-SHA256 (32)``.

Malformed or forged input only ever raises a :class:`~engine.errors.SottovoceError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from proto import waku_pb2

from ..crypto import ecies
from ..crypto.ciphers import GCM_NONCE_LEN, gcm_decrypt, gcm_encrypt
from ..crypto.hashing import keccak256, sha256
from ..crypto.keys import KeyPair, compress, uncompress
from ..crypto.signatures import SIGNATURE_LEN, recover, sign
from ..errors import DecryptionFailed, InvalidSignature, MalformedMessage, SottovoceError

PAYLOAD_VERSION = 1
"""WakuMessage ``version`` of payload v1 (the only version status-go sends)."""

DEFAULT_PUBSUB_TOPIC = "/waku/2/rs/16/32"
"""The pubsub topic (shard) status-go publishes all 1:1 and contact-code traffic on."""

MAX_MESSAGE_SIZE = 1 << 20
"""status-go's default ``MaxMessageSize`` (1 MiB): larger envelopes are rejected on receive."""

FLAG_SIGNED = 0x04
SIZE_MASK = 0x03
PADDING_BLOCK = 256
SYMMETRIC_KEY_LEN = 32
ECIES_IV_LEN = 16
ECIES_EPHEMERAL_READ_LEN = 32
MAX_DATA_LEN = (1 << 24) - 1
"""Largest data a 3-byte size field can describe."""


# --- errors -------------------------------------------------------------------------------------------------


class Truncated(DecryptionFailed):
    """A symmetric payload shorter than its 12-byte nonce."""

    code = "truncated"
    default_message = "missing salt or invalid payload in symmetric message"


class BadLength(MalformedMessage):
    """Flags, size field and signature lengths of a decrypted payload do not fit together."""

    code = "bad_length"
    default_message = "invalid message length"


class UnsignedEnvelope(InvalidSignature):
    """The envelope carries no signature, so its sender is unknown (status-go drops it)."""

    code = "unsigned"
    default_message = "failed to get signature: envelope is not signed"


class EnvelopeTooLarge(MalformedMessage):
    code = "too_large"
    default_message = "envelope exceeds the maximum message size"


class UnsupportedVersion(MalformedMessage):
    code = "unsupported_version"
    default_message = "unsupported wakumessage version"


class InvalidEnvelopeKey(SottovoceError):
    """A symmetric key that is not 32 bytes, or is all zero when encrypting."""

    code = "invalid_key"
    default_message = "invalid key provided for symmetric encryption"


class InvalidEnvelopeInput(SottovoceError):
    """A sender-side argument is unusable (padding length, nonce, IV, random read, data size, field range)."""

    code = "invalid_input"
    default_message = "invalid envelope input"


# --- keys ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymmetricKey:
    """Opens symmetric (AES-256-GCM) envelopes: the 32-byte topic key."""

    key: bytes

    def __repr__(self) -> str:
        return "SymmetricKey(…)"


@dataclass(frozen=True, slots=True)
class AsymmetricKey:
    """Opens asymmetric (ECIES) envelopes: the recipient's 32-byte private key."""

    private: bytes

    def __repr__(self) -> str:
        return "AsymmetricKey(…)"


EnvelopeKey = SymmetricKey | AsymmetricKey


# --- plaintext (payload v1) ---------------------------------------------------------------------------------


def size_field_length(data_len: int) -> int:
    """Bytes of the little-endian size field for ``data_len`` bytes of data (1, 2 or 3)."""
    if not 0 <= data_len <= MAX_DATA_LEN:
        raise InvalidEnvelopeInput(f"data of {data_len} bytes does not fit payload v1")
    return 1 if data_len < 1 << 8 else 2 if data_len < 1 << 16 else 3


def padding_length(data_len: int, *, signed: bool = True) -> int:
    """How many random padding bytes the sender draws: ``256 - (raw mod 256)``, between 1 and 256."""
    raw = 1 + size_field_length(data_len) + data_len + (SIGNATURE_LEN if signed else 0)
    return PADDING_BLOCK - raw % PADDING_BLOCK


def encode_plaintext(data: bytes, padding: bytes, signer_private: bytes | None) -> bytes:
    """``flags ‖ size ‖ data ‖ padding ‖ signature``; ``padding`` is exactly :func:`padding_length` bytes.

    ``signer_private`` None makes an unsigned payload (status-go never sends one; receivers drop it).
    """
    signed = signer_private is not None
    expected = padding_length(len(data), signed=signed)
    if len(padding) != expected:
        raise InvalidEnvelopeInput(f"padding must be {expected} bytes, got {len(padding)}")
    if expected > 3 and not any(padding):
        raise InvalidEnvelopeInput("padding must not be all zero")
    n = size_field_length(len(data))
    flags = n | (FLAG_SIGNED if signed else 0)
    body = bytes([flags]) + len(data).to_bytes(n, "little") + data + padding
    if signer_private is None:
        return body
    return body + sign(keccak256(body), signer_private)


@dataclass(frozen=True, slots=True)
class DecodedPayload:
    """A parsed payload v1 plaintext. ``signer`` is the recovered 65-byte key, None if unsigned."""

    data: bytes
    padding: bytes
    signature: bytes | None
    signer: bytes | None

    @property
    def signed(self) -> bool:
        return self.signature is not None


def decode_plaintext(plaintext: bytes) -> DecodedPayload:
    """Parse a decrypted payload v1 as go-waku does, recovering the signer of a signed payload.

    Raises :class:`BadLength` on inconsistent lengths and the signature errors (``bad_recovery_id``,
    ``recovery_failed``) when a signature cannot be recovered. An unsigned payload decodes with
    ``signer=None``; :func:`receive` rejects it.
    """
    end = len(plaintext)
    if end < 1:
        raise BadLength("empty payload")
    flags = plaintext[0]
    signature = signer = None
    if flags & FLAG_SIGNED:
        end -= SIGNATURE_LEN
        if end <= 1:
            raise BadLength()
        signature = plaintext[end:]
        signer = recover(keccak256(plaintext[:end]), signature)
    begin, size = 1, 0
    n = flags & SIZE_MASK
    if n:
        if end < begin + n:
            raise BadLength()
        size = int.from_bytes(plaintext[begin : begin + n], "little")
        begin += n
        if begin + size > end:
            raise BadLength()
    return DecodedPayload(plaintext[begin : begin + size], plaintext[begin + size : end], signature, signer)


# --- encryption ---------------------------------------------------------------------------------------------


def gcm_nonce_from_reads(first: bytes, second: bytes) -> bytes:
    """go-waku's AES-GCM nonce: the XOR of two 12-byte random reads."""
    if len(first) != GCM_NONCE_LEN or len(second) != GCM_NONCE_LEN:
        raise InvalidEnvelopeInput("a nonce read is 12 bytes")
    return bytes(a ^ b for a, b in zip(first, second, strict=True))


def ecies_ephemeral_from_read(read: bytes) -> KeyPair:
    """The ECIES ephemeral key Go's ``elliptic.GenerateKey`` makes from a 32-byte read (byte[1] ^= 0x42).

    Raises ``invalid_private_key`` when the result is 0 or ≥ n; Go then reads again, and so should the caller.
    """
    if len(read) != ECIES_EPHEMERAL_READ_LEN:
        raise InvalidEnvelopeInput("the ephemeral-key read is 32 bytes")
    return KeyPair.from_private(read[:1] + bytes([read[1] ^ 0x42]) + read[2:])


def _check_symmetric_key(key: bytes) -> None:
    if len(key) != SYMMETRIC_KEY_LEN:
        raise InvalidEnvelopeKey()


def encrypt_symmetric(plaintext: bytes, key: bytes, nonce: bytes) -> bytes:
    """AES-256-GCM, no AAD: ``ciphertext ‖ tag ‖ nonce`` (the nonce is 12 bytes, not all zero)."""
    _check_symmetric_key(key)
    if not any(key):
        raise InvalidEnvelopeKey()
    if len(nonce) != GCM_NONCE_LEN or not any(nonce):
        raise InvalidEnvelopeInput("AES-GCM needs a 12-byte nonce that is not all zero")
    return gcm_encrypt(key, plaintext, nonce)


def decrypt_symmetric(payload: bytes, key: bytes) -> bytes:
    """Open ``ciphertext ‖ tag ‖ nonce``: ``truncated`` below 12 bytes, ``auth_failed`` on a bad tag."""
    _check_symmetric_key(key)
    if len(payload) < GCM_NONCE_LEN:
        raise Truncated()
    return gcm_decrypt(key, payload)


def encrypt_asymmetric(plaintext: bytes, recipient_public: bytes, ephemeral: KeyPair, iv: bytes) -> bytes:
    """go-ethereum ECIES to ``recipient_public`` (C or U form), caller's ephemeral key and 16-byte IV."""
    if len(iv) != ECIES_IV_LEN:
        raise InvalidEnvelopeInput("the ECIES IV is 16 bytes")
    return ecies.encrypt(recipient_public, plaintext, ephemeral, iv)


def decrypt_asymmetric(payload: bytes, private: bytes) -> bytes:
    """Open an ECIES payload: ``ecies_invalid_message`` / ``ecies_invalid_public_key`` on bad input."""
    return ecies.decrypt(private, payload)


def seal_symmetric(data: bytes, signer_private: bytes, key: bytes, *, padding: bytes, nonce: bytes) -> bytes:
    """A signed payload v1 under a symmetric topic key: the WakuMessage ``payload`` bytes."""
    return encrypt_symmetric(encode_plaintext(data, padding, signer_private), key, nonce)


def seal_asymmetric(
    data: bytes,
    signer_private: bytes,
    recipient_public: bytes,
    *,
    padding: bytes,
    ephemeral: KeyPair,
    iv: bytes,
) -> bytes:
    """A signed payload v1 encrypted to a recipient's identity key: the WakuMessage ``payload`` bytes."""
    plaintext = encode_plaintext(data, padding, signer_private)
    return encrypt_asymmetric(plaintext, recipient_public, ephemeral, iv)


def open_payload(payload: bytes, key: EnvelopeKey, *, version: int = PAYLOAD_VERSION) -> DecodedPayload:
    """Decrypt and parse a WakuMessage payload as go-waku's ``DecodePayload`` does.

    Version 0 is plaintext (returned as unsigned data); any version other than 0 and 1 is unsupported.
    Unsigned payloads decode; use :func:`receive` to also require a signer.
    """
    if version == 0:
        return DecodedPayload(payload, b"", None, None)
    if version != PAYLOAD_VERSION:
        raise UnsupportedVersion()
    if isinstance(key, SymmetricKey):
        plaintext = decrypt_symmetric(payload, key.key)
    else:
        plaintext = decrypt_asymmetric(payload, key.private)
    return decode_plaintext(plaintext)


@dataclass(frozen=True, slots=True)
class ReceivedEnvelope:
    """What the transport layer hands upward: the data and who signed it (33- and 65-byte forms)."""

    data: bytes
    signer: bytes
    signer_uncompressed: bytes


def receive(
    payload: bytes, key: EnvelopeKey, *, version: int = PAYLOAD_VERSION, max_size: int = MAX_MESSAGE_SIZE
) -> ReceivedEnvelope:
    """Open an incoming payload and require a signer, as status-go's transport layer does.

    Rejects with typed errors: oversized (``too_large``), undecryptable, malformed, unrecoverable signatures
    and unsigned envelopes (``unsigned``, including version-0 plaintext).
    """
    if len(payload) > max_size:
        raise EnvelopeTooLarge()
    decoded = open_payload(payload, key, version=version)
    if decoded.signer is None:
        raise UnsignedEnvelope()
    return ReceivedEnvelope(decoded.data, compress(decoded.signer), uncompress(decoded.signer))


# --- WakuMessage --------------------------------------------------------------------------------------------

_UINT32_MAX = (1 << 32) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class WakuMessage:
    """A Waku v2 message (RFC 14). ``None`` means the optional field is absent on the wire.

    The defaults are what status-go sends: ``version = 1``, ``meta`` empty but present, ``ephemeral = false``
    present. ``rate_limit_proof`` is not modelled (status-go leaves it unset, and it is not hashed).
    """

    payload: bytes
    content_topic: str
    timestamp_ns: int | None
    version: int | None = PAYLOAD_VERSION
    meta: bytes | None = b""
    ephemeral: bool | None = False

    def to_bytes(self) -> bytes:
        """The serialized protobuf, field by field in number order (the bytes status-go publishes)."""
        if self.version is not None and not 0 <= self.version <= _UINT32_MAX:
            raise InvalidEnvelopeInput("version is a uint32")
        if self.timestamp_ns is not None and not _INT64_MIN <= self.timestamp_ns <= _INT64_MAX:
            raise InvalidEnvelopeInput("timestamp is an int64")
        message = waku_pb2.WakuMessage(payload=self.payload, content_topic=self.content_topic)
        if self.version is not None:
            message.version = self.version
        if self.timestamp_ns is not None:
            message.timestamp = self.timestamp_ns
        if self.meta is not None:
            message.meta = self.meta
        if self.ephemeral is not None:
            message.ephemeral = self.ephemeral
        return message.SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> WakuMessage:
        """Parse a serialized WakuMessage; undecodable bytes raise ``malformed``."""
        message = waku_pb2.WakuMessage()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise MalformedMessage("malformed WakuMessage") from exc
        return cls(
            payload=message.payload,
            content_topic=message.content_topic,
            timestamp_ns=message.timestamp if message.HasField("timestamp") else None,
            version=message.version if message.HasField("version") else None,
            meta=message.meta if message.HasField("meta") else None,
            ephemeral=message.ephemeral if message.HasField("ephemeral") else None,
        )

    def hash(self, pubsub_topic: str = DEFAULT_PUBSUB_TOPIC) -> bytes:
        """The Waku message hash: ``SHA256(pubsub ‖ payload ‖ content_topic ‖ meta ‖ BE64(timestamp))``."""
        return message_hash(self, pubsub_topic)

    @property
    def sent_s(self) -> int:
        """The send time in seconds status-go derives: ``uint32(timestamp / 1e9)``, truncating toward zero."""
        ts = self.timestamp_ns or 0
        seconds = abs(ts) // 1_000_000_000
        return (seconds if ts >= 0 else -seconds) & _UINT32_MAX

    def open(self, key: EnvelopeKey, *, max_size: int = MAX_MESSAGE_SIZE) -> ReceivedEnvelope:
        """:func:`receive` applied to this message's payload and version (absent version = 0)."""
        return receive(self.payload, key, version=self.version or 0, max_size=max_size)


def build_message(payload: bytes, content_topic: str, timestamp_ns: int) -> WakuMessage:
    """The WakuMessage status-go's ``Post`` builds: version 1, timestamp in ns, empty meta, not ephemeral."""
    return WakuMessage(payload=payload, content_topic=content_topic, timestamp_ns=timestamp_ns)


def message_hash(message: WakuMessage, pubsub_topic: str = DEFAULT_PUBSUB_TOPIC) -> bytes:
    """go-waku's deterministic message hash; ``ephemeral`` is not covered, an absent timestamp counts as 0."""
    timestamp = (message.timestamp_ns or 0) & ((1 << 64) - 1)
    return sha256(
        pubsub_topic.encode(),
        message.payload,
        message.content_topic.encode(),
        message.meta or b"",
        timestamp.to_bytes(8, "big"),
    )
