"""ApplicationMetadataMessage (AMM): signing, parsing, author recovery and message ids (spec §2, §3).

The AMM signature covers ``keccak256(payload)`` only (not ``type``); the message id covers the exact AMM
bytes: ``keccak256(U(author) ‖ amm)``, or ``keccak256(amm)`` for an unsigned AMM (a status-go quirk).
Nothing here re-encodes received bytes before hashing.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from proto.application_metadata_message_pb2 import ApplicationMetadataMessage

from ...crypto.hashing import keccak256
from ...crypto.keys import compress, uncompress
from ...crypto.signatures import recover, sign
from .errors import InvalidArgument, MalformedAmm

AmmType = ApplicationMetadataMessage.Type


def type_name(amm_type: int) -> str:
    """status-go's enum name of an AMM type, or ``""`` for a number the enum does not define."""
    try:
        return AmmType.Name(amm_type)  # type: ignore[arg-type]
    except ValueError:
        return ""


def message_id_bytes(amm: bytes, author: bytes | None) -> bytes:
    """``keccak256(U(author) ‖ amm)``; ``keccak256(amm)`` when there is no author (unsigned AMM)."""
    if author is None:
        return keccak256(amm)
    return keccak256(uncompress(author), amm)


def message_id(amm: bytes, author: bytes | None) -> str:
    """The message id as status-go writes it everywhere: ``"0x"`` + 64 lowercase hex characters."""
    return "0x" + message_id_bytes(amm, author).hex()


@dataclass(frozen=True, slots=True)
class WrappedMessage:
    """An AMM we produced: the exact bytes to send, the signature and the message id."""

    amm: bytes
    signature: bytes
    message_id: str


def wrap(payload: bytes, amm_type: int, identity_private: bytes, author: bytes | None = None) -> WrappedMessage:
    """Sign ``payload`` with the identity key and wrap it in an AMM of ``amm_type`` (status-go WrapMessageV1).

    ``author`` is the identity's public key when the caller has it (else it is recovered from the signature).
    """
    if not payload:
        raise InvalidArgument("status-go never sends an empty AMM payload")
    if not 0 <= amm_type < 2**31:
        raise InvalidArgument("AMM type out of range")
    signature = sign(keccak256(payload), identity_private)
    amm = ApplicationMetadataMessage(signature=signature, payload=payload, type=amm_type)  # type: ignore[arg-type]
    data = amm.SerializeToString()
    if author is None:
        author = recover(keccak256(payload), signature)
    return WrappedMessage(data, signature, message_id(data, author))


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A received AMM as status-go's HandleApplicationLayer sees it."""

    amm: bytes
    """the exact bytes received"""
    signature: bytes
    payload: bytes
    type: int
    author: bytes | None
    """65-byte U(author) recovered from the signature; None for an unsigned AMM"""
    transport_signer: bytes | None
    message_id: str

    @property
    def signed(self) -> bool:
        return self.author is not None

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    @property
    def effective_sender(self) -> bytes | None:
        """The author, or the transport signer for an unsigned AMM (65-byte uncompressed)."""
        return self.author if self.author is not None else self.transport_signer

    @property
    def author_compressed(self) -> bytes | None:
        return None if self.author is None else compress(self.author)


def parse(amm: bytes, transport_signer: bytes | None = None) -> ParsedMessage:
    """Parse an AMM, recover its author and compute its id.

    Raises MalformedAmm for unparseable bytes, and BadSignatureLength, BadRecoveryId or
    SignatureRecoveryFailed (``engine.errors``) for a signature status-go cannot recover.
    """
    message = ApplicationMetadataMessage()
    try:
        message.ParseFromString(amm)
    except DecodeError as exc:
        raise MalformedAmm() from exc
    signer = None if transport_signer is None else uncompress(transport_signer)
    author = None
    if message.signature:
        author = recover(keccak256(message.payload), message.signature)
    return ParsedMessage(
        amm=bytes(amm),
        signature=bytes(message.signature),
        payload=bytes(message.payload),
        type=int(message.type),
        author=author,
        transport_signer=signer,
        message_id=message_id(amm, author),
    )
