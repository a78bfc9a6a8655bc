"""The word lists shipped in ``engine/identity/data`` (copies of status-go's, order and duplicates kept)."""

from __future__ import annotations

from functools import cache
from importlib import resources

_PACKAGE = __name__.rpartition(".")[0]

EMOJI_ALPHABET_SIZE = 2757
"""status-go uses only the first 2757 lines of its emoji file; the rest are reserve entries."""


def _read_lines(name: str) -> tuple[str, ...]:
    text = resources.files(_PACKAGE).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    # split on "\n" only: str.splitlines() would also split inside an entry on U+2028/U+0085
    return tuple(text.split("\n")[:-1])


@cache
def adjectives() -> tuple[str, ...]:
    """The 1389 adjectives of the three-word name, duplicates kept."""
    return _read_lines("alias-adjectives.txt")


@cache
def animals() -> tuple[str, ...]:
    """The 1704 animals of the three-word name, duplicates kept."""
    return _read_lines("alias-animals.txt")


@cache
def emoji_alphabet() -> tuple[str, ...]:
    """The 2757 emoji hash symbols; each entry is one opaque string (may hold several code points)."""
    return _read_lines("emojihash-alphabet.txt")[:EMOJI_ALPHABET_SIZE]
