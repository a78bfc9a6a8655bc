"""Names shown for a person: primary/secondary name, display-name rules, initials (spec section 9)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .alias import is_alias
from .errors import DisplayNameLooksLikeAlias, DisplayNameLooksLikeEns, InvalidDisplayName
from .text import GO_SPACE, go_fields

_DISPLAY_NAME = re.compile(r"[A-Za-z0-9_\-\t\n\f\r ]{5,24}")
_ENS_SUFFIXES = ("_eth", ".eth", "-eth")


@dataclass(frozen=True, slots=True)
class ContactNames:
    """The name fields of a contact that decide what is shown for it."""

    alias: str
    display_name: str = ""
    ens_name: str = ""
    ens_verified: bool = False
    local_nickname: str = ""

    def candidates(self) -> list[str]:
        """Nickname, verified ENS name, display name and alias, in that order, skipping empty ones."""
        names = [self.local_nickname]
        if self.ens_verified:
            names.append(self.ens_name)
        names += [self.display_name, self.alias]
        return [name for name in names if name]

    @property
    def primary_name(self) -> str:
        """The name shown for the contact."""
        candidates = self.candidates()
        return candidates[0] if candidates else ""

    @property
    def secondary_name(self) -> str:
        """The name shown under the nickname; empty unless a nickname is set."""
        candidates = self.candidates()
        return candidates[1] if self.local_nickname and len(candidates) > 1 else ""


def validate_display_name(name: str) -> str:
    """status-go's display-name rules; returns the trimmed name (``""`` means no display name).

    5 to 24 ASCII letters, digits, ``_``, ``-`` or white space; no ENS-like suffix; not a generated
    three-word name. Raises :class:`InvalidDisplayName` (or a subclass) otherwise.
    """
    name = name.strip(GO_SPACE)
    if not name:
        return ""
    if not _DISPLAY_NAME.fullmatch(name):
        raise InvalidDisplayName()
    if name.endswith(_ENS_SUFFIXES):
        raise DisplayNameLooksLikeEns()
    if is_alias(name):
        raise DisplayNameLooksLikeAlias()
    return name


def initials(full_name: str, amount: int) -> str:
    """status-go's letter-avatar initials: first byte of each word, upper-cased, until ``amount`` bytes.

    A word starting with a non-ASCII letter contributes U+FFFD, as in status-go (its first byte alone is
    not valid UTF-8).
    """
    result = ""
    for word in go_fields(full_name):
        if len(result.encode("utf-8", "surrogatepass")) >= amount:
            break
        first = word[0]
        result += first.upper() if first.isascii() else "\ufffd"
    return result
