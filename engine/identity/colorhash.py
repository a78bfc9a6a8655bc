"""Colour hash: the segmented ring drawn around an avatar (identity spec section 6)."""

from __future__ import annotations

from ..crypto.keys import compress
from .bigbase import key_slices, to_big_base
from .errors import IdentityError
from .keytext import PublicKeyInput, public_key_bytes, public_key_from_int_text

COLOR_HASH_UNITS = 5
COLOR_HASH_COLORS = 32

RING_PALETTE = (
    "#000000", "#726F6F", "#C4C4C4", "#E7E7E7", "#FFFFFF", "#00FF00", "#009800", "#B8FFBB",
    "#FFC413", "#9F5947", "#FFFF00", "#A8AC00", "#FFFFB0", "#FF5733", "#FF0000", "#9A0000",
    "#FF9D9D", "#FF0099", "#C80078", "#FF00FF", "#900090", "#FFB0FF", "#9E00FF", "#0000FF",
    "#000086", "#9B81FF", "#3FAEF9", "#9A6600", "#00FFFF", "#008694", "#C2FFFF", "#00F0B6",
)  # fmt: skip
"""status-go's ring colours, indexed by the colour part of a colour hash entry (same for both themes)."""

ColorHash = list[tuple[int, int]]
"""``[(units, colour_index), ...]``: segment lengths 1..5 and palette indexes 0..31."""


def to_color_hash(value: int, units: int, colors: int) -> ColorHash:
    """``value`` in base ``units * colors``, each digit as ``(digit // colors + 1, digit % colors)``.

    A colour equal to the previous entry's (already adjusted) colour is bumped by one, modulo ``colors``.
    """
    if units < 1 or colors < 1 or units * colors < 2 or value < 0:
        raise IdentityError("a colour hash needs at least two symbols and a non-negative value")
    result: ColorHash = []
    for digit in to_big_base(value, units * colors):
        unit, color = digit // colors + 1, digit % colors
        if result and result[-1][1] == color:
            color = (color + 1) % colors
        result.append((unit, color))
    return result


def color_hash(public_key: PublicKeyInput) -> ColorHash:
    """The colour hash of a chat key: up to 11 ``(units, colour_index)`` segments.

    Accepts the same inputs as :func:`engine.identity.emojihash.emoji_hash`.
    """
    raw = public_key_from_int_text(public_key) if isinstance(public_key, str) else public_key_bytes(public_key)
    return to_color_hash(key_slices(compress(raw)).color, COLOR_HASH_UNITS, COLOR_HASH_COLORS)


def color_id(public_key: PublicKeyInput) -> int:
    """status-go's older ``colorId`` (0..10): the whole uncompressed key as one number, modulo 11.

    Unrelated to the colour hash and to the customisation colour; stored on multi-account records.
    """
    raw = public_key_from_int_text(public_key) if isinstance(public_key, str) else public_key_bytes(public_key)
    return int.from_bytes(raw, "big") % 11
