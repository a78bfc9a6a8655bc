"""Typed errors of the identity module.

Where status-go states an error text (multiformat chat keys, derivation paths) the message is that text, so
the conformance vectors can compare it; otherwise it is a short line meant for the user.
"""

from __future__ import annotations

from ..errors import InvalidPublicKey, SottovoceError


class IdentityError(SottovoceError):
    """Base of every error raised by :mod:`engine.identity`."""

    code = "identity_error"
    default_message = "invalid identity input"


# --- recovery phrases ------------------------------------------------------------------------------------------


class InvalidRecoveryPhrase(IdentityError):
    """A recovery phrase that is not a valid 12/15/18/21/24-word English BIP39 phrase."""

    code = "invalid_recovery_phrase"
    default_message = "this is not a valid recovery phrase"


class WrongWordCount(InvalidRecoveryPhrase):
    code = "wrong_word_count"
    default_message = "a recovery phrase has 12, 15, 18, 21 or 24 words"


class UnknownWord(InvalidRecoveryPhrase):
    code = "unknown_word"
    default_message = "the recovery phrase contains a word that is not in the word list"


class BadChecksum(InvalidRecoveryPhrase):
    code = "bad_checksum"
    default_message = "the recovery phrase has a typo (checksum mismatch)"


class InvalidEntropy(IdentityError):
    code = "invalid_entropy"
    default_message = "entropy for a recovery phrase must be 16, 20, 24, 28 or 32 bytes"


# --- key derivation --------------------------------------------------------------------------------------------


class InvalidSeed(IdentityError):
    code = "invalid_seed"
    default_message = "invalid seed for key derivation"


class InvalidDerivationPath(IdentityError):
    code = "invalid_derivation_path"
    default_message = "invalid derivation path"


class DerivationFailed(IdentityError):
    """BIP32 produced an invalid child key (probability about 2^-127; status-go gives up too)."""

    code = "derivation_failed"
    default_message = "key derivation produced an invalid key"


# --- chat keys and display forms -------------------------------------------------------------------------------


class InvalidChatKey(IdentityError, InvalidPublicKey):
    """A chat key (zQ3 string, multibase form or ``0x04...`` hex) that cannot be read."""

    code = "invalid_chat_key"
    default_message = "this is not a valid chat key"


class UnsupportedEncoding(InvalidChatKey):
    code = "unsupported_encoding"
    default_message = "selected encoding not supported"


class UnsupportedKeyType(InvalidChatKey):
    code = "unsupported_key_type"
    default_message = "unsupported public key type"


class InvalidKeyFormat(InvalidChatKey):
    code = "invalid_key_format"
    default_message = "invalid public key format"


class InvalidHex(InvalidChatKey):
    code = "invalid_hex"
    default_message = "invalid hexadecimal text"


class InvalidBase58(InvalidChatKey):
    code = "invalid_base58"
    default_message = "invalid base58 text"


class InvalidVarint(InvalidChatKey):
    code = "invalid_varint"
    default_message = "varints malformed, could not reach the end"


class InvalidKeyLength(InvalidChatKey):
    code = "invalid_key_length"
    default_message = "a chat key in hex form has 132 characters"


class HashCapacityError(IdentityError):
    """The alphabet cannot represent the value in the requested number of symbols."""

    code = "hash_capacity"
    default_message = "not enough combinations"


# --- names -----------------------------------------------------------------------------------------------------


class InvalidDisplayName(IdentityError):
    code = "invalid_display_name"
    default_message = "a display name has 5 to 24 letters, digits, spaces, '_' or '-'"


class DisplayNameLooksLikeEns(InvalidDisplayName):
    code = "display_name_ens_suffix"
    default_message = "a display name cannot end in _eth, .eth or -eth"


class DisplayNameLooksLikeAlias(InvalidDisplayName):
    code = "display_name_is_alias"
    default_message = "a display name cannot look like a generated three-word name"
