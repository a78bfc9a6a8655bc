"""Deterministic test doubles for the protocol core."""

from __future__ import annotations

from engine.crypto.keys import KeyPair
from engine.protocol.encryption import EncryptionProtocol
from engine.protocol.entropy import KeyPurpose
from engine.protocol.state import ProtocolState
from engine.simulation.entropy import SeededEntropy

__all__ = ["SeededEntropy", "make_device"]


def make_device(name: str, identity: KeyPair | None = None, installation: str | None = None
                ) -> tuple[EncryptionProtocol, SeededEntropy]:
    """An installation with its own deterministic entropy; pass ``identity`` for a second device of an account."""
    entropy = SeededEntropy(name)
    if identity is None:
        identity = entropy.new_key(KeyPurpose.SIGNED_PREKEY)
    return EncryptionProtocol(ProtocolState(identity, installation or f"{name}-installation")), entropy
