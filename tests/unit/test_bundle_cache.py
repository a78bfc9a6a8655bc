"""The own bundle is signed once per burst, and a bundle verified once is not recovered again.

Reuse must never change what is accepted: the same entries within :data:`BUNDLE_REUSE_NS` give the same bytes,
anything else (rotation, a sibling paired or unpaired or re-keyed, the bound passed, the clock going back)
a freshly signed bundle; a memoized verification accepts only the exact signature, content and identity that
verified, and never remembers a failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.crypto import signatures
from engine.crypto.keys import KeyPair, check_compressed, parse_compressed
from engine.crypto.signatures import SignatureMemo
from engine.errors import InvalidPublicKey, InvalidSignature, SottovoceError
from engine.protocol.bundle import Bundle, SignedPreKey
from engine.protocol.encryption import BUNDLE_REUSE_NS, EncryptionProtocol
from engine.protocol.state import BUNDLE_REFRESH_NS
from tests.helpers import SeededEntropy, make_device

T0 = 1_700_000_000 * 10**9
DAY = BUNDLE_REFRESH_NS


@pytest.fixture
def recoveries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every signature recovered (``signatures.recover`` is what a verification costs)."""
    calls: list[bytes] = []
    real = signatures.recover

    def counting(digest: bytes, signature: bytes) -> bytes:
        calls.append(bytes(signature))
        return real(digest, signature)

    monkeypatch.setattr(signatures, "recover", counting)
    yield calls


def _bundle_bytes(message_bytes: bytes) -> bytes:
    from proto import encryption_pb2 as pb

    message = pb.ProtocolMessage()
    message.ParseFromString(message_bytes)
    assert len(message.bundles) == 1
    return message.bundles[0].SerializeToString(deterministic=True)


# --- signing once -----------------------------------------------------------------------------------------------


def test_same_bundle_bytes_within_the_bound_then_a_new_one() -> None:
    alice, ae = make_device("alice")
    bob, _ = make_device("bob")
    first = alice.own_bundle(T0, ae)
    again = alice.own_bundle(T0 + BUNDLE_REUSE_NS - 1, ae)
    assert again is first and again.timestamp == T0
    wires = [alice.encrypt(bob.state.identity.public, b"m", T0 + i * 1000, ae).SerializeToString() for i in range(3)]
    assert {_bundle_bytes(w) for w in wires} == {first.serialize()}

    expired = alice.own_bundle(T0 + BUNDLE_REUSE_NS, ae)
    assert expired.timestamp == T0 + BUNDLE_REUSE_NS and expired.signature != first.signature
    assert dict(expired.signed_prekeys) == dict(first.signed_prekeys)
    assert expired.verify() == first.verify()


def test_a_clock_gone_back_signs_a_new_bundle() -> None:
    alice, ae = make_device("alice")
    first = alice.own_bundle(T0, ae)
    earlier = alice.own_bundle(T0 - 1, ae)
    assert earlier.timestamp == T0 - 1 and earlier.signature != first.signature


def test_reuse_zero_signs_every_bundle_as_status_go_does() -> None:
    alice, ae = make_device("alice")
    exact = EncryptionProtocol(alice.state, bundle_reuse_ns=0)
    stamps = [exact.own_bundle(T0 + i, ae).timestamp for i in range(3)]
    assert stamps == [T0, T0 + 1, T0 + 2]
    with pytest.raises(ValueError):
        EncryptionProtocol(alice.state, bundle_reuse_ns=-1)


def _long_reuse(name: str, identity: KeyPair | None = None,
                installation: str | None = None) -> tuple[EncryptionProtocol, SeededEntropy]:
    """A device that would reuse its bundle for two days: only a change of entries can make a new one."""
    device, entropy = make_device(name, identity, installation)
    return EncryptionProtocol(device.state, bundle_reuse_ns=2 * DAY), entropy


def test_rotation_signs_a_new_bundle_whatever_the_bound() -> None:
    alice, ae = _long_reuse("alice")
    first = alice.own_bundle(T0, ae)
    assert alice.own_bundle(T0 + DAY, ae) is first  # not yet older than 24 h
    rotated = alice.own_bundle(T0 + DAY + 1, ae)
    old, new = (b.signed_prekeys[alice.state.installation_id] for b in (first, rotated))
    assert (old.version, new.version) == (1, 2) and old.public != new.public
    assert rotated.timestamp == T0 + DAY + 1


def test_sibling_paired_rekeyed_and_unpaired_each_sign_a_new_bundle() -> None:
    alice1, a1e = _long_reuse("alice1")
    alice2, a2e = _long_reuse("alice2", alice1.state.identity, "alice-2")
    own = alice1.state.identity.public
    alice1.process_public_bundle(alice2.own_bundle(T0, a2e).serialize(), T0)
    alone = alice1.own_bundle(T0 + 1, a1e)
    assert list(alone.signed_prekeys) == [alice1.state.installation_id]
    assert alice1.own_bundle(T0 + 2, a1e) is alone  # a sibling seen but not paired changes nothing

    alice1.state.set_installation_enabled(own, "alice-2", True)
    paired = alice1.own_bundle(T0 + 3, a1e)
    assert sorted(paired.signed_prekeys) == sorted([alice1.state.installation_id, "alice-2"])
    assert paired.timestamp == T0 + 3
    assert alice1.own_bundle(T0 + 4, a1e) is paired

    # The sibling rotates its prekey (made at T0, a day before; alice1's own, made at T0 + 1, not yet): once
    # alice1 learns the new one, her bundle advertises it.
    alice1.process_public_bundle(alice2.own_bundle(T0 + DAY + 1, a2e).serialize(), T0 + DAY + 1)
    rekeyed = alice1.own_bundle(T0 + DAY + 1, a1e)
    assert rekeyed.signed_prekeys["alice-2"].version == 2 != paired.signed_prekeys["alice-2"].version
    own_entry = alice1.state.installation_id
    assert rekeyed.signed_prekeys[own_entry] == paired.signed_prekeys[own_entry]
    assert rekeyed.timestamp == T0 + DAY + 1

    alice1.state.set_installation_enabled(own, "alice-2", False)
    unpaired = alice1.own_bundle(T0 + DAY + 2, a1e)
    assert list(unpaired.signed_prekeys) == [own_entry] and unpaired.timestamp == T0 + DAY + 2


def test_sibling_protocol_version_change_signs_a_new_bundle() -> None:
    alice1, a1e = _long_reuse("alice1")
    alice2, a2e = _long_reuse("alice2", alice1.state.identity, "alice-2")
    own = alice1.state.identity.public
    alice1.process_public_bundle(alice2.own_bundle(T0, a2e).serialize(), T0)
    alice1.state.set_installation_enabled(own, "alice-2", True)
    first = alice1.own_bundle(T0 + 1, a1e)
    alice1.state.installations[(own, "alice-2")].protocol_version = 2
    second = alice1.own_bundle(T0 + 2, a1e)
    assert second is not first and second.signed_prekeys["alice-2"].protocol_version == 2


def test_a_replaced_own_bundle_is_attached_as_it_is() -> None:
    """What ``own_bundle`` returns is what goes out, even when it is not the one cached (tests replace it)."""
    alice, ae = make_device("alice")
    bob, _ = make_device("bob")
    cached = alice.own_bundle(T0, ae)
    other = Bundle.create(alice.state.identity, cached.signed_prekeys, T0 + 1)
    alice.own_bundle = lambda *_: other  # type: ignore[method-assign]
    wire = alice.encrypt(bob.state.identity.public, b"m", T0 + 2, ae).SerializeToString()
    assert _bundle_bytes(wire) == other.serialize() != cached.serialize()


# --- verifying once ---------------------------------------------------------------------------------------------


def test_a_bundle_riding_on_many_messages_is_recovered_once(recoveries: list[bytes]) -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    bob.process_public_bundle(alice.own_bundle(T0, ae).serialize(), T0)
    assert len(recoveries) == 1
    for i in range(5):
        wire = alice.encrypt(bob.state.identity.public, b"%d" % i, T0 + 1 + i, ae).SerializeToString()
        assert bob.decrypt(alice.state.identity.public, wire, T0 + 1 + i, be).plaintext == b"%d" % i
    assert len(recoveries) == 1
    later = T0 + BUNDLE_REUSE_NS
    wire = alice.encrypt(bob.state.identity.public, b"new", later, ae).SerializeToString()
    assert bob.decrypt(alice.state.identity.public, wire, later, be).plaintext == b"new"
    assert len(recoveries) == 2  # a newly signed bundle is verified in full


def _genuine() -> tuple[Bundle, KeyPair, KeyPair]:
    identity, spk, other = (KeyPair.from_private(bytes([b]) * 32) for b in (0x21, 0x22, 0x23))
    bundle = Bundle.create(identity, {"dev-1": SignedPreKey(spk.public, 3), "dev-2": SignedPreKey(other.public, 1)},
                           T0)
    return bundle, identity, other


def test_forged_bundles_are_rejected_after_the_genuine_one_was_memoized(recoveries: list[bytes]) -> None:
    genuine, _, other = _genuine()
    memo = SignatureMemo(8)
    expected = genuine.verify(memo)
    assert genuine.verify(memo) == expected and len(recoveries) == 1

    same_content_other_signature = dataclasses.replace(
        genuine, signature=Bundle.create(other, genuine.signed_prekeys, genuine.timestamp).signature)
    other_content_same_signature = dataclasses.replace(genuine, timestamp=genuine.timestamp + 1)
    other_entries = dict(genuine.signed_prekeys)
    other_entries["dev-1"] = SignedPreKey(other.public, 3)
    other_prekey_same_signature = dataclasses.replace(genuine, signed_prekeys=MappingProxyType(other_entries))
    other_identity_same_signature = dataclasses.replace(genuine, identity=other.public)
    for forged in (same_content_other_signature, other_content_same_signature, other_prekey_same_signature,
                   other_identity_same_signature):
        with pytest.raises(InvalidSignature):
            forged.verify(memo)
        with pytest.raises(InvalidSignature):  # and again: a failure is not remembered either
            forged.verify(memo)
    assert len(recoveries) == 1 + 4 * 2
    assert len(memo) == 1


def test_the_memo_does_not_skip_the_identity_check() -> None:
    genuine, _, _ = _genuine()
    memo = SignatureMemo(8)
    genuine.verify(memo)
    for identity in (b"\x04" + genuine.identity[1:], genuine.identity[:32], b"\x02" + b"\xff" * 32):
        with pytest.raises(InvalidPublicKey):
            dataclasses.replace(genuine, identity=identity).verify(memo)


def test_the_memo_is_bounded_and_least_recently_used(recoveries: list[bytes]) -> None:
    genuine, identity, _ = _genuine()
    bundles = [dataclasses.replace(genuine) if i == 0 else Bundle.create(identity, genuine.signed_prekeys, T0 + i)
               for i in range(4)]
    memo = SignatureMemo(3)
    for bundle in bundles[:3]:
        bundle.verify(memo)
    bundles[0].verify(memo)  # most recently used now: bundles[1] is the oldest
    assert len(recoveries) == 3
    bundles[3].verify(memo)
    assert len(memo) == 3 and len(recoveries) == 4
    bundles[0].verify(memo)
    assert len(recoveries) == 4
    bundles[1].verify(memo)  # evicted: recovered again
    assert len(recoveries) == 5
    with pytest.raises(ValueError):
        SignatureMemo(0)


_MUTATIONS = st.sampled_from(["signature", "timestamp", "version", "prekey", "installation", "identity", "none"])


@settings(max_examples=60, deadline=None)
@given(mutation=_MUTATIONS, byte=st.integers(0, 64), bit=st.integers(0, 7), delta=st.integers(1, 2**40))
def test_a_memo_never_changes_the_verdict(mutation: str, byte: int, bit: int, delta: int) -> None:
    """Whatever was memoized before, verifying a (possibly tampered) bundle gives what a full verification gives."""
    genuine, identity, other = _genuine()
    memo = SignatureMemo(4)
    genuine.verify(memo)
    Bundle.create(identity, genuine.signed_prekeys, T0 + delta).verify(memo)
    entries = dict(genuine.signed_prekeys)
    if mutation == "signature":
        signature = bytearray(genuine.signature)
        signature[byte] ^= 1 << bit
        candidate = dataclasses.replace(genuine, signature=bytes(signature))
    elif mutation == "timestamp":
        candidate = dataclasses.replace(genuine, timestamp=genuine.timestamp + delta)
    elif mutation == "version":
        entries["dev-2"] = SignedPreKey(entries["dev-2"].public, entries["dev-2"].version + delta)
        candidate = dataclasses.replace(genuine, signed_prekeys=MappingProxyType(entries))
    elif mutation == "prekey":
        entries["dev-2"] = SignedPreKey(identity.public, entries["dev-2"].version)
        candidate = dataclasses.replace(genuine, signed_prekeys=MappingProxyType(entries))
    elif mutation == "installation":
        entries[f"dev-{delta}"] = entries.pop("dev-1")
        candidate = dataclasses.replace(genuine, signed_prekeys=MappingProxyType(entries))
    elif mutation == "identity":
        candidate = dataclasses.replace(genuine, identity=other.public)
    else:
        candidate = dataclasses.replace(genuine)

    def verdict(memo: SignatureMemo | None) -> object:
        try:
            return candidate.verify(memo)
        except SottovoceError as exc:
            return type(exc)

    assert verdict(memo) == verdict(None)


def test_check_compressed_agrees_with_parse_compressed() -> None:
    good = KeyPair.from_private(b"\x31" * 32).public
    not_on_curve = b"\x02" + (5).to_bytes(32, "big")  # x = 5: x^3 + 7 = 132 is not a square mod p
    for data in (good, good[:32], b"\x04" + good[1:], not_on_curve, b"", b"\x03" + b"\xff" * 32):
        outcomes = []
        for check in (check_compressed, parse_compressed):
            try:
                check(data)
                outcomes.append("ok")
            except InvalidPublicKey:
                outcomes.append("invalid")
        assert outcomes[0] == outcomes[1], data.hex()
    check_compressed(good)


# --- the conformance harness and the reuse bound ----------------------------------------------------------------


def test_conformance_replays_status_go_whatever_the_reuse_bound(vectors_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.conformance import run_file

    defaults = dict(EncryptionProtocol.__init__.__kwdefaults__ or {})
    monkeypatch.setattr(EncryptionProtocol.__init__, "__kwdefaults__", {**defaults, "bundle_reuse_ns": 10 * DAY})
    result = run_file(vectors_dir / "status-go-vectors.json")
    assert [r.case_id for r in result.results if not r.ok] == []
