"""X3DH without one-time prekeys, as status-go runs it (spec §4): ``SK = K256(dh1 ‖ dh2 ‖ dh3)``."""

from __future__ import annotations

from ..crypto.hashing import keccak256
from ..crypto.keys import ecdh


def x3dh_active(identity_private: bytes, ephemeral_private: bytes, peer_identity: bytes,
                peer_signed_prekey: bytes) -> bytes:
    """Initiator side: ``dh1 = DH(IK_A, SPK_B)``, ``dh2 = DH(EK_A, IK_B)``, ``dh3 = DH(EK_A, SPK_B)``."""
    return keccak256(
        ecdh(identity_private, peer_signed_prekey),
        ecdh(ephemeral_private, peer_identity),
        ecdh(ephemeral_private, peer_signed_prekey),
    )


def x3dh_passive(signed_prekey_private: bytes, identity_private: bytes, peer_identity: bytes,
                 peer_ephemeral: bytes) -> bytes:
    """Responder side; ``peer_identity`` is the signer recovered from the envelope, never a header field."""
    return keccak256(
        ecdh(signed_prekey_private, peer_identity),
        ecdh(identity_private, peer_ephemeral),
        ecdh(signed_prekey_private, peer_ephemeral),
    )
