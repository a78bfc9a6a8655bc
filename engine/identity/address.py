"""Values status-go computes from a public key: Ethereum address and key UID (identity spec section 1.5)."""

from __future__ import annotations

from ..crypto.hashing import keccak256, sha256
from ..crypto.keys import uncompress
from ..errors import InvalidPublicKey
from .errors import InvalidChatKey


def _uncompressed(public_key: bytes) -> bytes:
    try:
        return uncompress(public_key)
    except InvalidPublicKey as exc:
        raise InvalidChatKey() from exc


def address_bytes(public_key: bytes) -> bytes:
    """The 20-byte Ethereum address: the last 20 bytes of Keccak-256 over ``X || Y``."""
    return keccak256(_uncompressed(public_key)[1:])[12:]


def to_checksum_address(address: bytes) -> str:
    """EIP-55 mixed-case ``0x`` form of a 20-byte address."""
    lower = address.hex()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


def ethereum_address(public_key: bytes) -> str:
    """The EIP-55 address (``0x`` + 40 hex digits) of a compressed or uncompressed public key."""
    return to_checksum_address(address_bytes(public_key))


def key_uid(master_public_key: bytes) -> str:
    """status-go's key UID: ``0x`` + hex SHA-256 of the 65-byte uncompressed master public key."""
    return "0x" + sha256(_uncompressed(master_public_key)).hex()
