"""go-ethereum ECIES with status-go's secp256k1 parameters (AES-128-CTR, SHA-256 concat-KDF, HMAC-SHA256).

Wire format: ``R (65, uncompressed) ‖ IV (16) ‖ ciphertext ‖ tag (32)`` (spec §10.4).
"""

from __future__ import annotations

import hmac as _constant_time

from ..errors import EciesInvalidMessage, EciesInvalidPublicKey, InvalidPublicKey
from .ciphers import aes_ctr
from .hashing import sha256
from .kdf import hmac_sha256
from .keys import KeyPair, ecdh, uncompress


def _keys(shared: bytes) -> tuple[bytes, bytes]:
    k = sha256(b"\x00\x00\x00\x01", shared)
    return k[:16], sha256(k[16:32])


def encrypt(recipient_public: bytes, plaintext: bytes, ephemeral: KeyPair, iv: bytes) -> bytes:
    """Encrypt to ``recipient_public`` with a caller-supplied ephemeral key and 16-byte IV."""
    enc_key, mac_key = _keys(ecdh(ephemeral.private, recipient_public))
    body = iv + aes_ctr(enc_key, iv, plaintext)
    return uncompress(ephemeral.public) + body + hmac_sha256(mac_key, body)


def decrypt(private: bytes, data: bytes) -> bytes:
    """Decrypt with the recipient's private key; malformed or forged input raises a typed error.

    Checks run in go-ethereum's order, plus a minimum body of one IV (go-ethereum would panic on less).
    """
    if not data:
        raise EciesInvalidMessage()
    if data[0] not in (2, 3, 4):
        raise EciesInvalidPublicKey()
    if len(data) < 65 + 32 + 1:
        raise EciesInvalidMessage()
    if data[0] != 4:  # R is always read as a 65-byte uncompressed point
        raise EciesInvalidPublicKey()
    try:
        shared = ecdh(private, data[:65])
    except InvalidPublicKey as exc:
        raise EciesInvalidPublicKey() from exc
    enc_key, mac_key = _keys(shared)
    body, tag = data[65:-32], data[-32:]
    if len(body) < 16 or not _constant_time.compare_digest(hmac_sha256(mac_key, body), tag):
        raise EciesInvalidMessage()
    return aes_ctr(enc_key, body[:16], body[16:])
