"""base58btc (Bitcoin alphabet), the ``z`` multibase used by zQ3 chat keys."""

from __future__ import annotations

from .errors import InvalidBase58

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
MAX_TEXT_LEN = 1024
"""Longer input is refused: nothing in the identity layer needs it and decoding is quadratic."""


def b58encode(data: bytes) -> str:
    """Big-endian base58 of ``data``; each leading zero byte becomes ``1``."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    value = int.from_bytes(data, "big")
    digits = []
    while value:
        value, digit = divmod(value, 58)
        digits.append(ALPHABET[digit])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`InvalidBase58` on characters outside the alphabet."""
    if len(text) > MAX_TEXT_LEN:
        raise InvalidBase58("base58 text too long")
    value = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise InvalidBase58(f"invalid base58 character {char!r}")
        value = value * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return b"\0" * zeros + body
