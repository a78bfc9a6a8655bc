"""The generated three-word name, e.g. "Cadetblue Fuzzy Flickertailsquirrel" (identity spec section 7)."""

from __future__ import annotations

from .errors import IdentityError
from .keytext import PublicKeyInput, public_key_bytes, public_key_from_hex_text
from .text import go_fields
from .wordlists import adjectives, animals

_MASK64 = (1 << 64) - 1


def _lfsr_step(state: int) -> int:
    """One step of status-go's 64-bit Fibonacci LFSR (taps 0xB8: bits 3, 4, 5 and 7)."""
    bit = ((state >> 3) ^ (state >> 4) ^ (state >> 5) ^ (state >> 7)) & 1
    return ((state << 1) | bit) & _MASK64


def alias_from_seed(seed: int) -> str:
    """The three-word name for a 64-bit LFSR seed."""
    if not 0 <= seed <= _MASK64:
        raise IdentityError("an alias seed is an unsigned 64-bit number")
    words = []
    state = seed
    for wordlist in (adjectives(), adjectives(), animals()):
        state = _lfsr_step(state)
        words.append(wordlist[state % len(wordlist)])
    return " ".join(words)


def alias(public_key: PublicKeyInput) -> str:
    """The three-word name of a chat key (33/65 bytes, or status-go's ``0x04...`` hex string).

    The seed is the low 64 bits of the key's X coordinate.
    """
    raw = public_key_from_hex_text(public_key) if isinstance(public_key, str) else public_key_bytes(public_key)
    return alias_from_seed(int.from_bytes(raw[25:33], "big"))


def is_alias(name: str) -> bool:
    """True when ``name`` looks like a generated three-word name (status-go's ``IsAlias``)."""
    words = go_fields(name)
    if len(words) != 3:
        return False
    words = [w[:1].upper() + w[1:] for w in words]
    return words[0] in adjectives() and words[1] in adjectives() and words[2] in animals()
