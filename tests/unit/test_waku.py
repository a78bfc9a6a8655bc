"""Waku payload v1 envelopes and the WakuMessage (spec §10, Appendix A.7)."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.conformance.runner import run_cases
from engine.conformance.waku_cases import CHECKERS
from engine.crypto.hashing import keccak256, sha256
from engine.crypto.keys import CURVE_ORDER, KeyPair, uncompress
from engine.crypto.signatures import sign
from engine.errors import (
    BadRecoveryId,
    DecryptionFailed,
    EciesInvalidMessage,
    EciesInvalidPublicKey,
    InvalidPrivateKey,
    MalformedMessage,
    SignatureRecoveryFailed,
    SottovoceError,
)
from engine.protocol import waku
from engine.protocol.waku import (
    AsymmetricKey,
    BadLength,
    EnvelopeKey,
    SymmetricKey,
    WakuMessage,
)

IK_A = KeyPair.from_private(bytes([0x11]) * 32)
IK_B = KeyPair.from_private(bytes([0x22]) * 32)
IK_B_UNCOMPRESSED = uncompress(IK_B.public)

# spec Appendix A.5: symkey(contact-code name of IK_B)
CONTACT_CODE_KEY_B = bytes.fromhex("c6915db19b55db39d1822fb05336f34e1c3b290cb0cf3d62268bf08d4a75565e")

# spec Appendix A.7
A7_SYMMETRIC = bytes.fromhex(
    "f83b2d1b4d41a439c6e6aef26a4b9081337aa56ae71a8f4268615616791d0106f99459e97fb024cfc3c38989ea8e52250c81e588"
    "0465914a27f3fe1f0e6e4b9158f6cd8ced93bdd15c293ecd4e3338c2e9a4be92daa3a9a3420ecedc2226790c4fdc50df7544cb0d"
    "e0e4a425a161cf03e13d84feeac7a96638e493e3db41527652bb38247034288237a2c7b93c3d349cd9d4818fe278201b5dfedf4a"
    "e8ce363249f607999e9d853c6143f75204b7faea5831d2705df7c3f47029bc9ac326284ec7d75b918378cde65de2cb62fd9ad90f"
    "a4b7a0efb3ebea4f5d911e99078772a5b0e424ea133d46e17c735be04b9ca908a07dc9a102bcfeeb675349bab61f34eba042b558"
    "7fe6e814570edb1f8e7a7ed79500c74b85f8183b466acb78"
)
A7_ASYMMETRIC = bytes.fromhex(
    "04d76e85ebc97c8c653578d75c96035f673d20fab1500436a24a944821d51c9f360fc910a7e9c64b9ab8976299f14a0fb6246a8d"
    "ad5dfef55b8d67c62b2e62399f0021ad7d893968542b631d00a5770bcb0acce883925781cb2997b071dad85afa96f332122426e0"
    "70e6324c3dfd7c097e4a1e7751e6e327a771dac27349f5e980fb703e6caf63c1162b56cdf9259c5fdddc82830a2f5a2b1dace997"
    "cd33694bfe21e914d091141136d99f3536048505d9f82098aee1716651aab5f5e217940fe7aa678b1dc9eac49ea279c735c35ce8"
    "467bcca3ad829666f49840afebfbc684b35b62e6f1d65affa47cb4edf6383c0a7a8ccd473e6d328d8904ce1180e4109d36dabaf8"
    "2831e0f841ce2b29e4385b8cefbcba6d4f423c8a66ec1999d659be352eb0cd687d992417b31d0f1a8bf5e86745dbdf038ce5174a"
    "731dfa95b436f367d9544005397292fbeba9a9a73d576248f41dfccf2e1fa8a144d0aea79c75185b864c2a8f2efff7663b1d6400"
    "63b77e25a4"
)
SYM = SymmetricKey(CONTACT_CODE_KEY_B)
ASYM = AsymmetricKey(IK_A.private)


class Draws:
    """A deterministic stand-in for the caller's randomness source."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def take(self, n: int) -> bytes:
        while True:
            out = self._rng.randbytes(n)
            if any(out) or n <= 3:
                return out

    def padding(self, data_len: int, *, signed: bool = True) -> bytes:
        return self.take(waku.padding_length(data_len, signed=signed))

    def ephemeral(self) -> KeyPair:
        return waku.ecies_ephemeral_from_read(self.take(32))


def seal_sym(data: bytes, draws: Draws, signer: KeyPair = IK_B) -> bytes:
    return waku.seal_symmetric(
        data, signer.private, CONTACT_CODE_KEY_B, padding=draws.padding(len(data)), nonce=draws.take(12)
    )


def seal_asym(data: bytes, draws: Draws, signer: KeyPair = IK_B) -> bytes:
    return waku.seal_asymmetric(
        data,
        signer.private,
        IK_A.public,
        padding=draws.padding(len(data)),
        ephemeral=draws.ephemeral(),
        iv=draws.take(16),
    )


def sym_with_plaintext(plaintext: bytes, seed: int = 7) -> bytes:
    return waku.encrypt_symmetric(plaintext, CONTACT_CODE_KEY_B, Draws(seed).take(12))


def resign(body: bytes, signer: KeyPair = IK_B) -> bytes:
    """Sign an arbitrary (possibly inconsistent) plaintext body the way a sender would."""
    return body + sign(keccak256(body), signer.private)


# --- spec Appendix A.7 ------------------------------------------------------------------------------------


def test_a7_symmetric_decodes() -> None:
    assert len(A7_SYMMETRIC) == 256 + 16 + 12
    plaintext = waku.decrypt_symmetric(A7_SYMMETRIC, CONTACT_CODE_KEY_B)
    assert len(plaintext) == 256
    assert plaintext[0] == 0x05
    decoded = waku.decode_plaintext(plaintext)
    assert decoded.data == b"status"
    assert len(decoded.padding) == 183
    assert decoded.signed
    assert decoded.signer == IK_B_UNCOMPRESSED
    received = waku.receive(A7_SYMMETRIC, SYM)
    assert (received.data, received.signer, received.signer_uncompressed) == (
        b"status",
        IK_B.public,
        IK_B_UNCOMPRESSED,
    )


def test_a7_asymmetric_decodes() -> None:
    assert len(A7_ASYMMETRIC) == 65 + 16 + 256 + 32
    decoded = waku.open_payload(A7_ASYMMETRIC, ASYM)
    assert decoded.data == b"status"
    assert len(decoded.padding) == 183
    assert decoded.signer == IK_B_UNCOMPRESSED
    assert waku.receive(A7_ASYMMETRIC, ASYM).signer == IK_B.public


def test_a7_payloads_need_the_right_key() -> None:
    with pytest.raises(DecryptionFailed) as sym_error:
        waku.receive(A7_SYMMETRIC, SymmetricKey(bytes(range(32))))
    assert sym_error.value.code == "auth_failed"
    with pytest.raises(EciesInvalidMessage):
        waku.receive(A7_ASYMMETRIC, AsymmetricKey(IK_B.private))


# --- plaintext layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_len", "field"),
    [(0, 1), (255, 1), (256, 2), (65535, 2), (65536, 3), ((1 << 24) - 1, 3)],
)
def test_size_field_length(data_len: int, field: int) -> None:
    assert waku.size_field_length(data_len) == field


def test_data_too_large_for_a_size_field() -> None:
    with pytest.raises(waku.InvalidEnvelopeInput):
        waku.size_field_length(1 << 24)


@pytest.mark.parametrize(
    ("data_len", "signed", "expected"),
    [(6, True, 183), (0, True, 189), (189, True, 256), (190, True, 255), (6, False, 248), (254, False, 256)],
)
def test_padding_length(data_len: int, signed: bool, expected: int) -> None:
    assert waku.padding_length(data_len, signed=signed) == expected


def test_encode_layout_and_signature() -> None:
    padding = Draws(1).padding(6)
    plaintext = waku.encode_plaintext(b"status", padding, IK_B.private)
    assert len(plaintext) == 256
    assert plaintext[:8] == b"\x05\x06status"
    assert plaintext[8:-65] == padding
    assert plaintext[-65:] == sign(keccak256(plaintext[:-65]), IK_B.private)
    assert plaintext[-1] in (0, 1)


def test_encode_is_deterministic_given_the_draws() -> None:
    assert seal_sym(b"hello", Draws(3)) == seal_sym(b"hello", Draws(3))
    assert seal_asym(b"hello", Draws(3)) == seal_asym(b"hello", Draws(3))
    assert seal_sym(b"hello", Draws(3)) != seal_sym(b"hello", Draws(4))


def test_unsigned_payload_decodes_but_is_not_received() -> None:
    padding = Draws(2).padding(6, signed=False)
    plaintext = waku.encode_plaintext(b"status", padding, None)
    assert plaintext[0] == 0x01 and len(plaintext) == 256
    payload = waku.encrypt_symmetric(plaintext, CONTACT_CODE_KEY_B, Draws(2).take(12))
    decoded = waku.open_payload(payload, SYM)
    assert (decoded.data, decoded.signed, decoded.signer, decoded.signature) == (b"status", False, None, None)
    with pytest.raises(waku.UnsignedEnvelope) as error:
        waku.receive(payload, SYM)
    assert error.value.code == "unsigned"


@pytest.mark.parametrize(
    ("flags", "body"),
    [
        (0x05, b"\x03abc"),  # minimal
        (0x06, b"\x03\x00abc"),  # non-minimal 2-byte size field
        (0x07, b"\x03\x00\x00abc"),  # 3-byte size field
    ],
)
def test_receiver_accepts_any_size_field_length(flags: int, body: bytes) -> None:
    decoded = waku.decode_plaintext(resign(bytes([flags]) + body + b"pad"))
    assert (decoded.data, decoded.padding, decoded.signer) == (b"abc", b"pad", IK_B_UNCOMPRESSED)


def test_receiver_accepts_empty_size_field_and_ignores_padding() -> None:
    decoded = waku.decode_plaintext(resign(b"\x04\x00"))
    assert (decoded.data, decoded.padding) == (b"", b"\x00")
    decoded = waku.decode_plaintext(resign(b"\xfd\x00" + bytes(500)))  # unknown high flag bits ignored
    assert (decoded.data, len(decoded.padding)) == (b"", 500)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        resign(b"\x05"),  # only one byte before the signature
        b"\x05" + bytes(65),
        resign(b"\x05\x04abc"),  # size beyond the end
        resign(b"\x06\x01"),  # size field cut short
        resign(b"\x07\x00\x00"),  # 3-byte size field, nothing else: 1 + 3 > 3 bytes
        b"\x01\x05ab",  # unsigned, size beyond the end
        b"\x03\x00",  # unsigned, 3-byte size field cut short
    ],
)
def test_inconsistent_lengths_are_bad_length(plaintext: bytes) -> None:
    with pytest.raises(BadLength) as error:
        waku.decode_plaintext(plaintext)
    assert error.value.code == "bad_length"


def test_bad_recovery_id() -> None:
    signed = waku.encode_plaintext(b"status", Draws(5).padding(6), IK_B.private)
    for v in (2, 3):  # accepted as recovery ids (go-ethereum allows < 4), may fail to recover
        with contextlib.suppress(SignatureRecoveryFailed):
            waku.decode_plaintext(signed[:-1] + bytes([v]))
    for v in (4, 5, 27, 28, 255):
        with pytest.raises(BadRecoveryId) as error:
            waku.decode_plaintext(signed[:-1] + bytes([v]))
        assert error.value.code == "bad_recovery_id"


def test_unrecoverable_signature() -> None:
    body = waku.encode_plaintext(b"status", Draws(6).padding(6), IK_B.private)[:-65]
    for signature in (bytes(65), b"\xff" * 64 + b"\x00"):
        with pytest.raises(SignatureRecoveryFailed) as error:
            waku.decode_plaintext(body + signature)
        assert error.value.code == "recovery_failed"


def test_altered_data_recovers_another_signer() -> None:
    plaintext = bytearray(waku.encode_plaintext(b"status", Draws(8).padding(6), IK_B.private))
    plaintext[2] ^= 0x01
    decoded = waku.decode_plaintext(bytes(plaintext))
    assert decoded.data == b"rtatus"
    assert decoded.signer is not None and decoded.signer != IK_B_UNCOMPRESSED


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: waku.encode_plaintext(b"x", b"\x01" * 10, IK_B.private), waku.InvalidEnvelopeInput),
        (lambda: waku.encode_plaintext(b"x", bytes(188), IK_B.private), waku.InvalidEnvelopeInput),
        (lambda: waku.encode_plaintext(b"x", b"\x01" * 188, bytes(32)), InvalidPrivateKey),
        (lambda: waku.encrypt_symmetric(b"x", CONTACT_CODE_KEY_B, bytes(12)), waku.InvalidEnvelopeInput),
        (lambda: waku.encrypt_symmetric(b"x", CONTACT_CODE_KEY_B, b"\x01" * 11), waku.InvalidEnvelopeInput),
        (lambda: waku.encrypt_symmetric(b"x", bytes(32), b"\x01" * 12), waku.InvalidEnvelopeKey),
        (lambda: waku.encrypt_symmetric(b"x", b"\x01" * 16, b"\x01" * 12), waku.InvalidEnvelopeKey),
        (lambda: waku.decrypt_symmetric(A7_SYMMETRIC, b"\x01" * 31), waku.InvalidEnvelopeKey),
        (lambda: waku.encrypt_asymmetric(b"x", IK_A.public, IK_B, b"\x01" * 15), waku.InvalidEnvelopeInput),
        (lambda: waku.encrypt_asymmetric(b"x", b"\x04" + bytes(64), IK_B, b"\x01" * 16), SottovoceError),
        (lambda: waku.decrypt_asymmetric(A7_ASYMMETRIC, bytes(32)), InvalidPrivateKey),
        (lambda: waku.gcm_nonce_from_reads(bytes(12), bytes(11)), waku.InvalidEnvelopeInput),
        (lambda: waku.ecies_ephemeral_from_read(bytes(31)), waku.InvalidEnvelopeInput),
    ],
)
def test_bad_sender_input_is_a_typed_error(call: Callable[[], object], error: type[SottovoceError]) -> None:
    with pytest.raises(error):
        call()


# --- randomness helpers (Go's draw conventions) ---------------------------------------------------------


def test_gcm_nonce_is_xor_of_two_reads() -> None:
    x, y = bytes(range(12)), bytes(range(100, 112))
    assert waku.gcm_nonce_from_reads(x, y) == bytes(a ^ b for a, b in zip(x, y, strict=True))


def test_ecies_ephemeral_flips_byte_one() -> None:
    read = bytes(range(1, 33))
    key = waku.ecies_ephemeral_from_read(read)
    assert key.private == read[:1] + bytes([read[1] ^ 0x42]) + read[2:]
    for bad_private in (bytes(32), CURVE_ORDER.to_bytes(32, "big")):
        bad_read = bad_private[:1] + bytes([bad_private[1] ^ 0x42]) + bad_private[2:]
        with pytest.raises(InvalidPrivateKey):
            waku.ecies_ephemeral_from_read(bad_read)


# --- open / receive ---------------------------------------------------------------------------------------


def test_truncated_symmetric() -> None:
    for n in range(12):
        with pytest.raises(waku.Truncated) as error:
            waku.open_payload(A7_SYMMETRIC[:n], SYM)
        assert error.value.code == "truncated"
    for n in range(12, 28):
        with pytest.raises(DecryptionFailed) as auth:
            waku.open_payload(A7_SYMMETRIC[:n], SYM)
        assert auth.value.code == "auth_failed"


def test_compressed_ecies_key_is_rejected() -> None:
    forged = IK_B.public + A7_ASYMMETRIC[33:]
    with pytest.raises(EciesInvalidPublicKey):
        waku.open_payload(forged, ASYM)


def test_versions() -> None:
    raw = waku.open_payload(b"plain bytes", SYM, version=0)
    assert (raw.data, raw.padding, raw.signer) == (b"plain bytes", b"", None)
    with pytest.raises(waku.UnsignedEnvelope):
        waku.receive(b"plain bytes", SYM, version=0)
    with pytest.raises(waku.UnsupportedVersion):
        waku.open_payload(A7_SYMMETRIC, SYM, version=2)


def test_oversized_envelope_is_rejected_before_decryption() -> None:
    with pytest.raises(waku.EnvelopeTooLarge) as error:
        waku.receive(bytes(waku.MAX_MESSAGE_SIZE + 1), SYM)
    assert error.value.code == "too_large"
    with pytest.raises(waku.EnvelopeTooLarge):
        waku.receive(A7_SYMMETRIC, SYM, max_size=len(A7_SYMMETRIC) - 1)
    assert waku.receive(A7_SYMMETRIC, SYM, max_size=len(A7_SYMMETRIC)).data == b"status"


def test_badly_signed_envelope_is_rejected_on_receive() -> None:
    plaintext = waku.encode_plaintext(b"status", Draws(9).padding(6), IK_B.private)
    payload = sym_with_plaintext(plaintext[:-1] + b"\x1b")
    with pytest.raises(BadRecoveryId):
        waku.receive(payload, SYM)
    inconsistent = sym_with_plaintext(resign(b"\x05\xffstatus"))
    with pytest.raises(BadLength):
        waku.receive(inconsistent, SYM)


@pytest.mark.parametrize(("payload", "key"), [(A7_SYMMETRIC, SYM), (A7_ASYMMETRIC, ASYM)], ids=["sym", "asym"])
def test_every_single_bit_flip_is_rejected(payload: bytes, key: EnvelopeKey) -> None:
    for i in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(SottovoceError):
            waku.receive(bytes(flipped), key)


@pytest.mark.parametrize(("payload", "key"), [(A7_SYMMETRIC, SYM), (A7_ASYMMETRIC, ASYM)], ids=["sym", "asym"])
def test_every_truncation_and_extension_is_rejected(payload: bytes, key: EnvelopeKey) -> None:
    for n in range(len(payload)):
        with pytest.raises(SottovoceError):
            waku.receive(payload[:n], key)
        with pytest.raises(SottovoceError):
            waku.receive(payload[n + 1 :], key)
    for extra in (b"\x00", b"\x01" * 16):
        with pytest.raises(SottovoceError):
            waku.receive(payload + extra, key)


# --- property tests ---------------------------------------------------------------------------------------

_SIZES = st.integers(min_value=0, max_value=70_000)
_SEEDS = st.integers(min_value=0, max_value=2**32)
_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@_PROPERTY
@given(size=_SIZES, seed=_SEEDS)
@example(size=0, seed=0)
@example(size=189, seed=1)
@example(size=255, seed=2)
@example(size=256, seed=3)
@example(size=65_535, seed=4)
@example(size=65_536, seed=5)
@example(size=70_000, seed=6)
def test_symmetric_round_trip(size: int, seed: int) -> None:
    data = _data(size, seed)
    payload = seal_sym(data, Draws(seed))
    assert (len(payload) - 28) % 256 == 0
    received = waku.receive(payload, SYM)
    assert (received.data, received.signer) == (data, IK_B.public)


@_PROPERTY
@given(size=_SIZES, seed=_SEEDS)
@example(size=0, seed=0)
@example(size=255, seed=2)
@example(size=256, seed=3)
@example(size=65_535, seed=4)
@example(size=65_536, seed=5)
@example(size=70_000, seed=6)
def test_asymmetric_round_trip(size: int, seed: int) -> None:
    data = _data(size, seed)
    payload = seal_asym(data, Draws(seed), signer=IK_A)
    assert (len(payload) - 113) % 256 == 0
    received = waku.receive(payload, ASYM)
    assert (received.data, received.signer) == (data, IK_A.public)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decoding_arbitrary_plaintext_only_raises_typed_errors(plaintext: bytes) -> None:
    try:
        decoded = waku.decode_plaintext(plaintext)
    except SottovoceError:
        return
    assert len(decoded.data) + len(decoded.padding) < max(len(plaintext), 1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([SYM, ASYM]), st.integers(min_value=0, max_value=3))
def test_opening_arbitrary_payloads_only_raises_typed_errors(payload: bytes, key: EnvelopeKey, version: int) -> None:
    with contextlib.suppress(SottovoceError):
        waku.receive(payload, key, version=version)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parsing_arbitrary_waku_messages_only_raises_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        WakuMessage.from_bytes(data)


# --- WakuMessage ------------------------------------------------------------------------------------------

CONTENT_TOPIC = "/waku/1/0xa40a6a04/rfc26"  # spec A.5: contact-code topic of IK_B


def test_status_go_message_shape() -> None:
    message = waku.build_message(b"\x01\x02\x03", CONTENT_TOPIC, 1_700_000_000_123_456_790)
    assert (message.version, message.meta, message.ephemeral) == (1, b"", False)
    wire = message.to_bytes()
    assert wire.startswith(b"\x0a\x03\x01\x02\x03\x12\x18" + CONTENT_TOPIC.encode() + b"\x18\x01\x50")
    assert wire.endswith(b"\x5a\x00\xf8\x01\x00")  # meta empty but present, ephemeral false but present
    assert WakuMessage.from_bytes(wire) == message
    assert message.sent_s == 1_700_000_000


def test_absent_fields_parse_as_none() -> None:
    bare = WakuMessage(b"p", CONTENT_TOPIC, timestamp_ns=None, version=None, meta=None, ephemeral=None)
    wire = bare.to_bytes()
    assert wire == b"\x0a\x01p\x12\x18" + CONTENT_TOPIC.encode()
    assert WakuMessage.from_bytes(wire) == bare
    assert bare.sent_s == 0
    with pytest.raises(waku.UnsignedEnvelope):
        bare.open(SYM)  # absent version = 0 = plaintext, unsigned


def test_message_open_uses_version() -> None:
    message = waku.build_message(A7_SYMMETRIC, CONTENT_TOPIC, 1)
    assert message.open(SYM).data == b"status"


def test_hash_layout() -> None:
    message = WakuMessage(b"pay", CONTENT_TOPIC, timestamp_ns=258, meta=b"m", ephemeral=False)
    timestamp = bytes(6) + b"\x01\x02"
    expected = sha256(waku.DEFAULT_PUBSUB_TOPIC.encode() + b"pay" + CONTENT_TOPIC.encode() + b"m" + timestamp)
    assert message.hash() == expected
    assert waku.message_hash(message) == expected
    assert message.hash("/waku/2/rs/16/64") != expected


def test_hash_ignores_ephemeral_but_covers_meta() -> None:
    base = waku.build_message(b"pay", CONTENT_TOPIC, 5)
    assert WakuMessage(b"pay", CONTENT_TOPIC, 5, ephemeral=True).hash() == base.hash()
    assert WakuMessage(b"pay", CONTENT_TOPIC, 5, meta=b"x").hash() != base.hash()
    assert WakuMessage(b"pay", CONTENT_TOPIC, 6).hash() != base.hash()


def test_negative_timestamp() -> None:
    message = WakuMessage(b"", CONTENT_TOPIC, timestamp_ns=-1_500_000_000)
    assert WakuMessage.from_bytes(message.to_bytes()) == message
    assert message.sent_s == (-1) & 0xFFFFFFFF  # Go truncates toward zero, then wraps to uint32
    expected = sha256(waku.DEFAULT_PUBSUB_TOPIC.encode() + CONTENT_TOPIC.encode() + message_ts_be(-1_500_000_000))
    assert message.hash() == expected


def message_ts_be(ts: int) -> bytes:
    return (ts & (2**64 - 1)).to_bytes(8, "big")


@pytest.mark.parametrize(
    "message",
    [
        WakuMessage(b"", "t", timestamp_ns=2**63),
        WakuMessage(b"", "t", timestamp_ns=-(2**63) - 1),
        WakuMessage(b"", "t", timestamp_ns=0, version=2**32),
        WakuMessage(b"", "t", timestamp_ns=0, version=-1),
    ],
)
def test_out_of_range_fields_are_typed_errors(message: WakuMessage) -> None:
    with pytest.raises(waku.InvalidEnvelopeInput):
        message.to_bytes()


def test_malformed_message_bytes() -> None:
    for data in (b"\x0a\x05ab", b"\x12\x01\xff", b"\xff"):
        with pytest.raises(MalformedMessage):
            WakuMessage.from_bytes(data)


# --- status-go vectors ------------------------------------------------------------------------------------

APP_VECTORS = Path("/work/shared/vectors/status-go/status-go-app-vectors.json")


@pytest.mark.skipif(not APP_VECTORS.exists(), reason="shared status-go vectors not available")
def test_status_go_waku_vectors_pass() -> None:
    cases = [c for c in json.loads(APP_VECTORS.read_text())["cases"] if c["type"] in CHECKERS]
    assert {c["type"] for c in cases} == {"waku_payload", "waku_message"}
    failures = [r for r in run_cases(cases, CHECKERS) if not r.ok]
    assert failures == []
