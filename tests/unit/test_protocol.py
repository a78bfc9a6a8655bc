"""Behaviour of the protocol core: status-go's worked examples, multi-device fan-out, rotation, and the
places where Sottovoce deliberately does what status-go should have done (spec Appendix B)."""

from __future__ import annotations

import copy

import pytest

from engine.crypto.ciphers import dr_decrypt, gcm_decrypt
from engine.crypto.kdf import kdf_ck, kdf_rk
from engine.crypto.keys import KeyPair, ecdh
from engine.errors import (
    DecryptionFailed,
    DeviceNotFound,
    InvalidBundle,
    MalformedMessage,
    MessageKeyDeleted,
    NotPairedDevice,
    SessionNotFound,
    SignatureMismatch,
    SottovoceError,
    TooManySkippedKeys,
)
from engine.protocol.bundle import Bundle, SignedPreKey
from engine.protocol.encryption import EncryptionProtocol
from engine.protocol.ratchet import RatchetHeader, RatchetState
from engine.protocol.state import BUNDLE_REFRESH_NS
from engine.protocol.x3dh import x3dh_active, x3dh_passive
from proto import encryption_pb2 as pb
from tests.helpers import SeededEntropy, make_device

T0 = 1_700_000_000 * 10**9
SECOND = 10**9


def key(byte: int) -> KeyPair:
    return KeyPair.from_private(bytes([byte]) * 32)


# --- spec Appendix A: status-go's worked examples -------------------------------------------------------------

IK_A, IK_B, SPK_B, EK_A, RAT_A, RAT_B = key(0x11), key(0x22), key(0x33), key(0x44), key(0x55), key(0x66)


def test_a1_keys() -> None:
    assert IK_A.public.hex() == "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
    assert SPK_B.public.hex() == "023c72addb4fdf09af94f0c94d7fe92a386a7e70cf8a1d85916386bb2535c7b1b1"


def test_a2_bundle_signature() -> None:
    prekeys = {
        "e2b7c5a4-3f1d-4c8e-9a6b-0d2f4e6a8c1b": SignedPreKey(SPK_B.public, 2),
        "0b4d6f8a-1c3e-4a5b-8d7f-9e1a2b3c4d5e": SignedPreKey(EK_A.public, 1),
    }
    bundle = Bundle.create(IK_B, prekeys, 1700000000123456789)
    assert bundle.signature.hex() == (
        "f10de444e3a0b010e2ce4e10c0d80ed7f3e2e96d3f8683bca80f648a93c1988106a36c1b31b78e2bd0a76ea563303d3f"
        "befad4bd028919722074421b8aba46ea01"
    )
    assert Bundle.signature_material(prekeys, 0).endswith(SPK_B.public + b"2")
    assert Bundle.parse(bundle.serialize()).verify()[1:33] == IK_B.public[1:]


def test_a3_x3dh_and_a4_ratchet() -> None:
    sk = x3dh_active(IK_A.private, EK_A.private, IK_B.public, SPK_B.public)
    assert sk.hex() == "a897ec1ee822fd8fe1aeb0a910396a23c47c3b2bb0a3aa70b9730ff0e05f7c3a"
    assert x3dh_passive(SPK_B.private, IK_B.private, IK_A.public, EK_A.public) == sk
    root, chain, _ = kdf_rk(sk, ecdh(RAT_A.private, SPK_B.public))
    assert root.hex() == "678b69ef2d7f41ef266169ead07480721bf40142a64ccdb34a01153862e92207"
    assert kdf_ck(chain)[1].hex() == "1e57a1643a476d31803e1e815543c9231039b4fc2586ba43d524e28d8540102e"

    alice = RatchetState.initiator(sk, RAT_A, SPK_B.public)
    header0, payload0 = alice.encrypt(b"hello sottovoce")
    header1, payload1 = alice.encrypt(b"second")
    assert payload0.hex() == (
        "f1310f6df9a6adbb3f3310647f08d2fc567456a6e44ab4149d39d9cd4100e830d8c4433813cf87d53b2e9c1483b5264039f0c6"
        "cf49faa5d995f5dffa01978f"
    )
    bob = RatchetState.responder(sk, SPK_B)
    entropy = _fixed_keys(RAT_B)
    assert bob.decrypt(header1, payload1, entropy, confirm=True) == b"second"
    assert bob.decrypt(header0, payload0, entropy, confirm=True) == b"hello sottovoce"
    reply_header, reply = bob.encrypt(b"reply")
    assert reply.hex() == (
        "91f8b26bd52bbfd988bfaf7f1b22bf1facb28d8d1684194fd54b11e3f9015e1ecbe21d66d187bb8311d83c703b8c5b4cb43d6a"
        "5c95"
    )
    assert alice.decrypt(reply_header, reply, SeededEntropy(), confirm=True) == b"reply"
    assert (alice.previous_sent, alice.received) == (2, 1)

    # Skip limit from A's state: N = 1002 is too far ahead; N = 1001 skips exactly 1000 keys, then fails the MAC.
    before = copy.deepcopy(alice)
    with pytest.raises(TooManySkippedKeys):
        alice.decrypt(RatchetHeader(RAT_B.public, 1002, 0), reply, SeededEntropy(), confirm=True)
    with pytest.raises(DecryptionFailed):
        alice.decrypt(RatchetHeader(RAT_B.public, 1001, 0), reply, SeededEntropy(), confirm=True)
    assert _snapshot(alice) == _snapshot(before)


def test_a6_dh_path() -> None:
    payload = bytes.fromhex("4332ed3aff90716b28bc14389f5e0f422afaad8d06ed47f528d87c0f2556332ffff9057fab9e")
    assert gcm_decrypt(ecdh(IK_B.private, EK_A.public), payload) == b"dh payload"


class _fixed_keys(SeededEntropy):  # noqa: N801 - reads as a function at the call site
    def __init__(self, *keys: KeyPair) -> None:
        super().__init__()
        self.keys = list(keys)

    def new_key(self, purpose: object) -> KeyPair:  # type: ignore[override]
        return self.keys.pop(0)


def _snapshot(state: RatchetState) -> tuple[object, ...]:
    return (state.root_key, state.sending_key, state.remote_key, state.sending_chain, state.receiving_chain,
            state.sent, state.received, state.previous_sent, state.keys_count, dict(state.skipped))


# --- conversations through ProtocolMessages -------------------------------------------------------------------


def introduce(a: EncryptionProtocol, a_entropy: SeededEntropy, b: EncryptionProtocol, now: int = T0) -> None:
    b.process_public_bundle(a.own_bundle(now, a_entropy).serialize(), now)


def send(a: EncryptionProtocol, a_entropy: SeededEntropy, recipient: bytes, text: bytes,
         now: int = T0) -> bytes:
    return a.encrypt(recipient, text, now, a_entropy).SerializeToString(deterministic=True)


def test_first_message_without_bundle_uses_dh_path_then_heals_to_ratchet() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    first = bob.decrypt(alice.state.identity.public, send(alice, ae, bob.state.identity.public, b"hi"), T0, be)
    assert (first.plaintext, first.forward_secret) == (b"hi", False)
    reply = alice.decrypt(bob.state.identity.public, send(bob, be, alice.state.identity.public, b"yo"), T0, ae)
    assert (reply.plaintext, reply.forward_secret) == (b"yo", True)
    again = bob.decrypt(alice.state.identity.public, send(alice, ae, bob.state.identity.public, b"ok"), T0, be)
    assert (again.plaintext, again.forward_secret) == (b"ok", True)


def test_replay_is_rejected_when_confirmed_and_state_unchanged() -> None:
    """Appendix B.5: status-go's messenger never confirms, so replays decrypt; Sottovoce's engine confirms."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    wire = send(alice, ae, bob.state.identity.public, b"once")
    assert bob.decrypt(alice.state.identity.public, wire, T0, be).plaintext == b"once"
    before = copy.deepcopy(bob.state.sessions)
    with pytest.raises(MessageKeyDeleted):
        bob.decrypt(alice.state.identity.public, wire, T0, be)
    assert _sessions(bob) == _sessions_of(before)


def test_out_of_order_delivery_with_confirm_deletes_each_key_after_use() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    wires = [send(alice, ae, bob.state.identity.public, bytes([i])) for i in range(5)]
    for index in (3, 0, 4, 1, 2):
        assert bob.decrypt(alice.state.identity.public, wires[index], T0, be).plaintext == bytes([index])
    (session,) = bob.state.sessions.values()
    assert session.ratchet.skipped == {}  # forward secrecy: no key of a read message is kept


def test_short_ratchet_payload_is_rejected_without_crash() -> None:
    """Appendix B.4: status-go panics on DR payloads shorter than 32 bytes."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    message = alice.encrypt(bob.state.identity.public, b"x", T0, ae)
    for length in (0, 1, 31, 32, 47):
        entry = message.encrypted_message[bob.state.installation_id]
        entry.payload = entry.payload[:length]
        with pytest.raises(DecryptionFailed):
            bob.decrypt(alice.state.identity.public, message.SerializeToString(), T0, be)
    assert bob.state.sessions == {}


def test_bundle_with_bad_signature_is_not_stored() -> None:
    """Appendix B.1: status-go stores bundle rows before verifying the signature."""
    alice, ae = make_device("alice")
    bob, _be = make_device("bob")
    bundle = alice.own_bundle(T0, ae).to_proto()
    bundle.signed_pre_keys[alice.state.installation_id].version = 9
    with pytest.raises(SignatureMismatch):
        bob.process_public_bundle(bundle.SerializeToString(), T0)
    assert bob.state.peer_prekeys == {} and bob.state.installations == {}


def test_bundle_of_another_identity_is_rejected() -> None:
    """Appendix B.9: status-go accepts any validly signed bundle inside any sender's message."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    mallory, me = make_device("mallory")
    message = mallory.encrypt(bob.state.identity.public, b"hi", T0, me)
    message.bundles[0].CopyFrom(alice.own_bundle(T0, ae).to_proto())
    with pytest.raises(InvalidBundle):
        bob.decrypt(mallory.state.identity.public, message.SerializeToString(), T0, be)
    assert bob.state.installations == {}


def test_bundle_from_the_far_future_is_rejected() -> None:
    alice, ae = make_device("alice")
    bob, _ = make_device("bob")
    bundle = alice.own_bundle(T0 + 2 * 24 * 3600 * SECOND, ae).serialize()
    with pytest.raises(InvalidBundle):
        bob.process_public_bundle(bundle, T0)


def test_malformed_protocol_message_is_a_typed_error() -> None:
    bob, be = make_device("bob")
    alice, _ = make_device("alice")
    for junk in (b"\xff", b"\x12\x05ab", bytes(range(40))):
        with pytest.raises(SottovoceError):
            bob.decrypt(alice.state.identity.public, junk, T0, be)
    with pytest.raises(MalformedMessage):
        bob.decrypt(alice.state.identity.public, b"\x12\x02\xc3\x28", T0, be)  # invalid UTF-8 installation id


def test_message_for_someone_else_is_device_not_found() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    carol, ce = make_device("carol")
    introduce(bob, be, alice)
    with pytest.raises(DeviceNotFound):
        carol.decrypt(alice.state.identity.public, send(alice, ae, bob.state.identity.public, b"x"), T0, ce)


def test_reinitiated_session_resets_instead_of_failing_forever() -> None:
    """Appendix B.6: status-go keeps the old ratchet when a new X3DH header arrives for the same session."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    assert bob.decrypt(alice.state.identity.public, send(alice, ae, bob.state.identity.public, b"1"),
                       T0, be).plaintext == b"1"
    # Alice loses her state but keeps identity and installation id, then starts again from Bob's bundle.
    alice_again = EncryptionProtocol(type(alice.state)(alice.state.identity, alice.state.installation_id))
    introduce(bob, be, alice_again)
    wire = send(alice_again, SeededEntropy("alice-2"), bob.state.identity.public, b"2")
    assert bob.decrypt(alice.state.identity.public, wire, T0, be).plaintext == b"2"


def test_failed_message_does_not_confirm_session() -> None:
    """Appendix B.8: a DR header naming a session marks it confirmed in status-go even if decryption fails."""
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    bob.decrypt(alice.state.identity.public, send(alice, ae, bob.state.identity.public, b"a"), T0, be)
    reply = bob.encrypt(alice.state.identity.public, b"b", T0, be)
    reply.encrypted_message[alice.state.installation_id].payload = b"\x00" * 80
    with pytest.raises(DecryptionFailed):
        alice.decrypt(bob.state.identity.public, reply.SerializeToString(), T0, ae)
    (session,) = alice.state.sessions.values()
    assert session.pending_ephemeral is not None  # still sending the X3DH header


def _sessions(device: EncryptionProtocol) -> object:
    return _sessions_of(device.state.sessions)


def _sessions_of(sessions: dict[object, object]) -> object:
    return {k: (_snapshot(s.ratchet), s.pending_ephemeral) for k, s in sessions.items()}  # type: ignore[attr-defined]


# --- rotation and multi-device ---------------------------------------------------------------------------------


def test_prekey_rotates_after_24h_and_old_private_key_still_serves_late_x3dh() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    first = bob.own_bundle(T0, be)
    introduce(bob, be, alice)
    late = send(alice, ae, bob.state.identity.public, b"late")
    later = T0 + BUNDLE_REFRESH_NS + SECOND
    rotated = bob.own_bundle(later, be)
    old, new = (b.signed_prekeys[bob.state.installation_id] for b in (first, rotated))
    assert (old.version, new.version) == (1, 2) and old.public != new.public
    assert bob.decrypt(alice.state.identity.public, late, later, be).plaintext == b"late"


def test_newer_bundle_rekeys_the_sender() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    send(alice, ae, bob.state.identity.public, b"1")
    later = T0 + BUNDLE_REFRESH_NS + SECOND
    introduce(bob, be, alice, later)
    message = alice.encrypt(bob.state.identity.public, b"2", later, ae)
    entry = message.encrypted_message[bob.state.installation_id]
    assert entry.HasField("X3DH_header")
    assert entry.X3DH_header.id == bob.state.current_prekey().key.public  # type: ignore[union-attr]
    assert bob.decrypt(alice.state.identity.public, message.SerializeToString(), later, be).plaintext == b"2"


def test_fan_out_to_peer_installations_and_own_paired_devices() -> None:
    alice1, a1e = make_device("alice1")
    alice2, a2e = make_device("alice2", alice1.state.identity, "alice-2")
    bob1, b1e = make_device("bob1")
    bob2, b2e = make_device("bob2", bob1.state.identity, "bob-2")
    for device, entropy in ((bob1, b1e), (bob2, b2e)):
        introduce(device, entropy, alice1)
    introduce(alice2, a2e, alice1, T0 + 1)
    assert not alice1.state.installations[(alice1.state.identity.public, "alice-2")].enabled

    to_bob = alice1.encrypt(bob1.state.identity.public, b"hello", T0 + 2, a1e)
    assert sorted(to_bob.encrypted_message) == sorted([bob1.state.installation_id, "bob-2"])
    for device, entropy in ((bob1, b1e), (bob2, b2e)):
        wire = to_bob.SerializeToString()
        assert device.decrypt(alice1.state.identity.public, wire, T0 + 3, entropy).plaintext == b"hello"

    # A disabled sibling gets nothing: the copy to our own identity falls back to no entry for it.
    own_copy = alice1.encrypt(alice1.state.identity.public, b"copy", T0 + 4, a1e)
    assert "alice-2" not in own_copy.encrypted_message
    alice1.state.set_installation_enabled(alice1.state.identity.public, "alice-2", True)
    own_copy = alice1.encrypt(alice1.state.identity.public, b"copy", T0 + 5, a1e)
    assert list(own_copy.encrypted_message) == ["alice-2"]
    result = alice2.decrypt(alice1.state.identity.public, own_copy.SerializeToString(), T0 + 6, a2e)
    assert result.plaintext == b"copy"
    # The paired sibling is advertised in the own bundle.
    assert "alice-2" in alice1.own_bundle(T0 + 7, a1e).signed_prekeys


def test_sibling_message_not_for_this_device_is_not_paired() -> None:
    alice1, a1e = make_device("alice1")
    alice3, a3e = make_device("alice3", alice1.state.identity, "alice-3")
    bob, be = make_device("bob")
    introduce(bob, be, alice1)
    wire = send(alice1, a1e, bob.state.identity.public, b"to bob")
    with pytest.raises(NotPairedDevice):
        alice3.decrypt(alice1.state.identity.public, wire, T0, a3e)


def test_at_most_three_installations_newest_first() -> None:
    alice, ae = make_device("alice")
    bob, _be = make_device("bob0")
    for index in range(5):
        device, entropy = make_device(f"bob{index}", bob.state.identity, f"bob-{index}")
        introduce(device, entropy, alice, T0 + index)
    message = alice.encrypt(bob.state.identity.public, b"x", T0 + 10, ae)
    assert sorted(message.encrypted_message) == ["bob-2", "bob-3", "bob-4"]


def test_unknown_session_is_session_not_found() -> None:
    alice, ae = make_device("alice")
    bob, be = make_device("bob")
    introduce(bob, be, alice)
    message = alice.encrypt(bob.state.identity.public, b"x", T0, ae)
    entry = message.encrypted_message[bob.state.installation_id]
    entry.ClearField("X3DH_header")
    with pytest.raises(SessionNotFound):
        bob.decrypt(alice.state.identity.public, message.SerializeToString(), T0, be)


def test_dr_payload_decrypts_only_with_its_associated_data() -> None:
    sk = bytes(32)
    alice = RatchetState.initiator(sk + b"", RAT_A, SPK_B.public)
    header, payload = alice.encrypt(b"m")
    message_key = kdf_ck(kdf_rk(sk, ecdh(RAT_A.private, SPK_B.public))[1])[1]
    assert dr_decrypt(message_key, payload, header.associated_data()) == b"m"
    with pytest.raises(DecryptionFailed):
        dr_decrypt(message_key, payload, RatchetHeader(header.key, 1, 0).associated_data())
    assert pb.DRHeader(key=header.key, n=0).SerializeToString()  # n = 0 is omitted on the wire, still parses
