"""Emoji hash: 14 emoji naming a chat key (identity spec section 5)."""

from __future__ import annotations

from collections.abc import Sequence

from ..crypto.keys import compress
from .bigbase import key_slices, to_big_base
from .errors import HashCapacityError, IdentityError
from .keytext import PublicKeyInput, public_key_bytes, public_key_from_int_text
from .wordlists import emoji_alphabet

EMOJI_HASH_LEN = 14


def to_emoji_hash(value: int, hash_len: int, alphabet: Sequence[str]) -> list[str]:
    """``value`` written in base ``len(alphabet)``, zero-padded on the left to ``hash_len`` symbols.

    ``hash_len = 0`` means no padding. Like status-go, raises :class:`HashCapacityError` unless
    ``len(alphabet) ** hash_len >= 2 ** value.bit_length()``.
    """
    if len(alphabet) < 2 or hash_len < 0 or value < 0:
        raise IdentityError("an emoji hash needs an alphabet of 2 or more symbols and non-negative sizes")
    digits = to_big_base(value, len(alphabet))
    if hash_len == 0:
        hash_len = len(digits)
    if len(alphabet) ** hash_len < 1 << value.bit_length():
        raise HashCapacityError()
    digits = [0] * (hash_len - len(digits)) + digits
    return [alphabet[d] for d in digits]


def emoji_hash(public_key: PublicKeyInput) -> list[str]:
    """The 14-emoji hash of a chat key.

    ``public_key`` is 33/65 bytes, or status-go's ``0x04...`` string (compressed and zQ3 text are
    rejected there, as in status-go; convert with :func:`parse_chat_key` first).
    """
    raw = public_key_from_int_text(public_key) if isinstance(public_key, str) else public_key_bytes(public_key)
    return to_emoji_hash(key_slices(compress(raw)).emoji, EMOJI_HASH_LEN, emoji_alphabet())
