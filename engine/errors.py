"""Typed errors of the engine.

Every error raised for bad input derives from :class:`SottovoceError`; ``str(error)`` is one readable line
for a user and ``error.code`` is a stable machine name (the vector files' ``error_class`` where one exists).
"""

from __future__ import annotations


class SottovoceError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"
    default_message = "something went wrong"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


# --- keys and signatures -------------------------------------------------------------------------------------


class InvalidPublicKey(SottovoceError):
    code = "invalid_public_key"
    default_message = "invalid public key"


class InvalidPrivateKey(SottovoceError):
    code = "invalid_private_key"
    default_message = "invalid private key"


class InvalidSignature(SottovoceError):
    """A signature that cannot be parsed, recovered or does not match the expected key."""

    code = "invalid_signature"
    default_message = "invalid signature"


class BadSignatureLength(InvalidSignature):
    code = "bad_signature_length"
    default_message = "invalid signature length"


class BadRecoveryId(InvalidSignature):
    code = "bad_recovery_id"
    default_message = "invalid signature recovery id"


class SignatureRecoveryFailed(InvalidSignature):
    code = "recovery_failed"
    default_message = "no public key can be recovered from the signature"


class SignatureMismatch(InvalidSignature):
    code = "signature_mismatch"
    default_message = "identity key and signature mismatch"


# --- messages --------------------------------------------------------------------------------------------------


class MalformedMessage(SottovoceError):
    code = "malformed"
    default_message = "malformed message"


class InvalidBundle(SottovoceError):
    code = "invalid_bundle"
    default_message = "invalid bundle"


class DecryptionFailed(SottovoceError):
    """A ciphertext failed authentication (wrong key, tampered or truncated bytes)."""

    code = "auth_failed"
    default_message = "message authentication failed"


class TooManySkippedKeys(DecryptionFailed):
    code = "too_many_skipped"
    default_message = "too many skipped messages in one chain"


class MessageKeyDeleted(DecryptionFailed):
    """The message is older than the chain and its key is gone: a replay, or a message already processed."""

    code = "message_key_deleted"
    default_message = "message key already used or deleted (replay or late duplicate)"


class SessionNotFound(SottovoceError):
    code = "session_not_found"
    default_message = "session not found"


class DeviceNotFound(SottovoceError):
    """The message was addressed to our identity but carried nothing for this installation."""

    code = "device_not_found"
    default_message = "device not found"


class NotPairedDevice(SottovoceError):
    code = "not_paired_device"
    default_message = "received a message from not paired device"


class NoPayload(SottovoceError):
    code = "no_payload"
    default_message = "no payload"


class EciesInvalidMessage(DecryptionFailed):
    code = "ecies_invalid_message"
    default_message = "ecies: invalid message"


class EciesInvalidPublicKey(InvalidPublicKey):
    code = "ecies_invalid_public_key"
    default_message = "ecies: invalid public key"
