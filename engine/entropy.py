"""The operating system's randomness, as the protocol core's :class:`~engine.protocol.entropy.Entropy`."""

from __future__ import annotations

import secrets

from .crypto.keys import CURVE_ORDER, KeyPair
from .protocol.entropy import BytesPurpose, KeyPurpose


class SystemEntropy:
    """Key pairs and bytes from ``secrets`` (the OS CSPRNG)."""

    def new_key(self, purpose: KeyPurpose) -> KeyPair:
        while True:
            private = secrets.token_bytes(32)
            if 0 < int.from_bytes(private, "big") < CURVE_ORDER:
                return KeyPair.from_private(private)

    def random_bytes(self, length: int, purpose: BytesPurpose) -> bytes:
        return secrets.token_bytes(length)
