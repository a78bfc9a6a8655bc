"""Reading a public key given as text or bytes, with status-go's rules for each display function."""

from __future__ import annotations

import binascii
import re

from ..crypto.keys import UNCOMPRESSED_LEN, parse_public_key
from ..errors import InvalidPublicKey
from .errors import InvalidChatKey

PublicKeyInput = bytes | str
"""A public key as 33/65 bytes, or as status-go's ``0x04...`` uncompressed hex string."""

_HEX_INT = re.compile(r"0[xX][0-9a-fA-F]+")


def _uncompressed_point(data: bytes) -> bytes:
    """``data`` itself when it is a valid 65-byte uncompressed point (status-go's UnmarshalPubkey)."""
    if len(data) != UNCOMPRESSED_LEN or data[0] != 4:
        raise InvalidChatKey("invalid public key: expected 65 bytes starting with 04")
    try:
        parse_public_key(data)
    except InvalidPublicKey as exc:
        raise InvalidChatKey("invalid public key: not a point on secp256k1") from exc
    return data


def public_key_from_int_text(text: str) -> bytes:
    """status-go's ``ToCompressedKey`` input rule (emoji and colour hash): a ``0x``-prefixed number.

    The number's minimal big-endian bytes must be a 65-byte uncompressed point; returns those bytes.
    Decimal or octal spellings, which Go's ``big.Int.SetString(s, 0)`` would also read, are not accepted.
    """
    if not _HEX_INT.fullmatch(text):
        raise InvalidChatKey(f"invalid pubkey: {text[:140]}")
    value = int(text[2:], 16)
    data = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return _uncompressed_point(data)


def public_key_from_hex_text(text: str) -> bytes:
    """status-go's three-word-name input rule: drop the first two characters, hex-decode, 65-byte point."""
    try:
        data = binascii.unhexlify(text[2:])
    except (binascii.Error, ValueError) as exc:
        raise InvalidChatKey("invalid public key: not hexadecimal") from exc
    return _uncompressed_point(data)


def public_key_bytes(public_key: bytes) -> bytes:
    """The 65-byte uncompressed form of a 33- or 65-byte public key."""
    try:
        return parse_public_key(public_key).format(compressed=False)
    except InvalidPublicKey as exc:
        raise InvalidChatKey() from exc
