"""Recoverable secp256k1 signatures as go-ethereum makes them: ``r ‖ s ‖ v`` with ``v`` in {0, 1}."""

from __future__ import annotations

from functools import lru_cache

import coincurve

from ..errors import (
    BadRecoveryId,
    BadSignatureLength,
    InvalidPrivateKey,
    SignatureMismatch,
    SignatureRecoveryFailed,
)
from .hashing import keccak256

SIGNATURE_LEN = 65


@lru_cache(maxsize=4)
def _signing_key(private: bytes) -> coincurve.PrivateKey:
    """The signer's coincurve key. Making one derives its public key (a point multiplication, as long as the
    signature itself); an installation signs with one identity key, three times per message sent."""
    try:
        return coincurve.PrivateKey(private)
    except ValueError as exc:
        raise InvalidPrivateKey() from exc


def sign(digest: bytes, private: bytes) -> bytes:
    """Sign a 32-byte digest (RFC 6979 nonce, low-S); 65 bytes ``r ‖ s ‖ v``."""
    if len(digest) != 32:
        raise ValueError("a signature covers a 32-byte digest")
    return bytes(_signing_key(private).sign_recoverable(digest, hasher=None))


def recover(digest: bytes, signature: bytes) -> bytes:
    """The 65-byte uncompressed public key that made ``signature`` over ``digest`` (go-ethereum SigToPub)."""
    if len(signature) != SIGNATURE_LEN:
        raise BadSignatureLength()
    if signature[64] >= 4:
        raise BadRecoveryId()
    try:
        key = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except (ValueError, TypeError) as exc:
        raise SignatureRecoveryFailed() from exc
    return bytes(key.format(compressed=False))


def address(uncompressed: bytes) -> bytes:
    """Ethereum address of a 65-byte uncompressed key: last 20 bytes of Keccak-256 of ``x ‖ y``."""
    return keccak256(uncompressed[1:])[12:]


def verify_signer(digest: bytes, signature: bytes, expected_uncompressed: bytes) -> None:
    """Raise unless ``signature`` over ``digest`` recovers to the expected key (status-go compares addresses)."""
    recovered = recover(digest, signature)
    if recovered != expected_uncompressed and address(recovered) != address(expected_uncompressed):
        raise SignatureMismatch()
