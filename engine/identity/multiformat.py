"""status-go's multibase/multicodec public-key helpers (``api/multiformat``; identity spec section 3.2).

A key travels as ``<multibase prefix><encoded(varint 0xE7 || key body)>``; 0xE7 is the secp256k1-pub
multicodec. Supported multibase prefixes: ``z`` (base58btc), ``f``/``F`` (hex), and ``0x`` read as ``f``.
Error messages repeat status-go's texts, which its tests (and our vectors) pin.
"""

from __future__ import annotations

from ..crypto.keys import COMPRESSED_LEN, UNCOMPRESSED_LEN, parse_public_key
from ..errors import InvalidPublicKey
from .base58 import b58decode, b58encode
from .errors import (
    InvalidChatKey,
    InvalidHex,
    InvalidKeyFormat,
    InvalidKeyLength,
    InvalidVarint,
    UnsupportedEncoding,
    UnsupportedKeyType,
)

SECP256K1_PUB = 0xE7
SECP256K1_PUB_TAG = b"\xe7\x01"
LEGACY_KEY_LEN = 132
_HEX = frozenset(b"0123456789abcdefABCDEF")
_VARINT_MAX_LEN = 9


def _go_rune_text(byte: int) -> str:
    """Go's ``%#U`` of ``rune(byte)``: ``U+0051 'Q'``, without the quoted character when unprintable."""
    char = chr(byte)
    printable = char == " " or (char.isprintable() and not char.isspace())
    return f"U+{byte:04X} '{char}'" if printable else f"U+{byte:04X}"


def go_hex_decode(text: str) -> bytes:
    """Go's ``hex.DecodeString``, including the order and text of its errors."""
    src = text.encode("utf-8", "surrogatepass")
    for offset in range(1, len(src), 2):
        for byte in (src[offset - 1], src[offset]):
            if byte not in _HEX:
                raise InvalidHex(f"encoding/hex: invalid byte: {_go_rune_text(byte)}")
    if len(src) % 2:
        if src[-1] not in _HEX:
            raise InvalidHex(f"encoding/hex: invalid byte: {_go_rune_text(src[-1])}")
        raise InvalidHex("encoding/hex: odd length hex string")
    return bytes.fromhex(src.decode("ascii"))


def multibase_decode(text: str) -> bytes:
    """Decode a multibase string; ``0x...`` is read as the hex multibase ``f...``."""
    if text.startswith("0x"):
        text = "f" + text[2:]
    if not text:
        raise InvalidChatKey("cannot decode multibase for zero length string")
    prefix, body = text[0], text[1:]
    if prefix == "z":
        return b58decode(body)
    if prefix in "fF":
        return go_hex_decode(body)
    raise UnsupportedEncoding()


def multibase_encode(base: str, data: bytes) -> str:
    """Encode ``data`` as multibase ``base`` (``z``, ``f``, ``F``; ``0x`` gives an ``f`` string)."""
    if base in ("f", "0x"):
        return "f" + data.hex()
    if base == "F":
        return "F" + data.hex().upper()
    if base == "z":
        return "z" + b58encode(data)
    raise UnsupportedEncoding()


def read_uvarint(data: bytes) -> tuple[int, int]:
    """An unsigned LEB128 varint at the start of ``data`` (go-varint rules): ``(value, length)``."""
    value = shift = 0
    for i, byte in enumerate(data):
        if (i == _VARINT_MAX_LEN - 1 and byte >= 0x80) or i >= _VARINT_MAX_LEN:
            raise InvalidVarint("varints larger than uint63 not supported")
        if byte < 0x80:
            if byte == 0 and shift > 0:
                raise InvalidVarint("varint not minimally encoded")
            return value | byte << shift, i + 1
        value |= (byte & 0x7F) << shift
        shift += 7
    raise InvalidVarint()


def _go_bits(data: bytes) -> str:
    """Go's ``%b`` of a byte slice: ``[11111111 1000010]``."""
    return "[" + " ".join(format(b, "b") for b in data) + "]"


def _key_body(text: str) -> bytes:
    """The key body of a multibase/multicodec secp256k1 public key."""
    data = multibase_decode(text)
    code, length = read_uvarint(data)
    if code != SECP256K1_PUB:
        raise UnsupportedKeyType(f"unsupported public key type '{code:X}'")
    return data[length:]


def _point(body: bytes, length: int) -> bytes:
    """``body`` as a curve point of the given encoded length, else status-go's format error."""
    prefixes = (2, 3) if length == COMPRESSED_LEN else (4,)
    if len(body) == length and body[0] in prefixes:
        try:
            point = parse_public_key(body)
        except InvalidPublicKey:
            pass
        else:
            return bytes(point.format(compressed=False))
    raise InvalidKeyFormat(f"invalid public key format, '{_go_bits(body)}'")


def serialize_public_key(key: str, out_base: str) -> str:
    """status-go ``SerializePublicKey``: multicodec uncompressed key in, compressed key in ``out_base`` out."""
    uncompressed = _point(_key_body(key), UNCOMPRESSED_LEN)
    compressed = parse_public_key(uncompressed).format(compressed=True)
    return multibase_encode(out_base, SECP256K1_PUB_TAG + compressed)


def deserialize_public_key(key: str, out_base: str) -> str:
    """status-go ``DeserializePublicKey``: multicodec compressed key in, uncompressed in ``out_base`` out."""
    uncompressed = _point(_key_body(key), COMPRESSED_LEN)
    return multibase_encode(out_base, SECP256K1_PUB_TAG + uncompressed)


def serialize_legacy_key(key: str) -> str:
    """status-go ``SerializeLegacyKey``: ``0x04...`` (132 characters) to the zQ3 form.

    Like status-go, only the length is checked before the first four characters are replaced by the tag.
    """
    if len(key) != LEGACY_KEY_LEN:
        raise InvalidKeyLength()
    return serialize_public_key("0xe70104" + key[4:], "z")


def decode_compressed_key(key: str) -> bytes:
    """The 65-byte uncompressed point of a multibase/multicodec compressed key such as ``zQ3sh...``."""
    return _point(_key_body(key), COMPRESSED_LEN)


def deserialize_compressed_key(key: str) -> str:
    """status-go ``DeserializeCompressedKey``: zQ3 (or other multibase form) to ``0x04...`` hex."""
    return "0x" + decode_compressed_key(key).hex()


def deserialize_and_compress_key(key: str) -> str:
    """status-go ``DeserializeAndCompressKey``: zQ3 (or other multibase form) to ``0x02.../0x03...`` hex."""
    uncompressed = _point(_key_body(key), COMPRESSED_LEN)
    return "0x" + parse_public_key(uncompressed).format(compressed=True).hex()
