"""Contact codes and pairing codes: as copy-paste text and as QR images.

A **contact code** carries a chat key, its signed prekey bundle and an optional display-name hint; a
**pairing code** carries the account's chat key plus a new installation's id, bundle, device name and type.
Both are ``proto/codes.proto`` messages, written as text like this::

    SOTTOVOCE:CONTACT:V1:<base32>        SOTTOVOCE:PAIRING:V1:<base32>

where ``<base32>`` is RFC 4648 base32 (``A-Z2-7``, no padding) of ``protobuf ‖ check``, and ``check`` is the
first 4 bytes of SHA-256 over ``prefix ‖ protobuf`` (``prefix`` being the ASCII text before ``<base32>``).

Why base32 in upper case, and not base58 or base64url:

* QR codes have an *alphanumeric* mode for ``0-9 A-Z space $%*+-./:`` at 5.5 bits a character. The whole
  upper-case text fits in it, and base32 carries 5 bits a character, so the QR is about as small as raw
  binary (~91 %). base64url or base58 need byte mode at 8 bits a character (75 %, 73 %): their QR codes are
  one to two versions (4 to 8 modules a side) larger (one device: version 13 against 14; three: 17 against 19).
* It is case-insensitive, so auto-capitalisation, case folding or an upper-casing OCR do not break it, and
  its alphabet has no character that mail clients, Markdown or link detection rewrite.
* The price is text about 20 % longer than base64url: a one-device contact code has ~420 characters, a
  pairing code ~500. Nobody types them, and base58 would also mean quadratic decoding.

The checksum turns truncation and damage to the unsigned parts (names) into a clear "damaged" error; the
bundle itself must verify against the code's chat key and be well-formed (spec §3) at ``now_ns``.

Parsing ignores white space (including line breaks a mail client inserted), zero-width characters and soft
hyphens anywhere, ``>`` quote markers at line starts, and letter case in codes. A contact-code parser also
accepts a bare chat key (``zQ3sh…`` or ``0x04…``), giving no bundle.

Everything here is pure: no I/O and no clock. The QR functions import ``qrcode``, ``pillow`` and ``pyzbar``
(which needs the system's libzbar) only when called.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from google.protobuf.message import DecodeError, Message

from proto import codes_pb2

from .crypto.keys import compress, parse_compressed
from .errors import InvalidBundle, InvalidPublicKey, InvalidSignature, MalformedMessage, SottovoceError
from .identity.chatkey import chat_key_text, parse_chat_key
from .protocol.bundle import Bundle

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "CONTACT_PREFIX",
    "PAIRING_PREFIX",
    "CodeError",
    "ContactCodeInfo",
    "InvalidContactCode",
    "InvalidPairingCode",
    "NoQrCodeFound",
    "NotAContactCode",
    "NotAPairingCode",
    "PairingCodeInfo",
    "UnreadableImage",
    "UnrecognizedCode",
    "UnsupportedCodeVersion",
    "decode_qr_image",
    "encode_contact_code",
    "encode_pairing_code",
    "parse_code",
    "parse_contact_code",
    "parse_pairing_code",
    "qr_png",
    "read_code_from_image",
]

SCHEME: Final = "SOTTOVOCE"
VERSION: Final = 1
CONTACT: Final = "CONTACT"
PAIRING: Final = "PAIRING"
CONTACT_PREFIX: Final = f"{SCHEME}:{CONTACT}:V{VERSION}:"
PAIRING_PREFIX: Final = f"{SCHEME}:{PAIRING}:V{VERSION}:"
CHECK_LEN: Final = 4
MAX_TEXT_CHARS: Final = 16_384
"""Longer input is refused before any work (a three-device contact code has about 680 characters)."""
MAX_NAME_CHARS: Final = 64
"""Display names, device names and device types longer than this are refused."""
MAX_IMAGE_PIXELS: Final = 50_000_000
"""Larger images are refused before decoding (an 8K screenshot has 33 million pixels)."""
IMAGE_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
"""The only formats pillow may try: its other decoders (EPS runs Ghostscript) are attack surface."""

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_QUOTE_MARKERS = re.compile(r"^[\s>]+")
_VERSION = re.compile(r"V(\d{1,6})")
_KIND_WORD = re.compile(r"[A-Z]{1,32}")
_BASE32 = re.compile(r"[A-Z2-7]*")
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- errors ------------------------------------------------------------------------------------------------------


class CodeError(SottovoceError):
    """Base of every error about contact codes, pairing codes and QR images."""

    code = "invalid_code"
    default_message = "this is not a valid Sottovoce code"


class InvalidContactCode(CodeError):
    code = "invalid_contact_code"
    default_message = "this is not a valid contact code or chat key"


class InvalidPairingCode(CodeError):
    code = "invalid_pairing_code"
    default_message = "this is not a valid pairing code"


class NotAContactCode(InvalidContactCode):
    """A pairing code given where a contact code was expected."""

    code = "not_a_contact_code"
    default_message = "this is a pairing code for adding a device to your own account, not a contact code"


class NotAPairingCode(InvalidPairingCode):
    """A contact code (or chat key) given where a pairing code was expected."""

    code = "not_a_pairing_code"
    default_message = "this is a contact code for adding a contact, not a pairing code"


class UnsupportedCodeVersion(CodeError):
    code = "unsupported_code_version"
    default_message = "this code was made by a newer version of Sottovoce: update Sottovoce to read it"


class UnrecognizedCode(CodeError):
    """Text (or a QR code) that is neither a Sottovoce code nor a chat key, such as a web link."""

    code = "unrecognized_code"
    default_message = "this is not a Sottovoce contact code, pairing code or chat key"


class NoQrCodeFound(CodeError):
    code = "no_qr_code"
    default_message = "no QR code was found in the image"


class UnreadableImage(CodeError):
    code = "unreadable_image"
    default_message = "this file is not an image that can be read (PNG or JPEG expected)"


_KIND_ERRORS: Final[dict[str, type[CodeError]]] = {CONTACT: InvalidContactCode, PAIRING: InvalidPairingCode}
_KIND_WORDS: Final = {CONTACT: "contact code", PAIRING: "pairing code"}


# --- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactCodeInfo:
    """A parsed contact code: ``identity`` (33-byte compressed key), its verified ``bundle`` bytes (``None``
    for a bare chat key) and the unsigned ``display_name`` hint (``None`` when absent)."""

    identity: bytes
    bundle: bytes | None
    display_name: str | None

    @property
    def chat_key(self) -> str:
        """The ``zQ3sh…`` form of ``identity``."""
        return chat_key_text(self.identity)


@dataclass(frozen=True, slots=True)
class PairingCodeInfo:
    """A parsed pairing code: the account's ``identity`` (33 bytes), the new installation's id, the verified
    ``bundle`` bytes listing it, and its (unsigned) device name and type."""

    identity: bytes
    installation_id: str
    bundle: bytes
    device_name: str
    device_type: str

    @property
    def chat_key(self) -> str:
        """The ``zQ3sh…`` form of ``identity``."""
        return chat_key_text(self.identity)


# --- text form ---------------------------------------------------------------------------------------------------


def _checksum(header: str, message: bytes) -> bytes:
    return hashlib.sha256(header.encode("ascii") + message).digest()[:CHECK_LEN]


def _armor(kind: str, message: bytes) -> str:
    header = f"{SCHEME}:{kind}:V{VERSION}:"
    return header + base64.b32encode(message + _checksum(header, message)).decode("ascii").rstrip("=")


def _compact(text: str, error: type[CodeError]) -> str:
    """``text`` without white space, invisible characters and line-leading ``>`` quote markers."""
    if len(text) > MAX_TEXT_CHARS:
        raise error("this text is far too long to be a Sottovoce code or chat key")
    lines = (_QUOTE_MARKERS.sub("", line.translate(_INVISIBLE)) for line in text.splitlines())
    return "".join("".join(line.split()) for line in lines)


def _kind_of(compact: str) -> str | None:
    """The upper-case kind word of a ``SOTTOVOCE:`` code (may be unknown, or empty when cut short), or
    ``None`` for other text."""
    head = compact[: len(SCHEME) + 1]
    if not (head.isascii() and head.upper() == SCHEME + ":"):
        return None
    kind, colon, _ = compact[len(head):].partition(":")
    return kind.upper() if colon and kind.isascii() else ""


def _unarmor(compact: str, kind: str) -> bytes:
    """The protobuf bytes of a code of ``kind`` whose kind word was already checked."""
    error, word = _KIND_ERRORS[kind], _KIND_WORDS[kind]
    damaged = error(f"this {word} is damaged or incomplete: copy or scan it again")
    parts = compact.split(":")
    if len(parts) != 4 or not compact.isascii():
        raise damaged
    version = _VERSION.fullmatch(parts[2].upper())
    if version is None:
        raise damaged
    if int(version.group(1)) != VERSION:
        if int(version.group(1)) > VERSION:
            raise UnsupportedCodeVersion()
        raise UnsupportedCodeVersion(f"this {word} has an unsupported version")
    body = parts[3].upper().rstrip("=")
    if not _BASE32.fullmatch(body):
        raise damaged
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError) as exc:
        raise damaged from exc
    if base64.b32encode(raw).decode("ascii").rstrip("=") != body or len(raw) <= CHECK_LEN:
        raise damaged  # a non-canonical last character, or nothing but a checksum
    message, check = raw[:-CHECK_LEN], raw[-CHECK_LEN:]
    if _checksum(f"{SCHEME}:{kind}:V{VERSION}:", message) != check:
        raise damaged
    return message


def _wrong_kind(kind: str, expected: str | None) -> CodeError:
    """The error for a ``SOTTOVOCE:`` code whose kind word is ``kind`` where ``expected`` (``None``: any) was
    wanted."""
    if expected == CONTACT and kind == PAIRING:
        return NotAContactCode()
    if expected == PAIRING and kind == CONTACT:
        return NotAPairingCode()
    error = UnrecognizedCode if expected is None else _KIND_ERRORS[expected]
    if _KIND_WORD.fullmatch(kind):
        return error("this is a kind of Sottovoce code this version cannot read")
    return error("this Sottovoce code is damaged or incomplete: copy or scan it again")


# --- validation --------------------------------------------------------------------------------------------------


def _check_name(value: str, what: str, error: type[CodeError]) -> None:
    if len(value) > MAX_NAME_CHARS:
        raise error(f"the {what} is longer than {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS for c in value):
        raise error(f"the {what} contains control characters")


def _check_identity(identity: bytes, error: type[CodeError], word: str) -> None:
    try:
        parse_compressed(identity)
    except InvalidPublicKey as exc:
        raise error(f"the {word} holds an invalid chat key") from exc


def _check_bundle(data: bytes, identity: bytes | None, now_ns: int | None, error: type[CodeError],
                  word: str) -> Bundle:
    """Parse ``data`` as a bundle that verifies, belongs to ``identity`` (when given) and is well-formed at
    ``now_ns`` (at its own timestamp when ``None``: every check but the clock)."""
    if not data:
        raise error(f"the {word} carries no key bundle")
    try:
        bundle = Bundle.parse(data)
    except MalformedMessage as exc:
        raise error(f"the key bundle in the {word} is malformed") from exc
    try:
        bundle.verify()
    except (InvalidPublicKey, InvalidSignature) as exc:
        raise error(f"the key bundle in the {word} has an invalid signature") from exc
    if identity is not None and bundle.identity != identity:
        raise error(f"the key bundle in the {word} belongs to another account than its chat key")
    try:
        bundle.check_well_formed(bundle.timestamp if now_ns is None else now_ns)
    except InvalidBundle as exc:
        raise error(f"the key bundle in the {word} is unusable: {exc}") from exc
    return bundle


def _parse_into(message: Message, data: bytes, error: type[CodeError], word: str) -> None:
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise error(f"this {word} is malformed") from exc


# --- contact codes -----------------------------------------------------------------------------------------------


def encode_contact_code(bundle_bytes: bytes, display_name: str | None = None) -> str:
    """The text contact code of a serialized own bundle, with an optional display-name hint.

    The bundle must verify and be well-formed (its timestamp is not checked: there is no clock here);
    raises :class:`InvalidContactCode` otherwise, or when the name is too long or has control characters.
    """
    word = _KIND_WORDS[CONTACT]
    bundle = _check_bundle(bundle_bytes, None, None, InvalidContactCode, word)
    name = (display_name or "").strip()
    _check_name(name, "display name", InvalidContactCode)
    message = codes_pb2.ContactCode(identity=bundle.identity, bundle=bundle_bytes, display_name=name)
    return _armor(CONTACT, message.SerializeToString(deterministic=True))


def _contact_from_message(data: bytes, now_ns: int) -> ContactCodeInfo:
    word = _KIND_WORDS[CONTACT]
    message = codes_pb2.ContactCode()
    _parse_into(message, data, InvalidContactCode, word)
    identity = bytes(message.identity)
    _check_identity(identity, InvalidContactCode, word)
    bundle = bytes(message.bundle)
    _check_bundle(bundle, identity, now_ns, InvalidContactCode, word)
    _check_name(message.display_name, "display name in the contact code", InvalidContactCode)
    return ContactCodeInfo(identity, bundle, message.display_name or None)


def _contact_from_chat_key(compact: str) -> ContactCodeInfo:
    try:
        identity = compress(parse_chat_key(compact))
    except SottovoceError as exc:
        if compact.startswith(("zQ3", "0x04", "0X04")):
            raise InvalidContactCode("this chat key is damaged or incomplete") from exc
        raise InvalidContactCode() from exc
    return ContactCodeInfo(identity, None, None)


def parse_contact_code(text: str, now_ns: int) -> ContactCodeInfo:
    """Read a contact code, or a bare chat key (``zQ3sh…`` or ``0x04…``, giving no bundle).

    A code's bundle must verify, belong to the code's chat key and be well-formed at ``now_ns`` (Unix ns).
    Raises :class:`InvalidContactCode` (:class:`NotAContactCode` for a pairing code) or
    :class:`UnsupportedCodeVersion`.
    """
    compact = _compact(text, InvalidContactCode)
    kind = _kind_of(compact)
    if kind is None:
        return _contact_from_chat_key(compact)
    if kind != CONTACT:
        raise _wrong_kind(kind, CONTACT)
    return _contact_from_message(_unarmor(compact, CONTACT), now_ns)


# --- pairing codes -----------------------------------------------------------------------------------------------


def encode_pairing_code(bundle_bytes: bytes, installation_id: str, device_name: str, device_type: str) -> str:
    """The text pairing code of a new installation: its serialized bundle (which must list
    ``installation_id``), device name and device type (as in ``SyncPairInstallation``, e.g. ``desktop``).

    Raises :class:`InvalidPairingCode` when the bundle does not verify or is not well-formed (its timestamp
    is not checked), does not list the installation, or a name is too long or has control characters.
    """
    word = _KIND_WORDS[PAIRING]
    bundle = _check_bundle(bundle_bytes, None, None, InvalidPairingCode, word)
    if installation_id not in bundle.signed_prekeys:
        raise InvalidPairingCode("the installation is not in the key bundle of the pairing code")
    name, kind = device_name.strip(), device_type.strip()
    _check_name(name, "device name", InvalidPairingCode)
    _check_name(kind, "device type", InvalidPairingCode)
    message = codes_pb2.PairingCode(identity=bundle.identity, installation_id=installation_id,
                                    bundle=bundle_bytes, device_name=name, device_type=kind)
    return _armor(PAIRING, message.SerializeToString(deterministic=True))


def _pairing_from_message(data: bytes, now_ns: int) -> PairingCodeInfo:
    word = _KIND_WORDS[PAIRING]
    message = codes_pb2.PairingCode()
    _parse_into(message, data, InvalidPairingCode, word)
    identity = bytes(message.identity)
    _check_identity(identity, InvalidPairingCode, word)
    bundle_bytes = bytes(message.bundle)
    bundle = _check_bundle(bundle_bytes, identity, now_ns, InvalidPairingCode, word)
    if message.installation_id not in bundle.signed_prekeys:
        raise InvalidPairingCode("the installation in the pairing code is not in its key bundle")
    _check_name(message.device_name, "device name in the pairing code", InvalidPairingCode)
    _check_name(message.device_type, "device type in the pairing code", InvalidPairingCode)
    return PairingCodeInfo(identity, message.installation_id, bundle_bytes, message.device_name,
                           message.device_type)


def parse_pairing_code(text: str, now_ns: int) -> PairingCodeInfo:
    """Read a pairing code.

    Its bundle must verify, belong to the code's chat key, be well-formed at ``now_ns`` (Unix ns) and list
    the code's installation id. Raises :class:`InvalidPairingCode` (:class:`NotAPairingCode` for a contact
    code or a chat key) or :class:`UnsupportedCodeVersion`.
    """
    compact = _compact(text, InvalidPairingCode)
    kind = _kind_of(compact)
    if kind is None:
        try:
            _contact_from_chat_key(compact)
        except InvalidContactCode:
            raise InvalidPairingCode() from None
        raise NotAPairingCode("this is a chat key for adding a contact, not a pairing code")
    if kind != PAIRING:
        raise _wrong_kind(kind, PAIRING)
    return _pairing_from_message(_unarmor(compact, PAIRING), now_ns)


def parse_code(text: str, now_ns: int) -> ContactCodeInfo | PairingCodeInfo:
    """Read a contact code, a bare chat key or a pairing code, whichever ``text`` is.

    Raises :class:`UnrecognizedCode` for other text, else as :func:`parse_contact_code` and
    :func:`parse_pairing_code` do.
    """
    compact = _compact(text, UnrecognizedCode)
    kind = _kind_of(compact)
    if kind is None:
        try:
            return _contact_from_chat_key(compact)
        except InvalidContactCode as exc:
            if compact.startswith(("zQ3", "0x04", "0X04")):
                raise
            raise UnrecognizedCode() from exc
    if kind == PAIRING:
        return _pairing_from_message(_unarmor(compact, PAIRING), now_ns)
    if kind == CONTACT:
        return _contact_from_message(_unarmor(compact, CONTACT), now_ns)
    raise _wrong_kind(kind, None)


# --- QR images ---------------------------------------------------------------------------------------------------


def qr_png(text: str, *, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M), ``scale`` pixels a module, ``border`` modules of
    quiet zone. Codes are upper case, so they use the QR's compact alphanumeric mode."""
    import qrcode  # type: ignore[import-untyped]
    from qrcode.image.pil import PilImage  # type: ignore[import-untyped]

    if scale < 1 or border < 0:
        raise ValueError("scale must be at least 1 and border at least 0")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=scale, border=border)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image(image_factory=PilImage).save(out, format="PNG")
    return out.getvalue()


def _open_image(data: bytes) -> Image.Image:
    """``data`` decoded by pillow (one of :data:`IMAGE_FORMATS`, at most :data:`MAX_IMAGE_PIXELS`)."""
    from PIL import Image

    if not data:
        raise UnreadableImage("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise UnreadableImage("the image is too large to search for a QR code")
            image.load()
    except UnreadableImage:
        raise
    except Exception as exc:  # pillow's decoders raise many types (OSError, SyntaxError, ...) on bad input
        raise UnreadableImage() from exc
    return image


def _grey(image: Image.Image) -> Image.Image:
    """8-bit grey, with transparent areas laid on white (a QR drawn on a transparent background)."""
    from PIL import Image

    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert("L")


def _scan(grey: Image.Image) -> list[str]:
    from pyzbar import pyzbar  # type: ignore[import-untyped]

    texts: list[str] = []
    for symbol in pyzbar.decode(grey, symbols=[pyzbar.ZBarSymbol.QRCODE]):
        text = bytes(symbol.data).decode("utf-8", errors="replace")
        if text not in texts:
            texts.append(text)
    return texts


def decode_qr_image(data: bytes) -> list[str]:
    """The texts of the QR codes in a PNG/JPEG (also WebP, GIF, BMP) image, in zbar's order; ``[]`` if none.

    The QR may be anywhere in a larger picture, drawn light on dark, or on a transparent background.
    Raises :class:`UnreadableImage` for bytes that are not such an image.
    """
    from PIL import ImageOps

    grey = _grey(_open_image(data))
    return _scan(grey) or _scan(ImageOps.invert(grey))


def read_code_from_image(data: bytes, now_ns: int) -> ContactCodeInfo | PairingCodeInfo:
    """The first valid contact code, chat key or pairing code found as a QR code in an image.

    Raises :class:`UnreadableImage`, :class:`NoQrCodeFound`, or, when no QR code holds a valid code, the
    error of the first one that looks like a Sottovoce code or chat key (else :class:`UnrecognizedCode`).
    """
    return read_code_text_from_image(data, now_ns)[1]


def read_code_text_from_image(data: bytes, now_ns: int) -> tuple[str, ContactCodeInfo | PairingCodeInfo]:
    """:func:`read_code_from_image`, with the text of the QR code that held it."""
    texts = decode_qr_image(data)
    if not texts:
        raise NoQrCodeFound()
    errors: list[CodeError] = []
    for text in texts:
        try:
            return text, parse_code(text, now_ns)
        except CodeError as exc:
            errors.append(exc)
    for error in errors:
        if not isinstance(error, UnrecognizedCode):
            raise error
    raise UnrecognizedCode("the QR code does not hold a Sottovoce contact code, pairing code or chat key")
