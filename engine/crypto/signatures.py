"""Recoverable secp256k1 signatures as go-ethereum makes them: ``r ‖ s ‖ v`` with ``v`` in {0, 1}."""

from __future__ import annotations

from collections import OrderedDict
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


class SignatureMemo:
    """The last ``capacity`` signatures that :func:`verify_signer` accepted, as ``(digest, signature, signer)``.

    Verification is a pure function of those three values, so a triple seen verified needs no second recovery
    (a peer re-attaches one signed bundle to many messages). Only successes are kept: any other digest,
    signature or signer is verified in full, and a failure is never remembered.
    """

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("a signature memo holds at least one signature")
        self.capacity = capacity
        self._verified: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._verified)

    def verify_signer(self, digest: bytes, signature: bytes, expected_uncompressed: bytes) -> None:
        """As :func:`verify_signer`, without recovering a triple already verified here."""
        key = (bytes(digest), bytes(signature), bytes(expected_uncompressed))
        if key in self._verified:
            self._verified.move_to_end(key)
            return
        verify_signer(digest, signature, expected_uncompressed)
        self._verified[key] = None
        if len(self._verified) > self.capacity:
            self._verified.popitem(last=False)
