"""Wycheproof secp256k1 ECDH and ECDSA vectors through the project's own crypto layer.

Every test of each file runs; ``valid`` must be accepted (with the file's shared secret), ``invalid`` rejected
(typed error or ``False``), ``acceptable`` may go either way and is counted. Counts print with ``pytest -s``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from engine.crypto.ecdsa import public_key_from_spki_der, verify_der, verify_p1363
from engine.crypto.keys import CURVE_ORDER, check_private_key, ecdh
from engine.errors import InvalidPrivateKey, SottovoceError

WYCHEPROOF = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "wycheproof"
ECDH_FILE = "ecdh_secp256k1_test.json"
BITCOIN_FILE = "ecdsa_secp256k1_sha256_bitcoin_test.json"
P1363_FILE = "ecdsa_secp256k1_sha256_p1363_test.json"

COUNTS: dict[str, Counter[str]] = {}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WYCHEPROOF / name).read_text())
    return data


def _cases(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for group in data["testGroups"]:
        for test in group["tests"]:
            yield group, test


def private_from_wycheproof(hex_private: str) -> bytes:
    """A Wycheproof private key (big-endian, maybe a leading 00 or shorter) as a checked 32-byte scalar."""
    value = int(hex_private, 16)
    if not 0 < value < CURVE_ORDER:
        raise InvalidPrivateKey()
    private = value.to_bytes(32, "big")
    check_private_key(private)
    return private


def _ecdh(group: dict[str, Any], test: dict[str, Any]) -> bytes | None:
    """The shared secret, or ``None`` if our layer rejected the inputs with a typed error."""
    try:
        public = public_key_from_spki_der(bytes.fromhex(test["public"]))
        return ecdh(private_from_wycheproof(test["private"]), public)
    except SottovoceError:
        return None


def _check_file(name: str, accepted: Callable[[dict[str, Any], dict[str, Any]], bool]) -> None:
    data = _load(name)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    for group, test in _cases(data):
        ok = accepted(group, test)
        result = test["result"]
        if result == "acceptable":
            counts["acceptable accepted" if ok else "acceptable rejected"] += 1
            continue
        counts[f"{result} {'accepted' if ok else 'rejected'}"] += 1
        if ok != (result == "valid"):
            failures.append(f"tcId {test['tcId']} ({result}, {test['comment']}, {test['flags']})")
    COUNTS[name] = counts
    assert sum(counts.values()) == data["numberOfTests"]
    assert not failures, f"{len(failures)} wrong outcomes: " + "; ".join(failures[:20])


def _ecdh_accepted(group: dict[str, Any], test: dict[str, Any]) -> bool:
    shared = _ecdh(group, test)
    if shared is None:
        return False
    if test["result"] != "invalid" and test["shared"]:
        assert shared == bytes.fromhex(test["shared"]), f"tcId {test['tcId']}: wrong shared secret"
    return True


def _bitcoin_accepted(group: dict[str, Any], test: dict[str, Any]) -> bool:
    public = bytes.fromhex(group["publicKey"]["uncompressed"])
    return verify_der(bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]), public, low_s_only=True)


def _p1363_accepted(group: dict[str, Any], test: dict[str, Any]) -> bool:
    public = public_key_from_spki_der(bytes.fromhex(group["publicKeyDer"]))
    return verify_p1363(bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]), public)


CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], bool]] = {
    ECDH_FILE: _ecdh_accepted,
    BITCOIN_FILE: _bitcoin_accepted,
    P1363_FILE: _p1363_accepted,
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_wycheproof_file(name: str) -> None:
    _check_file(name, CHECKS[name])


def test_bitcoin_high_s_accepted_without_low_s_rule() -> None:
    """The plain-DER path accepts exactly the signatures Bitcoin rejects only for malleability (high S)."""
    data = _load(BITCOIN_FILE)
    checked = 0
    for group, test in _cases(data):
        if test["flags"] != ["SignatureMalleabilityBitcoin"]:
            continue
        public = bytes.fromhex(group["publicKey"]["uncompressed"])
        message, signature = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
        assert not verify_der(message, signature, public, low_s_only=True)
        assert verify_der(message, signature, public, low_s_only=False)
        checked += 1
    assert checked > 0


def test_bitcoin_file_without_low_s_rule() -> None:
    """Without the low-S rule every Bitcoin-valid signature stays valid, and a Bitcoin-invalid one is accepted
    only if it is strict DER with a high S whose low-S twin Bitcoin would accept (BER variants stay rejected)."""
    data = _load(BITCOIN_FILE)
    accepted_invalid = 0
    for group, test in _cases(data):
        public = bytes.fromhex(group["publicKey"]["uncompressed"])
        message, signature = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
        plain = verify_der(message, signature, public, low_s_only=False)
        if test["result"] == "valid":
            assert plain, test["tcId"]
        elif plain:
            r, s = decode_dss_signature(signature)
            assert s > CURVE_ORDER // 2, test["tcId"]
            twin = encode_dss_signature(r, CURVE_ORDER - s)
            assert verify_der(message, twin, public, low_s_only=True), test["tcId"]
            accepted_invalid += 1
    assert accepted_invalid > 0


def test_wycheproof_summary() -> None:
    """Print the per-file counts (run last in this module; visible with ``-s``)."""
    for name, check in CHECKS.items():
        if name not in COUNTS:
            _check_file(name, check)
    print()
    for name, counts in COUNTS.items():
        print(f"wycheproof {name}: " + ", ".join(f"{key}={counts[key]}" for key in sorted(counts)))
