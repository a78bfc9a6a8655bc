"""Reproducible randomness for simulations and tests (never for real keys)."""

from __future__ import annotations

import hashlib

from ..crypto.keys import CURVE_ORDER, KeyPair
from ..protocol.entropy import BytesPurpose, KeyPurpose


class SeededEntropy:
    """Keys and bytes derived from a seed and a counter: reproducible, and different for every call."""

    def __init__(self, seed: bytes | str = b"sottovoce") -> None:
        self.seed = seed.encode() if isinstance(seed, str) else seed
        self.counter = 0

    def _next(self) -> bytes:
        self.counter += 1
        return hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()

    def new_key(self, purpose: KeyPurpose) -> KeyPair:
        while True:
            candidate = self._next()
            if 0 < int.from_bytes(candidate, "big") < CURVE_ORDER:
                return KeyPair.from_private(candidate)

    def random_bytes(self, length: int, purpose: BytesPurpose) -> bytes:
        out = b""
        while len(out) < length:
            out += self._next()
        return out[:length]
