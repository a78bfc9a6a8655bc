"""Base conversion and the compressed-key split shared by emoji and colour hashes (spec section 4)."""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.keys import COMPRESSED_LEN
from .errors import IdentityError, InvalidKeyLength


def to_big_base(value: int, base: int) -> list[int]:
    """Digits of ``value`` in ``base``, most significant first, no leading zeros; ``[0]`` for 0."""
    if value < 0 or base < 2:
        raise IdentityError("to_big_base needs a value >= 0 and a base >= 2")
    digits: list[int] = []
    while True:
        value, digit = divmod(value, base)
        digits.append(digit)
        if value == 0:
            return digits[::-1]


@dataclass(frozen=True, slots=True)
class KeySlices:
    """The four bit runs of a 33-byte compressed key: 12 unused, 160 emoji, 80 colour, 12 unused bits."""

    cutoff_a: int
    emoji: int
    color: int
    cutoff_b: int


def key_slices(compressed_key: bytes) -> KeySlices:
    """Split a 33-byte compressed key (264 bits) into its 12/160/80/12-bit parts."""
    if len(compressed_key) != COMPRESSED_LEN:
        raise InvalidKeyLength("a compressed key has 33 bytes")
    n = int.from_bytes(compressed_key, "big")
    return KeySlices(
        cutoff_a=n >> 252,
        emoji=(n >> 92) & ((1 << 160) - 1),
        color=(n >> 12) & ((1 << 80) - 1),
        cutoff_b=n & 0xFFF,
    )
