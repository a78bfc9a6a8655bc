"""Contact and pairing codes (``engine.codes``): text form, QR images, and every way they can be broken."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from engine.codes import (
    CONTACT_PREFIX,
    PAIRING_PREFIX,
    CodeError,
    ContactCodeInfo,
    InvalidContactCode,
    InvalidPairingCode,
    NoQrCodeFound,
    NotAContactCode,
    NotAPairingCode,
    PairingCodeInfo,
    UnreadableImage,
    UnrecognizedCode,
    UnsupportedCodeVersion,
    decode_qr_image,
    encode_contact_code,
    encode_pairing_code,
    parse_code,
    parse_contact_code,
    parse_pairing_code,
    qr_png,
    read_code_from_image,
)
from engine.crypto.keys import uncompress
from engine.errors import InvalidBundle, InvalidSignature, SottovoceError
from engine.identity import chat_key_text
from engine.protocol.bundle import Bundle, SignedPreKey
from engine.protocol.entropy import KeyPurpose
from proto import codes_pb2
from tests.helpers import SeededEntropy, make_device

NOW = 1_750_000_000 * 10**9
ALICE_INSTALLATION = "3f2b8c1e-6d4a-4f7b-9a21-0c5d8e7f6a10"
SIBLING_INSTALLATION = "9c1d2e3f-4a5b-4c6d-8e7f-112233445566"
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

_alice, _alice_entropy = make_device("alice", installation=ALICE_INSTALLATION)
ALICE = _alice.state.identity
ALICE_BUNDLE = _alice.own_bundle(NOW, _alice_entropy).serialize()
_bob, _bob_entropy = make_device("bob")
BOB = _bob.state.identity
BOB_BUNDLE = _bob.own_bundle(NOW, _bob_entropy).serialize()
CONTACT = encode_contact_code(ALICE_BUNDLE, "Alice Liddell")
PAIRING = encode_pairing_code(ALICE_BUNDLE, ALICE_INSTALLATION, "Alice's laptop", "desktop")


def armor(kind: str, message: bytes, version: int = 1) -> str:
    """The text form as the module docstring specifies it, written independently of the module."""
    header = f"SOTTOVOCE:{kind}:V{version}:"
    check = hashlib.sha256(header.encode() + message).digest()[:4]
    return header + base64.b32encode(message + check).decode().rstrip("=")


def contact(identity: bytes = ALICE.public, bundle: bytes = ALICE_BUNDLE, name: str = "") -> str:
    return armor("CONTACT", codes_pb2.ContactCode(identity=identity, bundle=bundle,
                                                  display_name=name).SerializeToString())


def pairing(identity: bytes = ALICE.public, installation_id: str = ALICE_INSTALLATION,
            bundle: bytes = ALICE_BUNDLE, device_name: str = "laptop", device_type: str = "desktop") -> str:
    message = codes_pb2.PairingCode(identity=identity, installation_id=installation_id, bundle=bundle,
                                    device_name=device_name, device_type=device_type)
    return armor("PAIRING", message.SerializeToString())


def tampered_signature(bundle: bytes) -> bytes:
    message = Bundle.parse(bundle).to_proto()
    message.signature = bytes([message.signature[0] ^ 1]) + message.signature[1:]
    return message.SerializeToString(deterministic=True)


def two_device_bundle(timestamp: int = NOW) -> bytes:
    entropy = SeededEntropy("two devices")
    prekeys = {ALICE_INSTALLATION: SignedPreKey(entropy.new_key(KeyPurpose.SIGNED_PREKEY).public, 1),
               SIBLING_INSTALLATION: SignedPreKey(entropy.new_key(KeyPurpose.SIGNED_PREKEY).public, 3)}
    return Bundle.create(ALICE, prekeys, timestamp).serialize()


def raises(error: type[CodeError], call: Callable[[], object], match: str = "") -> CodeError:
    """``call()`` raises exactly ``error`` (not a subclass) with a one-line message containing ``match``."""
    with pytest.raises(CodeError) as info:
        call()
    assert type(info.value) is error, repr(info.value)
    message = str(info.value)
    assert match in message and "\n" not in message and message
    return info.value


# --- text: round trips ---------------------------------------------------------------------------------------


def test_contact_code_round_trip() -> None:
    assert CONTACT.startswith(CONTACT_PREFIX) and CONTACT_PREFIX == "SOTTOVOCE:CONTACT:V1:"
    assert set(CONTACT) <= QR_ALPHANUMERIC
    assert contact(name="Alice Liddell") == CONTACT  # the format is exactly what the docstring says
    info = parse_contact_code(CONTACT, NOW)
    assert info == ContactCodeInfo(ALICE.public, ALICE_BUNDLE, "Alice Liddell")
    assert info.chat_key == chat_key_text(ALICE.public)
    bundle = Bundle.parse(info.bundle or b"")
    assert bundle.identity == ALICE.public and ALICE_INSTALLATION in bundle.signed_prekeys


@pytest.mark.parametrize(("name", "expected"), [(None, None), ("", None), ("  Ünïcødé 名前 🦊  ", "Ünïcødé 名前 🦊")])
def test_contact_code_display_name_is_optional(name: str | None, expected: str | None) -> None:
    assert parse_contact_code(encode_contact_code(BOB_BUNDLE, name), NOW) == ContactCodeInfo(BOB.public,
                                                                                             BOB_BUNDLE, expected)


def test_pairing_code_round_trip() -> None:
    assert PAIRING.startswith(PAIRING_PREFIX) and set(PAIRING) <= QR_ALPHANUMERIC
    info = parse_pairing_code(PAIRING, NOW)
    assert info == PairingCodeInfo(ALICE.public, ALICE_INSTALLATION, ALICE_BUNDLE, "Alice's laptop", "desktop")
    assert info.chat_key == chat_key_text(ALICE.public)


def test_pairing_code_may_name_any_installation_of_its_bundle() -> None:
    bundle = two_device_bundle()
    info = parse_pairing_code(encode_pairing_code(bundle, SIBLING_INSTALLATION, "phone", "android"), NOW)
    assert (info.installation_id, info.bundle, info.device_type) == (SIBLING_INSTALLATION, bundle, "android")


def _wrapped(text: str, width: int, newline: str, indent: str = "") -> str:
    return newline.join(indent + text[i:i + width] for i in range(0, len(text), width))


@pytest.mark.parametrize("mangle", [
    lambda t: f"  \n\t{t} \r\n",
    str.lower,
    lambda t: t[:30].lower() + t[30:],
    lambda t: _wrapped(t, 76, "\r\n"),
    lambda t: _wrapped(t, 64, "\n", indent="    "),
    lambda t: _wrapped(t, 72, "\n", indent="> > "),
    lambda t: _wrapped(t, 40, "\u2028"),
    lambda t: "\ufeff" + t.replace("V1:", "V1:\u00a0").replace("A", "A\u200b", 3).replace("B", "B\u00ad", 2),
    lambda t: t + "==",
], ids=["surrounding", "lower", "mixed-case", "crlf-wrap", "indented", "quoted-reply", "line-separator",
        "invisibles", "padding"])
def test_codes_survive_copy_paste(mangle: Callable[[str], str]) -> None:
    assert parse_contact_code(mangle(CONTACT), NOW) == parse_contact_code(CONTACT, NOW)
    assert parse_pairing_code(mangle(PAIRING), NOW) == parse_pairing_code(PAIRING, NOW)


@pytest.mark.parametrize("text", [
    chat_key_text(BOB.public),
    "0x" + uncompress(BOB.public).hex(),
    "0X" + uncompress(BOB.public).hex().upper(),
    "  " + _wrapped(chat_key_text(BOB.public), 20, "\r\n") + "\n",
    "> 0x" + uncompress(BOB.public).hex()[:70] + "\n> " + uncompress(BOB.public).hex()[70:],
])
def test_bare_chat_key_is_a_contact_without_bundle(text: str) -> None:
    assert parse_contact_code(text, NOW) == ContactCodeInfo(BOB.public, None, None)
    assert parse_code(text, NOW) == ContactCodeInfo(BOB.public, None, None)


def test_parse_code_reads_every_kind() -> None:
    assert isinstance(parse_code(CONTACT, NOW), ContactCodeInfo)
    assert isinstance(parse_code(PAIRING.lower(), NOW), PairingCodeInfo)
    raises(UnrecognizedCode, lambda: parse_code("https://example.org/u#abc", NOW))
    raises(UnrecognizedCode, lambda: parse_code("SOTTOVOCE:GROUP:V1:ABCD", NOW), "cannot read")
    raises(InvalidContactCode, lambda: parse_code(CONTACT[:-3], NOW), "damaged")
    raises(InvalidPairingCode, lambda: parse_code(PAIRING[:-3], NOW), "damaged")
    raises(InvalidContactCode, lambda: parse_code(chat_key_text(BOB.public)[:-2], NOW), "chat key")


# --- text: the wrong kind ------------------------------------------------------------------------------------


def test_wrong_kind_of_code_says_so() -> None:
    error = raises(NotAContactCode, lambda: parse_contact_code(PAIRING, NOW), "pairing code")
    assert isinstance(error, InvalidContactCode)
    error = raises(NotAPairingCode, lambda: parse_pairing_code(CONTACT.lower(), NOW), "contact code")
    assert isinstance(error, InvalidPairingCode)
    raises(NotAPairingCode, lambda: parse_pairing_code(chat_key_text(BOB.public), NOW), "chat key")
    # even a broken code of the other kind is first of all the wrong kind
    raises(NotAContactCode, lambda: parse_contact_code(PAIRING[:40], NOW))
    raises(NotAContactCode, lambda: parse_contact_code(PAIRING.replace(":V1:", ":V7:"), NOW))


# --- text: broken inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 7, 8, 9, 100, len(CONTACT) - len(CONTACT_PREFIX) - 1])
def test_truncated_contact_code(cut: int) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(CONTACT[:-cut], NOW), "damaged or incomplete")


@pytest.mark.parametrize("text", ["SOTTOVOCE:", "sottovoce:contact", "SOTTOVOCE:CONTACT:", "SOTTOVOCE:CONTACT:V1:",
                                  "SOTTOVOCE:CONTACT:V", "SOTTOVOCE:CONTACT:V1"])
def test_cut_inside_the_prefix(text: str) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(text, NOW), "damaged or incomplete")
    raises(InvalidPairingCode, lambda: parse_pairing_code(text.replace("CONTACT", "PAIRING"), NOW), "damaged")


@pytest.mark.parametrize("text", ["", "   \n", "hello", "https://example.org/add?me", "SOTTOVOKE:CONTACT:V1:ABCD",
                                  "X" + CONTACT, CONTACT.replace(":", ";", 1), "zQ", "0x04", "\x00" * 5])
def test_not_a_code_at_all(text: str) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(text, NOW))
    raises(InvalidPairingCode, lambda: parse_pairing_code(text, NOW))
    with pytest.raises(CodeError):
        parse_code(text, NOW)


def test_damaged_chat_key() -> None:
    key = chat_key_text(BOB.public)
    raises(InvalidContactCode, lambda: parse_contact_code(key[:-1], NOW), "chat key is damaged")
    raises(InvalidContactCode, lambda: parse_contact_code(key[:10] + "0" + key[11:], NOW), "chat key is damaged")
    raises(InvalidContactCode, lambda: parse_contact_code("0x04" + "00" * 64, NOW), "chat key is damaged")


def test_unknown_kind_word() -> None:
    raises(InvalidContactCode, lambda: parse_contact_code("SOTTOVOCE:GROUP:V1:ABCD", NOW), "cannot read")
    raises(InvalidPairingCode, lambda: parse_pairing_code("sottovoce:group:v1:abcd", NOW), "cannot read")
    raises(InvalidContactCode, lambda: parse_contact_code("SOTTOVOCE:CÖNTACT:V1:ABCD", NOW), "damaged")


@pytest.mark.parametrize(("version", "match"), [("V2", "newer version"), ("v9", "newer"), ("V0", "unsupported version"),
                                                ("V12", "newer")])
def test_wrong_version(version: str, match: str) -> None:
    raises(UnsupportedCodeVersion, lambda: parse_contact_code(CONTACT.replace(":V1:", f":{version}:"), NOW), match)
    raises(UnsupportedCodeVersion, lambda: parse_pairing_code(PAIRING.replace(":V1:", f":{version}:"), NOW), match)
    raises(UnsupportedCodeVersion, lambda: parse_code(CONTACT.replace(":V1:", f":{version}:"), NOW), match)


@pytest.mark.parametrize("version", ["VX", "1", "V", "V1.0", "V-1", "V1234567"])
def test_unreadable_version(version: str) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(CONTACT.replace(":V1:", f":{version}:"), NOW), "damaged")


def test_every_bit_flip_in_the_payload_is_detected() -> None:
    body = CONTACT[len(CONTACT_PREFIX):]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    for position in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[position // 8] ^= 1 << (position % 8)
        text = CONTACT_PREFIX + base64.b32encode(bytes(flipped)).decode().rstrip("=")
        raises(InvalidContactCode, lambda text=text: parse_contact_code(text, NOW), "damaged")


def test_every_character_substitution_is_detected() -> None:
    rng = random.Random(5)
    start = len(PAIRING_PREFIX)
    for index in range(start, len(PAIRING)):
        replacement = rng.choice([c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" if c != PAIRING[index]])
        text = PAIRING[:index] + replacement + PAIRING[index + 1:]
        raises(InvalidPairingCode, lambda text=text: parse_pairing_code(text, NOW), "damaged")


def test_non_canonical_last_character() -> None:
    """Unused trailing bits set: ``b32decode`` alone would accept the text and return the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    texts = (encode_contact_code(BOB_BUNDLE, name) for name in ("", "A", "AB", "ABC", "ABCD"))
    body = next(t for t in texts if (len(t) - len(CONTACT_PREFIX)) % 8)[len(CONTACT_PREFIX):]  # a partial group
    sloppy = body[:-1] + alphabet[alphabet.index(body[-1]) | 1]  # the lowest bit of a partial group is unused
    assert sloppy != body
    assert base64.b32decode(sloppy + "=" * (-len(sloppy) % 8)) == base64.b32decode(body + "=" * (-len(body) % 8))
    raises(InvalidContactCode, lambda: parse_contact_code(CONTACT_PREFIX + sloppy, NOW), "damaged")


def test_characters_outside_base32() -> None:
    for bad in ("0", "1", "8", "9", "=", "-", "_", "é"):
        text = CONTACT[:60] + bad + CONTACT[61:]
        raises(InvalidContactCode, lambda text=text: parse_contact_code(text, NOW), "damaged")


def test_tampered_bundle_signature() -> None:
    bad = tampered_signature(ALICE_BUNDLE)
    error = raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=bad), NOW), "invalid signature")
    assert isinstance(error.__cause__, InvalidSignature)
    raises(InvalidPairingCode, lambda: parse_pairing_code(pairing(bundle=bad), NOW), "invalid signature")


def test_unsigned_bundle_change_is_caught_by_the_signature() -> None:
    message = Bundle.parse(ALICE_BUNDLE).to_proto()
    message.signed_pre_keys[ALICE_INSTALLATION].version += 1
    changed = message.SerializeToString(deterministic=True)
    raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=changed), NOW), "invalid signature")


def test_bundle_of_another_identity_than_claimed() -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(contact(identity=BOB.public), NOW), "another account")
    raises(InvalidPairingCode, lambda: parse_pairing_code(pairing(identity=BOB.public), NOW), "another account")


def test_bundle_with_an_invalid_identity_key() -> None:
    message = Bundle.parse(ALICE_BUNDLE).to_proto()
    message.identity = b"\x02" + b"\xff" * 32
    bundle = message.SerializeToString()
    raises(InvalidContactCode, lambda: parse_contact_code(contact(identity=message.identity, bundle=bundle), NOW),
           "invalid chat key")
    raises(InvalidContactCode, lambda: parse_contact_code(contact(identity=ALICE.public, bundle=bundle), NOW),
           "invalid signature")


@pytest.mark.parametrize("message", [b"\xff\xff\xff", b"\x0a\xff", b"\x08", b"\x12\x05abc"])
def test_malformed_protobuf(message: bytes) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(armor("CONTACT", message), NOW), "malformed")
    raises(InvalidPairingCode, lambda: parse_pairing_code(armor("PAIRING", message), NOW), "malformed")


def test_invalid_utf8_in_a_name_is_malformed() -> None:
    message = codes_pb2.ContactCode(identity=ALICE.public, bundle=ALICE_BUNDLE).SerializeToString()
    raises(InvalidContactCode, lambda: parse_contact_code(armor("CONTACT", message + b"\x1a\x02\xc3\x28"), NOW),
           "malformed")


def test_malformed_bundle_and_missing_parts() -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=b"\xff\xff"), NOW), "bundle in the contact "
           "code is malformed")
    raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=b""), NOW), "no key bundle")
    raises(InvalidContactCode, lambda: parse_contact_code(contact(identity=b""), NOW), "invalid chat key")
    raises(InvalidContactCode, lambda: parse_contact_code(contact(identity=uncompress(ALICE.public)), NOW),
           "invalid chat key")
    raises(InvalidPairingCode, lambda: parse_pairing_code(pairing(bundle=b""), NOW), "no key bundle")
    raises(InvalidContactCode, lambda: parse_contact_code(armor("CONTACT", b""), NOW), "damaged")


def test_bundle_must_be_well_formed_now() -> None:
    future = two_device_bundle(timestamp=NOW + 25 * 3600 * 10**9)
    error = raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=future), NOW), "unusable")
    assert isinstance(error.__cause__, InvalidBundle)
    assert parse_contact_code(contact(bundle=future), NOW + 2 * 3600 * 10**9).bundle == future
    empty = Bundle.create(ALICE, {}, NOW).serialize()
    raises(InvalidContactCode, lambda: parse_contact_code(contact(bundle=empty), NOW), "no installation")


def test_pairing_installation_must_be_in_the_bundle() -> None:
    for installation in ("", "none", SIBLING_INSTALLATION, ALICE_INSTALLATION.upper()):
        raises(InvalidPairingCode, lambda i=installation: parse_pairing_code(pairing(installation_id=i), NOW),
               "not in its key bundle")


@pytest.mark.parametrize("name", ["x" * 65, "line\nbreak", "nul\x00", "rtl\u202egnp.exe"])
def test_names_with_control_characters_or_too_long(name: str) -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(contact(name=name), NOW), "display name")
    raises(InvalidPairingCode, lambda: parse_pairing_code(pairing(device_name=name), NOW), "device name")
    raises(InvalidPairingCode, lambda: parse_pairing_code(pairing(device_type=name), NOW), "device type")
    raises(InvalidContactCode, lambda: encode_contact_code(ALICE_BUNDLE, name), "display name")
    raises(InvalidPairingCode, lambda: encode_pairing_code(ALICE_BUNDLE, ALICE_INSTALLATION, name, "desktop"))


def test_far_too_long_text() -> None:
    raises(InvalidContactCode, lambda: parse_contact_code(CONTACT + "A" * 20_000, NOW), "too long")
    raises(InvalidPairingCode, lambda: parse_pairing_code(" " * 20_000, NOW), "too long")
    raises(UnrecognizedCode, lambda: parse_code("z" * 20_000, NOW), "too long")


def test_encoding_refuses_bad_bundles() -> None:
    raises(InvalidContactCode, lambda: encode_contact_code(b"\xff\xff", None), "malformed")
    raises(InvalidContactCode, lambda: encode_contact_code(b"", None), "no key bundle")
    raises(InvalidContactCode, lambda: encode_contact_code(tampered_signature(ALICE_BUNDLE)), "invalid signature")
    raises(InvalidPairingCode, lambda: encode_pairing_code(tampered_signature(ALICE_BUNDLE), ALICE_INSTALLATION,
                                                           "laptop", "desktop"), "invalid signature")
    raises(InvalidPairingCode, lambda: encode_pairing_code(ALICE_BUNDLE, SIBLING_INSTALLATION, "laptop", "desktop"),
           "not in the key bundle")


def test_error_classes() -> None:
    classes = [CodeError, InvalidContactCode, InvalidPairingCode, NotAContactCode, NotAPairingCode,
               UnsupportedCodeVersion, UnrecognizedCode, NoQrCodeFound, UnreadableImage]
    assert len({c.code for c in classes}) == len(classes)
    for cls in classes:
        assert issubclass(cls, SottovoceError)
        assert str(cls()) == cls.default_message and "\n" not in cls.default_message


# --- QR images -----------------------------------------------------------------------------------------------


def _png(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _qr(text: str, scale: int = 3) -> Image.Image:
    return Image.open(io.BytesIO(qr_png(text, scale=scale)))


def test_qr_round_trip_through_png() -> None:
    png = qr_png(CONTACT)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_qr_image(png) == [CONTACT]
    assert read_code_from_image(png, NOW) == parse_contact_code(CONTACT, NOW)
    assert read_code_from_image(qr_png(PAIRING, scale=2, border=2), NOW) == parse_pairing_code(PAIRING, NOW)
    assert read_code_from_image(qr_png(chat_key_text(BOB.public)), NOW) == ContactCodeInfo(BOB.public, None, None)
    with pytest.raises(ValueError):
        qr_png(CONTACT, scale=0)


def test_qr_in_a_bigger_noisy_photo_as_jpeg() -> None:
    screen = Image.effect_noise((1600, 1000), 60).convert("RGB")
    screen.paste(_qr(CONTACT).convert("RGB"), (1100, 620))
    assert read_code_from_image(_png(screen, "JPEG", quality=85), NOW).identity == ALICE.public


def test_qr_in_an_rgba_screenshot_among_other_qr_codes() -> None:
    screen = Image.new("RGBA", (900, 600), (30, 120, 200, 255))
    screen.paste(_qr("https://example.org/").convert("RGBA"), (20, 20))
    screen.paste(_qr(PAIRING).convert("RGBA"), (420, 150))
    assert set(decode_qr_image(_png(screen))) == {"https://example.org/", PAIRING}
    assert isinstance(read_code_from_image(_png(screen), NOW), PairingCodeInfo)


def test_qr_on_a_transparent_background() -> None:
    dark = ImageOps.invert(_qr(CONTACT).convert("L"))
    image = Image.new("RGBA", dark.size, (0, 0, 0, 0))
    image.putalpha(dark)  # black modules, fully transparent (black) elsewhere
    assert decode_qr_image(_png(image)) == [CONTACT]


def test_qr_palette_and_inverted() -> None:
    palette = _qr(CONTACT).convert("RGB").quantize(colors=4)
    assert palette.mode == "P" and decode_qr_image(_png(palette)) == [CONTACT]
    inverted = ImageOps.invert(_qr(CONTACT).convert("L"))
    assert decode_qr_image(_png(inverted)) == [CONTACT]


def test_qr_holding_a_url_or_broken_code() -> None:
    raises(UnrecognizedCode, lambda: read_code_from_image(qr_png("https://status.app/u#zQ3shx"), NOW), "QR code")
    bad = contact(bundle=tampered_signature(ALICE_BUNDLE))
    raises(InvalidContactCode, lambda: read_code_from_image(qr_png(bad), NOW), "invalid signature")
    raises(UnsupportedCodeVersion, lambda: read_code_from_image(qr_png(CONTACT.replace(":V1:", ":V2:")), NOW))


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("data", [
    b"",
    b"definitely not an image",
    CONTACT.encode(),
    qr_png(CONTACT)[:200],
    _png_header_only(10_000, 10_000),
    _png_header_only(0x7FFF_FFFF, 0x7FFF_FFFF),
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
], ids=["empty", "text", "code-text", "truncated-png", "too-many-pixels", "bomb", "eps"])
def test_not_an_image(data: bytes) -> None:
    raises(UnreadableImage, lambda: decode_qr_image(data))
    raises(UnreadableImage, lambda: read_code_from_image(data, NOW))


def test_tiff_is_not_an_accepted_format() -> None:
    raises(UnreadableImage, lambda: decode_qr_image(_png(_qr(CONTACT), "TIFF")))


def test_image_without_a_qr_code() -> None:
    blank = _png(Image.effect_noise((400, 300), 40))
    assert decode_qr_image(blank) == []
    raises(NoQrCodeFound, lambda: read_code_from_image(blank, NOW))


# --- properties: only the project's typed errors -------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS: list[Callable[[str, int], object]] = [parse_contact_code, parse_pairing_code, parse_code]
_prefixes = st.sampled_from(["SOTTOVOCE:CONTACT:V1:", "sottovoce:pairing:v1:", "SOTTOVOCE:", "zQ3sh", "0x04", ""])
_texts = st.one_of(st.text(max_size=300), st.builds(str.__add__, _prefixes, st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdef:=01 \n>", max_size=400)))


def _only_code_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except CodeError as exc:
        assert str(exc) and "\n" not in str(exc)


@FAST
@given(_texts)
def test_parsers_on_arbitrary_text_raise_only_code_errors(text: str) -> None:
    for parse in PARSERS:
        _only_code_errors(lambda parse=parse: parse(text, NOW))


@FAST
@given(st.sampled_from(["CONTACT", "PAIRING"]), st.binary(max_size=400))
def test_parsers_on_arbitrary_payloads_with_a_valid_checksum(kind: str, payload: bytes) -> None:
    for parse in PARSERS:
        _only_code_errors(lambda parse=parse: parse(armor(kind, payload), NOW))


@FAST
@given(identity=st.sampled_from([ALICE.public, BOB.public, b"", b"\x02" * 33]),
       bundle=st.sampled_from([ALICE_BUNDLE, BOB_BUNDLE, tampered_signature(ALICE_BUNDLE), b""]) | st.binary(),
       name=st.text(max_size=80), installation_id=st.sampled_from([ALICE_INSTALLATION, ""]) | st.text(max_size=40),
       now_ns=st.integers(-(2**63), 2**63 - 1))
def test_parsers_on_arbitrary_code_messages(identity: bytes, bundle: bytes, name: str, installation_id: str,
                                            now_ns: int) -> None:
    try:
        texts = [contact(identity, bundle, name), pairing(identity, installation_id, bundle, name, name)]
    except ValueError:
        return  # the name could not even be serialized (a lone surrogate)
    for text in texts:
        for parse in PARSERS:
            _only_code_errors(lambda parse=parse, text=text: parse(text, now_ns))


_REAL_PNG = qr_png(CONTACT, scale=1, border=1)


@st.composite
def _image_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(_REAL_PNG)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@settings(max_examples=100, deadline=None)
@given(_image_bytes())
def test_image_reader_on_arbitrary_bytes_raises_only_code_errors(data: bytes) -> None:
    _only_code_errors(lambda: read_code_from_image(data, NOW))

