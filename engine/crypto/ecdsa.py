"""secp256k1 public keys in X.509 SubjectPublicKeyInfo form and plain (non-recoverable) ECDSA verification.

Which library does what (no ECDSA arithmetic is written here):

- SPKI DER parsing: pyca/cryptography's ``load_der_public_key`` (strict DER, named curves only, point checked
  on the curve); we then require the curve to be SECP256K1.
- Bitcoin rules (``verify_der(..., low_s_only=True)``): coincurve, i.e. libsecp256k1's strict DER parser and
  ``secp256k1_ecdsa_verify``, which rejects high-S signatures.
- Plain ECDSA (``verify_der(..., low_s_only=False)`` and ``verify_p1363``): pyca/cryptography's ECDSA verify
  (OpenSSL), which accepts both S values. The DER form is first decoded with cryptography's strict decoder and
  must re-encode to the same bytes, so BER variants are rejected; P1363 is exactly ``r ‖ s``, 32 bytes each.

Every message is hashed with SHA-256. A bad public key raises :class:`InvalidPublicKey`; a bad signature
(malformed, out of range or not matching) returns ``False``.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..errors import InvalidPublicKey
from .keys import CURVE_ORDER, parse_public_key

P1363_SIGNATURE_LEN = 64
_CURVE = ec.SECP256K1()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def public_key_from_spki_der(der: bytes) -> bytes:
    """The 33-byte compressed point of a DER SubjectPublicKeyInfo holding a secp256k1 key.

    Raises :class:`InvalidPublicKey` for bad DER, another algorithm or curve, or a point not on the curve.
    """
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey("not a valid SubjectPublicKeyInfo") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256K1):
        raise InvalidPublicKey("not a secp256k1 public key")
    compressed = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    parse_public_key(compressed)  # libsecp256k1 must agree that the point is valid
    return compressed


def _cryptography_key(public: bytes) -> ec.EllipticCurvePublicKey:
    parse_public_key(public)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, public)
    except ValueError as exc:
        raise InvalidPublicKey() from exc


def _verify_rs(message: bytes, r: int, s: int, public: bytes) -> bool:
    key = _cryptography_key(public)
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        return False
    try:
        key.verify(encode_dss_signature(r, s), message, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def verify_der(message: bytes, der_signature: bytes, public: bytes, *, low_s_only: bool) -> bool:
    """Whether the strict-DER ECDSA signature over SHA-256(``message``) was made by ``public`` (33 or 65 bytes).

    ``low_s_only`` applies Bitcoin's rules (libsecp256k1): a signature with ``s > n/2`` is rejected.
    """
    if low_s_only:
        point = parse_public_key(public)
        try:
            return bool(point.verify(der_signature, hashlib.sha256(message).digest(), hasher=None))
        except ValueError:  # not strict DER
            return False
    try:
        r, s = decode_dss_signature(der_signature)
    except ValueError:
        return False
    if encode_dss_signature(r, s) != der_signature:  # BER or otherwise non-canonical encoding
        return False
    return _verify_rs(message, r, s, public)


def verify_p1363(message: bytes, signature64: bytes, public: bytes) -> bool:
    """Whether the ``r ‖ s`` (32 + 32 bytes, big-endian) signature over SHA-256(``message``) was made by ``public``.

    Both S values are accepted (no low-S rule), as in IEEE P1363 / JOSE.
    """
    if len(signature64) != P1363_SIGNATURE_LEN:
        _cryptography_key(public)
        return False
    r = int.from_bytes(signature64[:32], "big")
    s = int.from_bytes(signature64[32:], "big")
    return _verify_rs(message, r, s, public)


def low_s(signature64: bytes) -> bytes:
    """The low-S form of an ``r ‖ s`` signature (``s`` replaced by ``n - s`` when above ``n/2``)."""
    if len(signature64) != P1363_SIGNATURE_LEN:
        raise ValueError("an r ‖ s signature is 64 bytes")
    s = int.from_bytes(signature64[32:], "big")
    if s > CURVE_ORDER // 2:
        s = CURVE_ORDER - s
    return signature64[:32] + s.to_bytes(32, "big")


__all__ = ["P1363_SIGNATURE_LEN", "low_s", "public_key_from_spki_der", "verify_der", "verify_p1363"]
