"""Status identities: recovery phrase, chat key and the names, hashes and pictures derived from it.

Everything here follows status-go (identity spec, ``shared/spec/identity.md``). No randomness is drawn:
callers pass entropy in.
"""

from __future__ import annotations

from .address import ethereum_address, key_uid
from .alias import alias, is_alias
from .chatkey import chat_key_text, parse_chat_key, profile_link, short_chat_key
from .colorhash import RING_PALETTE, ColorHash, color_hash, color_id
from .derivation import CHAT_KEY_PATH, DEFAULT_WALLET_PATH, derive_private_key
from .emojihash import emoji_hash
from .errors import (
    BadChecksum,
    IdentityError,
    InvalidChatKey,
    InvalidDerivationPath,
    InvalidDisplayName,
    InvalidEntropy,
    InvalidRecoveryPhrase,
    UnknownWord,
    WrongWordCount,
)
from .identicon import identicon_data_url
from .identity import Identity, identity_from_phrase, identity_from_seed
from .mnemonic import is_valid_recovery_phrase, new_recovery_phrase, normalize_recovery_phrase, phrase_seed
from .names import ContactNames, initials, validate_display_name
from .profile import customization_color_id, customization_color_name, installation_id

__all__ = [
    "CHAT_KEY_PATH",
    "DEFAULT_WALLET_PATH",
    "RING_PALETTE",
    "BadChecksum",
    "ColorHash",
    "ContactNames",
    "Identity",
    "IdentityError",
    "InvalidChatKey",
    "InvalidDerivationPath",
    "InvalidDisplayName",
    "InvalidEntropy",
    "InvalidRecoveryPhrase",
    "UnknownWord",
    "WrongWordCount",
    "alias",
    "chat_key_text",
    "color_hash",
    "color_id",
    "customization_color_id",
    "customization_color_name",
    "derive_private_key",
    "emoji_hash",
    "ethereum_address",
    "identicon_data_url",
    "identity_from_phrase",
    "identity_from_seed",
    "initials",
    "installation_id",
    "is_alias",
    "is_valid_recovery_phrase",
    "key_uid",
    "new_recovery_phrase",
    "normalize_recovery_phrase",
    "parse_chat_key",
    "phrase_seed",
    "profile_link",
    "short_chat_key",
    "validate_display_name",
]
