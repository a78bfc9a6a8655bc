"""The randomness port of the protocol core.

The core never reads ``os.urandom``: every key pair and random byte string it needs comes from an
:class:`Entropy` passed in, labelled with its purpose, so status-go's vectors and seeded simulations can
inject exactly the values status-go drew.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from ..crypto.keys import KeyPair


class KeyPurpose(StrEnum):
    """Why a key pair is generated (the names of the vector files' ``purpose`` field)."""

    SIGNED_PREKEY = "signed_prekey"
    X3DH_EPHEMERAL = "x3dh_ephemeral"
    DH_EPHEMERAL = "dh_ephemeral"
    RATCHET_INIT = "ratchet_dh_init"
    RATCHET_STEP = "ratchet_dh_step"
    ECIES_EPHEMERAL = "ecies_ephemeral"


class BytesPurpose(StrEnum):
    """Why random bytes are drawn."""

    GCM_NONCE = "gcm_nonce"
    PADDING = "padding"
    ECIES_IV = "ecies_iv"
    RECOVERY_PHRASE = "recovery_phrase"
    INSTALLATION_ID = "installation_id"
    JITTER = "jitter"


class Entropy(Protocol):
    """Source of fresh key pairs and random bytes for the protocol core."""

    def new_key(self, purpose: KeyPurpose) -> KeyPair:
        """A fresh secp256k1 key pair."""
        ...

    def random_bytes(self, length: int, purpose: BytesPurpose) -> bytes:
        """``length`` fresh random bytes."""
        ...
