"""The legacy 5x5 identicon status-go still attaches to messages (identity spec section 8)."""

from __future__ import annotations

import base64
import colorsys
import hashlib
import struct
import zlib
from dataclasses import dataclass

GRID = 5
CELL = 6
MARGIN = 10
SIZE = 50


@dataclass(frozen=True, slots=True)
class Identicon:
    """The 25 pattern bytes (row-major), which cells are filled, and the fill colour as 8-bit RGB."""

    pattern: tuple[int, ...]
    filled: tuple[bool, ...]
    color: tuple[int, int, int]


def identicon(text: str) -> Identicon:
    """The identicon of a key *string* (in practice the ``0x04...`` lower-case hex), not of its bytes."""
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    pattern = tuple(digest[3 * row + (col if col <= 2 else 4 - col)] for row in range(GRID) for col in range(GRID))
    hue = (digest[13] + digest[14] + digest[15]) / 765 * 360
    red, green, blue = colorsys.hls_to_rgb(hue / 360, 0.7, 0.5)
    color = (_channel(red), _channel(green), _channel(blue))
    return Identicon(pattern, tuple(b % 2 == 0 for b in pattern), color)


def _channel(value: float) -> int:
    return int(value * 65535 + 0.5) >> 8


def identicon_rgba(icon: Identicon) -> bytes:
    """The 50x50 RGBA picture, row by row: transparent, with a 6x6 square per filled cell."""
    pixels = bytearray(SIZE * SIZE * 4)
    fill = bytes((*icon.color, 255))
    for index, filled in enumerate(icon.filled):
        if not filled:
            continue
        left, top = MARGIN + CELL * (index % GRID), MARGIN + CELL * (index // GRID)
        for y in range(top, top + CELL):
            start = (y * SIZE + left) * 4
            pixels[start : start + CELL * 4] = fill * CELL
    return bytes(pixels)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def identicon_png(icon: Identicon) -> bytes:
    """The picture as PNG (8-bit RGBA). Bytes differ from status-go's encoder; pixels are the same."""
    rgba = identicon_rgba(icon)
    rows = b"".join(b"\0" + rgba[y * SIZE * 4 : (y + 1) * SIZE * 4] for y in range(SIZE))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def identicon_data_url(text: str) -> str:
    """``data:image/png;base64,...`` as status-go puts in the ``identicon`` JSON field."""
    return "data:image/png;base64," + base64.b64encode(identicon_png(identicon(text))).decode("ascii")
