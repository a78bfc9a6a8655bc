"""Per-profile values that are not derived from the keys: installation id and customisation colour.

Spec sections 2 and 9.4. Randomness is passed in by the caller.
"""

from __future__ import annotations

import uuid

from .errors import IdentityError

CUSTOMIZATION_COLORS = (
    "primary", "purple", "indigo", "turquoise", "blue", "green", "yellow", "orange", "red",
    "flamingo", "brown", "sky", "army", "magenta", "copper", "camel", "yinyang", "beige",
)  # fmt: skip
"""``ChatIdentity.customization_color`` number -> stored name."""
DEFAULT_CUSTOMIZATION_COLOR = 4
"""blue: new contacts start with it and unknown ids or names fall back to it."""


def installation_id(random_bytes: bytes) -> str:
    """A canonical lower-case UUID version 4 made from 16 caller-drawn random bytes (one per device)."""
    if len(random_bytes) != 16:
        raise IdentityError("an installation id is made from 16 random bytes")
    return str(uuid.UUID(bytes=bytes(random_bytes), version=4))


def customization_color_name(color_id: int) -> str:
    """The stored name of a customisation colour number (blue when unknown)."""
    if 0 <= color_id < len(CUSTOMIZATION_COLORS):
        return CUSTOMIZATION_COLORS[color_id]
    return CUSTOMIZATION_COLORS[DEFAULT_CUSTOMIZATION_COLOR]


def customization_color_id(name: str) -> int:
    """The number of a customisation colour name (4, blue, when unknown)."""
    try:
        return CUSTOMIZATION_COLORS.index(name)
    except ValueError:
        return DEFAULT_CUSTOMIZATION_COLOR
