"""BIP39 recovery phrases as status-go makes, validates and stretches them (identity spec section 1.1-1.3).

The BIP39 work itself is done by the ``mnemonic`` package (Trezor's reference implementation); this module
adds status-go's validation rules and typed errors. Randomness is never drawn here: callers pass entropy in.
"""

from __future__ import annotations

from functools import cache

from mnemonic import Mnemonic

from .errors import BadChecksum, InvalidEntropy, InvalidRecoveryPhrase, UnknownWord, WrongWordCount
from .text import go_fields

WORD_COUNTS = (12, 15, 18, 21, 24)
ENTROPY_LENGTHS = (16, 20, 24, 28, 32)
DEFAULT_ENTROPY_LENGTH = 16
"""status-go's "create profile" always makes a 12-word phrase, i.e. 16 bytes (128 bits) of entropy."""


@cache
def _english() -> Mnemonic:
    return Mnemonic("english")


@cache
def _english_words() -> frozenset[str]:
    return frozenset(_english().wordlist)


def new_recovery_phrase(entropy: bytes) -> str:
    """The English BIP39 phrase for ``entropy`` (16 bytes gives the 12 words Status uses).

    The caller draws the entropy from a CSPRNG; it must be 16, 20, 24, 28 or 32 bytes long.
    """
    if len(entropy) not in ENTROPY_LENGTHS:
        raise InvalidEntropy()
    return _english().to_mnemonic(bytes(entropy))


def recovery_phrase_words(phrase: str) -> list[str]:
    """Validate ``phrase`` as status-go's ``ValidateMnemonic`` does and return its words.

    Words are separated by any run of white space; each must be in the English list (case-sensitive);
    the count must be 12, 15, 18, 21 or 24 and the BIP39 checksum must match.
    """
    words = go_fields(phrase)
    if len(words) not in WORD_COUNTS:
        raise WrongWordCount()
    known = _english_words()
    for position, word in enumerate(words, start=1):
        if word not in known:
            raise UnknownWord(f"word {position} of the recovery phrase is not in the word list")
    try:
        _english().to_entropy(words)
    except (ValueError, LookupError) as exc:
        raise BadChecksum() from exc
    return words


def normalize_recovery_phrase(phrase: str) -> str:
    """Validate ``phrase`` and return it with its words joined by single spaces (the form Status derives from)."""
    return " ".join(recovery_phrase_words(phrase))


def is_valid_recovery_phrase(phrase: str) -> bool:
    """True when :func:`recovery_phrase_words` accepts ``phrase``."""
    try:
        recovery_phrase_words(phrase)
    except (WrongWordCount, UnknownWord, BadChecksum):
        return False
    return True


def phrase_seed(phrase: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP39 seed of ``phrase`` used verbatim (NFKD only), exactly as status-go restores it.

    No trimming, case folding, space collapsing or checksum check happens here: validate first with
    :func:`normalize_recovery_phrase` when the input comes from a user.
    """
    try:
        return Mnemonic.to_seed(phrase, passphrase)
    except UnicodeError as exc:  # lone surrogates cannot be UTF-8 encoded
        raise InvalidRecoveryPhrase() from exc
