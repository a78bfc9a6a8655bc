"""The chat key in the forms people see and share (identity spec section 3)."""

from __future__ import annotations

import functools

from ..crypto.keys import compress
from .errors import InvalidChatKey
from .keytext import public_key_bytes, public_key_from_hex_text
from .multiformat import LEGACY_KEY_LEN, SECP256K1_PUB_TAG, decode_compressed_key, multibase_encode

ZQ3_LEN = 49
ZQ3_PREFIX = "zQ3sh"
PROFILE_LINK_PREFIX = "https://status.app/u#"


@functools.lru_cache(maxsize=4096)
def chat_key_text(public_key: bytes) -> str:
    """The ``zQ3sh...`` chat key (multibase base58btc of ``E7 01`` + compressed key) of a 33/65-byte key.

    Cached: every message shown names two or three keys, and base58 is slow in Python.
    """
    return multibase_encode("z", SECP256K1_PUB_TAG + compress(public_key_bytes(public_key)))


def parse_chat_key(text: str) -> bytes:
    """The 65-byte uncompressed public key of a chat key a user typed or pasted.

    Accepts the zQ3 form (or another multibase/multicodec form status-go reads) or the 132-character
    ``0x04...`` hex form, after trimming surrounding white space. Unlike status-go, the hex form is checked
    to be a curve point. Raises :class:`InvalidChatKey` or a subclass.
    """
    text = text.strip()
    if len(text) == LEGACY_KEY_LEN:
        if text[:2] not in ("0x", "0X"):
            raise InvalidChatKey()
        return public_key_from_hex_text(text)
    return decode_compressed_key(text)


def short_chat_key(chat_key: str) -> str:
    """A contact's shortened key: first 3 and last 6 characters of the zQ3 text, e.g. ``zQ3...9m9T1C``."""
    if len(chat_key) <= 9:
        return ""
    return f"{chat_key[:3]}...{chat_key[-6:]}"


def profile_link(public_key: bytes) -> str:
    """The shareable profile link ``https://status.app/u#zQ3...``."""
    return PROFILE_LINK_PREFIX + chat_key_text(public_key)
