"""secp256k1 keys and status-go's ECDH.

Private keys are 32-byte big-endian scalars; public keys travel as 33-byte compressed points (``C(P)``) and
appear in topic names as 65-byte uncompressed points (``U(P)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import coincurve

from ..errors import InvalidPrivateKey, InvalidPublicKey

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
COMPRESSED_LEN = 33
UNCOMPRESSED_LEN = 65


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A secp256k1 key pair: ``private`` is the 32-byte scalar, ``public`` the 33-byte compressed point."""

    private: bytes
    public: bytes

    def __repr__(self) -> str:  # never print the private key
        return f"KeyPair(public={self.public.hex()})"

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        check_private_key(private)
        return cls(private, coincurve.PublicKey.from_secret(private).format(compressed=True))


def check_private_key(private: bytes) -> None:
    """Require a 32-byte scalar with ``1 <= d < n`` (status-go's ToECDSA rules)."""
    if len(private) != 32 or not 0 < int.from_bytes(private, "big") < CURVE_ORDER:
        raise InvalidPrivateKey()


def parse_compressed(data: bytes) -> coincurve.PublicKey:
    """Parse a 33-byte compressed point exactly as status-go's DecompressPubkey does."""
    if len(data) != COMPRESSED_LEN or data[0] not in (2, 3):
        raise InvalidPublicKey()
    try:
        return coincurve.PublicKey(data)
    except ValueError as exc:
        raise InvalidPublicKey() from exc


def check_compressed(data: bytes) -> None:
    """Raise :class:`InvalidPublicKey` unless ``data`` is a valid 33-byte compressed point (as
    :func:`parse_compressed`, with the point's validity remembered: the same few keys come by on every message)."""
    if len(data) != COMPRESSED_LEN or data[0] not in (2, 3):
        raise InvalidPublicKey()
    uncompress(bytes(data))


def parse_public_key(data: bytes) -> coincurve.PublicKey:
    """Parse a compressed (33-byte) or uncompressed (65-byte) point."""
    if len(data) not in (COMPRESSED_LEN, UNCOMPRESSED_LEN) or data[0] not in (2, 3, 4):
        raise InvalidPublicKey()
    try:
        return coincurve.PublicKey(data)
    except ValueError as exc:
        raise InvalidPublicKey() from exc


@lru_cache(maxsize=1024)  # public points only; the same few keys come by on every message
def compress(public: bytes) -> bytes:
    """``C(P)`` of a compressed or uncompressed point."""
    return parse_public_key(public).format(compressed=True)


@lru_cache(maxsize=1024)
def uncompress(public: bytes) -> bytes:
    """``U(P)`` of a compressed or uncompressed point."""
    return parse_public_key(public).format(compressed=False)


def ecdh(private: bytes, public: bytes) -> bytes:
    """status-go's ECDH: the raw 32-byte big-endian x coordinate of ``d·P`` (no hashing, spec §1.4).

    ``public`` may be compressed or uncompressed; coincurve's own ``ecdh()`` hashes and is not used.
    """
    point = parse_public_key(public)
    try:
        shared: bytes = point.multiply(private).format(compressed=True)[1:]
        return shared
    except ValueError as exc:
        raise InvalidPrivateKey() from exc
