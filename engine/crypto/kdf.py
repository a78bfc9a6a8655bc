"""Key derivation as status-go's EthereumCrypto provider and topic keys use it (spec §5.1, §9.2)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

ROOT_INFO = b"rsZUpEuXUqqwXBvSy3EcievAh4cMj6QL"
MESSAGE_KEY_INFO = b"pcwSByyx2CRdryCffXJwy7xgVZWtW5Sh"
ZERO_SALT = bytes(32)
CHAIN_KEY_CONSTANT = b"\x0f"
MESSAGE_KEY_CONSTANT = b"\x10"
TOPIC_PBKDF2_ITERATIONS = 65356  # sic: status-go's value, not 65536
_SHA256 = hashes.SHA256()


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256."""
    return HKDF(_SHA256, length, salt, info).derive(ikm)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(key, _SHA256)
    mac.update(message)
    return mac.finalize()


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes, bytes]:
    """KdfRK: ``(root key, chain key, header key)``; the DH output is the IKM and the root key the salt."""
    out = HKDF(_SHA256, 96, root_key, ROOT_INFO).derive(dh_out)
    return out[:32], out[32:64], out[64:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """KdfCK: ``(next chain key, message key)``."""
    mac = hmac.HMAC(chain_key, _SHA256)
    mac2 = mac.copy()
    mac.update(CHAIN_KEY_CONSTANT)
    mac2.update(MESSAGE_KEY_CONSTANT)
    return mac.finalize(), mac2.finalize()


def topic_symmetric_key(name: str) -> bytes:
    """status-go's topic password to key: PBKDF2-HMAC-SHA256, empty salt, 65356 iterations, 32 bytes."""
    return PBKDF2HMAC(_SHA256, 32, b"", TOPIC_PBKDF2_ITERATIONS).derive(name.encode())
