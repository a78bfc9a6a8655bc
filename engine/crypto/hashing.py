"""Hash functions: Ethereum's Keccak-256 and SHA-256."""

from __future__ import annotations

import hashlib

from Crypto.Hash import keccak as _keccak


def keccak256(*parts: bytes) -> bytes:
    """Keccak-256 with the original Keccak padding (Ethereum), not FIPS-202 SHA3-256."""
    h = _keccak.new(digest_bits=256)
    for part in parts:
        h.update(part)
    return bytes(h.digest())


def sha256(*parts: bytes) -> bytes:
    """SHA-256 (the standard library's OpenSSL binding: a third of the cost of a ``cryptography`` hash object)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()
