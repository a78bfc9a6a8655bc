"""Payload ciphers: the Double Ratchet AEAD (AES-256-CTR + HMAC-SHA256) and status-go's AES-GCM helper."""

from __future__ import annotations

import hmac as _constant_time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DecryptionFailed
from .kdf import hmac_sha256, message_key_material

DR_IV_LEN = 16
DR_MAC_LEN = 32
DR_MIN_PAYLOAD = DR_IV_LEN + DR_MAC_LEN
GCM_NONCE_LEN = 12
GCM_TAG_LEN = 16


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return ctx.update(data) + ctx.finalize()


def dr_encrypt(message_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """EthereumCrypto.Encrypt: ``IV ‖ AES-256-CTR(EK, IV, P) ‖ HMAC(AK, AD ‖ IV ‖ C)``; IV derived from MK."""
    enc_key, auth_key, iv = message_key_material(message_key)
    body = iv + _aes_ctr(enc_key, iv, plaintext)
    return body + hmac_sha256(auth_key, associated_data + body)


def dr_decrypt(message_key: bytes, payload: bytes, associated_data: bytes) -> bytes:
    """EthereumCrypto.Decrypt, with the length check status-go lacks (payloads under 48 bytes are rejected)."""
    if len(payload) < DR_MIN_PAYLOAD:
        raise DecryptionFailed("message too short to be a ratchet payload")
    enc_key, auth_key, _ = message_key_material(message_key)
    body, tag = payload[:-DR_MAC_LEN], payload[-DR_MAC_LEN:]
    if not _constant_time.compare_digest(hmac_sha256(auth_key, associated_data + body), tag):
        raise DecryptionFailed()
    return _aes_ctr(enc_key, body[:DR_IV_LEN], body[DR_IV_LEN:])


def gcm_encrypt(key: bytes, plaintext: bytes, nonce: bytes) -> bytes:
    """status-go EncryptSymmetric: ``AES-GCM(K).Seal(nonce, m) ‖ nonce`` (nonce last, no AAD)."""
    if len(nonce) != GCM_NONCE_LEN or not any(nonce):
        raise ValueError("AES-GCM needs a 12-byte nonce that is not all zero")
    return AESGCM(key).encrypt(nonce, plaintext, None) + nonce


def gcm_decrypt(key: bytes, data: bytes) -> bytes:
    """status-go DecryptSymmetric: nonce is the last 12 bytes."""
    if len(data) < GCM_NONCE_LEN + GCM_TAG_LEN:
        raise DecryptionFailed("missing salt or invalid payload in symmetric message")
    try:
        return AESGCM(key).decrypt(data[-GCM_NONCE_LEN:], data[:-GCM_NONCE_LEN], None)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed() from exc
