"""Payload ciphers: the Double Ratchet AEAD (AES-256-CTR + HMAC-SHA256) and status-go's AES-GCM helper."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import DecryptionFailed
from .kdf import MESSAGE_KEY_INFO, ZERO_SALT

DR_IV_LEN = 16
DR_MAC_LEN = 32
DR_MIN_PAYLOAD = DR_IV_LEN + DR_MAC_LEN
GCM_NONCE_LEN = 12
GCM_TAG_LEN = 16
_SHA256 = hashes.SHA256()


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CTR with a 16-byte initial counter block (AES-128 or AES-256 by key length); encrypts and decrypts."""
    # CTR is a stream mode: update() returns every byte and finalize() would add nothing.
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)


def dr_encrypt(message_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """EthereumCrypto.Encrypt: ``IV ‖ AES-256-CTR(EK, IV, P) ‖ HMAC(AK, AD ‖ IV ‖ C)``; IV derived from MK."""
    okm = HKDF(_SHA256, 80, ZERO_SALT, MESSAGE_KEY_INFO).derive(message_key)
    iv = okm[64:]
    body = iv + aes_ctr(okm[:32], iv, plaintext)
    mac = hmac.HMAC(okm[32:64], _SHA256)
    mac.update(associated_data)
    mac.update(body)
    return body + mac.finalize()


def dr_decrypt(message_key: bytes, payload: bytes, associated_data: bytes) -> bytes:
    """EthereumCrypto.Decrypt, with the length check status-go lacks (payloads under 48 bytes are rejected)."""
    if len(payload) < DR_MIN_PAYLOAD:
        raise DecryptionFailed("message too short to be a ratchet payload")
    okm = HKDF(_SHA256, 80, ZERO_SALT, MESSAGE_KEY_INFO).derive(message_key)
    mac = hmac.HMAC(okm[32:64], _SHA256)
    mac.update(associated_data)
    mac.update(payload[:-DR_MAC_LEN])
    try:
        mac.verify(payload[-DR_MAC_LEN:])  # constant-time comparison
    except InvalidSignature as exc:
        raise DecryptionFailed("invalid signature") from exc
    return aes_ctr(okm[:32], payload[:DR_IV_LEN], payload[DR_IV_LEN:-DR_MAC_LEN])


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
