"""BIP32 key derivation over secp256k1 and status-go's derivation-path text (identity spec section 1.4).

The BIP32 arithmetic is the ``bip32`` package's; this module parses paths the way status-go's
``account/generator`` path decoder does and turns library failures into typed errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bip32 import BIP32, BIP32DerivationError  # type: ignore[import-untyped]

from .errors import DerivationFailed, InvalidDerivationPath, InvalidSeed

HARDENED = 0x80000000

CHAT_KEY_PATH = "m/43'/60'/1581'/0'/0"
"""The messaging identity (chat) key; note the hardened key-type level ``0'``."""
ENCRYPTION_KEY_PATH = "m/43'/60'/1581'/1'/0"
EIP1581_ROOT_PATH = "m/43'/60'/1581'"
WALLET_ROOT_PATH = "m/44'/60'/0'/0"
DEFAULT_WALLET_PATH = "m/44'/60'/0'/0/0"
MASTER_PATH = "m"

MIN_SEED_LEN = 16
MAX_SEED_LEN = 64


class StartingPoint(Enum):
    """Where a derivation path starts: status-go's decoder also knows relative paths."""

    MASTER = "master"
    CURRENT = "current"
    PARENT = "parent"


@dataclass(frozen=True, slots=True)
class DerivationPath:
    """A parsed path: its starting point and child indexes (hardened ones have bit 31 set)."""

    start: StartingPoint
    indexes: tuple[int, ...]


class _PathReader:
    """A one-character-lookahead reader that reports positions as status-go's decoder does."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def fail(self, message: str, at: int | None = None) -> InvalidDerivationPath:
        # status-go reports the 1-based position of the offending character, or the length at end of input
        where = self.pos if at is None else at
        position = where + 1 if where < len(self.text) else len(self.text)
        return InvalidDerivationPath(f"error parsing derivation path {self.text}; at position {position}, {message}")

    def got(self) -> str:
        return self.peek() or "EOF"

    def number(self) -> int:
        start = self.pos
        while self.peek().isascii() and self.peek().isdigit():
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"expected number, got {self.got()}")
        digits = self.text[start : self.pos].lstrip("0") or "0"
        if len(digits) > 10 or int(digits) >= HARDENED:  # length first: int() refuses huge digit strings
            raise self.fail(f"index must be lower than 2^31, got {digits}", at=start)
        value = int(digits)
        if self.peek() == "'":
            self.pos += 1
            value += HARDENED
        return value


def parse_derivation_path(text: str) -> DerivationPath:
    """Parse ``m/44'/60'/0'/0/0``-style text; ``m`` alone is the master key, ``'`` marks hardened indexes.

    Like status-go, ``""`` and ``"1/2"`` are relative to the current key and ``".."`` to its parent.
    Raises :class:`InvalidDerivationPath` carrying status-go's error text.
    """
    reader = _PathReader(text)
    indexes: list[int] = []
    if text.startswith("m"):
        start = StartingPoint.MASTER
        reader.pos = 1
    elif text.startswith(".."):
        start = StartingPoint.PARENT
        reader.pos = 2
    else:
        start = StartingPoint.CURRENT
        if text:
            indexes.append(reader.number())
    while reader.peek():
        if reader.peek() != "/":
            raise reader.fail(f"expected /, got {reader.got()}")
        reader.pos += 1
        indexes.append(reader.number())
    return DerivationPath(start, tuple(indexes))


def _absolute_indexes(path: str | DerivationPath) -> list[int]:
    parsed = parse_derivation_path(path) if isinstance(path, str) else path
    if parsed.start is not StartingPoint.MASTER:
        raise InvalidDerivationPath("a derivation path must start at the master key (m/...)")
    return list(parsed.indexes)


def _master(seed: bytes) -> BIP32:
    if not MIN_SEED_LEN <= len(seed) <= MAX_SEED_LEN:
        raise InvalidSeed()
    try:
        return BIP32.from_seed(bytes(seed))
    except ValueError as exc:  # master key 0 or >= n
        raise InvalidSeed() from exc


def derive_private_key(seed: bytes, path: str | DerivationPath) -> bytes:
    """The 32-byte private key at ``path`` (starting at the master key of ``seed``)."""
    indexes = _absolute_indexes(path)
    master = _master(seed)
    try:
        key = master.get_privkey_from_path(indexes)
    except (BIP32DerivationError, ValueError) as exc:  # the child scalar was 0 or >= n
        raise DerivationFailed() from exc
    if not isinstance(key, bytes) or len(key) != 32:
        raise DerivationFailed()
    return key


def master_public_key(seed: bytes) -> bytes:
    """The 33-byte compressed public key of the BIP32 master key of ``seed``."""
    return bytes(_master(seed).pubkey)


def master_xprv(seed: bytes) -> str:
    """The base58check ``xprv...`` serialisation of the master key of ``seed`` (mainnet)."""
    return str(_master(seed).get_xpriv())
