"""Topic names, 4-byte topics, content topics and topic keys (spec §9, Appendix A.5)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from engine.conformance.runner import run_cases
from engine.conformance.waku_cases import CHECKERS
from engine.crypto.hashing import keccak256
from engine.crypto.keys import KeyPair, uncompress
from engine.errors import InvalidPublicKey, SottovoceError
from engine.protocol import topics

IK_A = KeyPair.from_private(bytes([0x11]) * 32)
IK_B = KeyPair.from_private(bytes([0x22]) * 32)
IK_B_UNCOMPRESSED = bytes.fromhex(
    "04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a"
)

# spec Appendix A.5
A5_SECRET = "77e0510d5042e2f5e9e59c977b81eeed590cf7d20c1c51da451a8eaa9fdc45ff"
A5_NEGOTIATED_TOPIC = "ba355e7b"
A5_NEGOTIATED_KEY = "7b3852eb7f0f7052e134c09245ec7a777873fa47f1005322f9c42c8ff8caa9fd"
A5_CONTACT_CODE_NAME = (
    "0x04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e"
    "77d044f33e407797e1278a-contact-code"
)
A5_CONTACT_CODE_TOPIC = "a40a6a04"
A5_CONTACT_CODE_KEY = "c6915db19b55db39d1822fb05336f34e1c3b290cb0cf3d62268bf08d4a75565e"
A5_PARTITIONED_NAME = "contact-discovery-994"
A5_PARTITIONED_TOPIC = "f607cdc6"


def test_a5_negotiated_secret_topic_and_key() -> None:
    secret = topics.negotiated_secret(IK_A.private, IK_B.public)
    assert secret.hex() == A5_SECRET
    assert topics.negotiated_name(secret) == A5_SECRET
    assert topics.topic(A5_SECRET).hex() == A5_NEGOTIATED_TOPIC
    assert topics.content_topic(A5_SECRET) == f"/waku/1/0x{A5_NEGOTIATED_TOPIC}/rfc26"
    keyed = topics.negotiated_topic(secret).with_key()
    assert keyed.topic.hex() == A5_NEGOTIATED_TOPIC
    assert keyed.sym_key is not None
    assert keyed.sym_key.hex() == A5_NEGOTIATED_KEY


def test_a5_negotiated_secret_is_symmetric() -> None:
    assert topics.negotiated_secret(IK_B.private, IK_A.public) == bytes.fromhex(A5_SECRET)
    assert topics.negotiated_secret(IK_B.private, uncompress(IK_A.public)) == bytes.fromhex(A5_SECRET)


def test_a5_contact_code() -> None:
    assert topics.contact_code_name(IK_B.public) == A5_CONTACT_CODE_NAME
    assert topics.contact_code_name(IK_B_UNCOMPRESSED) == A5_CONTACT_CODE_NAME
    assert topics.topic(A5_CONTACT_CODE_NAME).hex() == A5_CONTACT_CODE_TOPIC
    assert topics.symmetric_key(A5_CONTACT_CODE_NAME).hex() == A5_CONTACT_CODE_KEY
    t = topics.contact_code_topic(IK_B.public)
    assert (t.name, t.topic.hex(), t.content_topic) == (
        A5_CONTACT_CODE_NAME,
        A5_CONTACT_CODE_TOPIC,
        f"/waku/1/0x{A5_CONTACT_CODE_TOPIC}/rfc26",
    )


def test_a5_partitioned() -> None:
    assert topics.partitioned_name(IK_A.public) == A5_PARTITIONED_NAME
    t = topics.partitioned_topic(IK_A.public)
    assert t.topic.hex() == A5_PARTITIONED_TOPIC
    assert t.sym_key is None


def test_partition_is_x_mod_5000() -> None:
    for key in (IK_A, IK_B, KeyPair.from_private(bytes(31) + b"\x07")):
        x = int.from_bytes(uncompress(key.public)[1:33], "big")
        assert topics.partitioned_name(key.public) == f"contact-discovery-{x % 5000}"


def test_personal_and_legacy_names() -> None:
    assert topics.personal_name(IK_B.public) == "contact-discovery-" + IK_B_UNCOMPRESSED.hex()
    assert topics.personal_topic(IK_B_UNCOMPRESSED).name == topics.personal_name(IK_B.public)
    legacy = topics.legacy_discovery_topic()
    assert legacy.name == "contact-discovery"
    assert legacy.topic == keccak256(b"contact-discovery")[:4]


def test_negotiated_chat_id_is_a_label_only() -> None:
    assert topics.negotiated_chat_id(IK_B.public) == f"0x{IK_B_UNCOMPRESSED.hex()}-negotiated"


def test_topic_is_keccak_prefix_and_content_topic_format() -> None:
    for name in ("", "contact-discovery", "ünïcode"):
        assert topics.topic(name) == keccak256(name.encode())[:4]
        assert topics.content_topic(name) == f"/waku/1/0x{keccak256(name.encode())[:4].hex()}/rfc26"


def test_symmetric_key_is_pbkdf2_65356() -> None:
    name = "some-topic"
    assert topics.symmetric_key(name) == hashlib.pbkdf2_hmac("sha256", name.encode(), b"", 65356, 32)
    assert topics.symmetric_key(name) != hashlib.pbkdf2_hmac("sha256", name.encode(), b"", 65536, 32)


def test_key_derivation_is_explicit_and_cached_by_holding_the_topic() -> None:
    plain = topics.Topic.of(A5_CONTACT_CODE_NAME)
    assert plain.sym_key is None
    keyed = plain.with_key()
    assert keyed.sym_key is not None and keyed.sym_key.hex() == A5_CONTACT_CODE_KEY
    assert keyed.with_key() is keyed
    assert plain.sym_key is None  # frozen: the original is unchanged
    with pytest.raises(AttributeError):
        keyed.name = "other"  # type: ignore[misc]


def test_repr_hides_key() -> None:
    keyed = topics.Topic.of(A5_CONTACT_CODE_NAME).with_key()
    assert A5_CONTACT_CODE_KEY not in repr(keyed)
    assert "keyed" in repr(keyed)


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x04" + bytes(64), b"\x05" + bytes(32), bytes(33), IK_B.public[:-1], IK_B_UNCOMPRESSED + b"\x00"],
)
def test_invalid_public_keys_are_typed_errors(bad: bytes) -> None:
    for fn in (
        topics.contact_code_name,
        topics.partitioned_name,
        topics.personal_name,
        topics.negotiated_chat_id,
    ):
        with pytest.raises(InvalidPublicKey):
            fn(bad)
    with pytest.raises(SottovoceError):
        topics.negotiated_secret(IK_A.private, bad)


VECTORS = Path("/work/shared/vectors/status-go/status-go-vectors.json")


@pytest.mark.skipif(not VECTORS.exists(), reason="shared status-go vectors not available")
def test_status_go_topic_vectors_pass() -> None:
    cases = [c for c in json.loads(VECTORS.read_text())["cases"] if c["type"] == "topics"]
    assert cases
    failures = [r for r in run_cases(cases, CHECKERS) if not r.ok]
    assert failures == []
