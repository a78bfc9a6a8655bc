"""Small drawing pieces shared by the views: avatars with the colour-hash ring, QR images, emoji hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from engine.identity import RING_PALETTE

from . import theme

Ring = Sequence[tuple[int, int]]
_W = TypeVar("_W", bound=QWidget)

_AVATAR_COLORS = ("#5b8def", "#e0607e", "#47b39c", "#f0a04b", "#9b6ef3", "#d1567b", "#3fa7c9", "#7a9c3b")


def initials(name: str) -> str:
    words = [w for w in name.replace("_", " ").replace("-", " ").split() if w]
    if not words:
        return "?"
    return (words[0][0] + (words[1][0] if len(words) > 1 else "")).upper()


def paint_ring(painter: QPainter, rect: QRectF, ring: Ring, width: float) -> None:
    """The colour-hash ring (status-go's avatar ring): segments of ``units`` each in ``RING_PALETTE`` colours."""
    total = sum(units for units, _ in ring)
    if total <= 0:
        return
    inner = rect.adjusted(width / 2, width / 2, -width / 2, -width / 2)
    start = 90 * 16  # Qt angles: 1/16 degree, counter-clockwise from 3 o'clock; start at 12 o'clock
    for units, color in ring:
        span = -round(units * 360 * 16 / total)
        pen = QPen(QColor(RING_PALETTE[color % len(RING_PALETTE)]), width)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(pen)
        painter.drawArc(inner, start, span)
        start += span


def paint_avatar(painter: QPainter, rect: QRectF, name: str, ring: Ring | None, key: str = "") -> None:
    """A round avatar with the name's initials, inside the colour-hash ring when ``ring`` is given."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    ring_width = max(2.0, rect.width() / 11) if ring else 0.0
    if ring:
        paint_ring(painter, rect, ring, ring_width)
    inner = rect.adjusted(ring_width * 1.5, ring_width * 1.5, -ring_width * 1.5, -ring_width * 1.5)
    color = QColor(_AVATAR_COLORS[sum(map(ord, key or name)) % len(_AVATAR_COLORS)])
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(inner)
    font = QFont(painter.font())
    font.setPixelSize(max(8, int(inner.height() * 0.38)))
    font.setWeight(QFont.Weight.DemiBold)
    painter.setFont(font)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, initials(name))
    painter.restore()


class Avatar(QWidget):
    """An avatar of a fixed size (see :func:`paint_avatar`)."""

    def __init__(self, size: int = 40, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._name = ""
        self._key = ""
        self._ring: Ring | None = None
        self.setFixedSize(size, size)

    def set_identity(self, name: str, ring: Ring | None, key: str = "") -> None:
        self._name, self._ring, self._key = name, ring, key
        self.update()

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        paint_avatar(painter, QRectF(self.rect()).adjusted(1, 1, -1, -1), self._name, self._ring, self._key)
        painter.end()


class QrView(QLabel):
    """A QR code PNG shown large and crisp (scaled by whole modules, no smoothing)."""

    def __init__(self, size: int = 280, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._size = size
        self.png = b""
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFixedSize(QSize(size + 16, size + 16))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setStyleSheet("background: #ffffff; border-radius: 12px;")

    def set_png(self, png: bytes, code: str | None = None) -> None:
        """Show ``png`` (kept in :attr:`png` for saving); with ``code``, draw that text's QR at whole device
        pixels per module so that every module has the same size on screen (HiDPI included)."""
        from engine.codes import qr_png

        self.png = png
        pixmap = QPixmap()
        pixmap.loadFromData(QByteArray(qr_png(code, scale=1, border=2) if code else png), "PNG")  # type: ignore[call-overload]
        ratio = self.devicePixelRatioF()
        target = int(self._size * ratio)
        factor = max(1, target // max(1, pixmap.width())) if code else 0
        side = pixmap.width() * factor if factor else target
        scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
        scaled.setDevicePixelRatio(ratio)
        self.setPixmap(scaled)


def emoji_label(emojis: Sequence[str], parent: QWidget | None = None) -> QLabel:
    label = QLabel("".join(emojis), parent)
    label.setObjectName("Emoji")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def named(widget: _W, name: str) -> _W:
    widget.setObjectName(name)
    return widget


def muted(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setProperty("muted", True)
    label.setWordWrap(True)
    return label


def error_line(exc: BaseException) -> str:
    """One readable line for a user: a typed engine error's own text, else the exception's type and text."""
    from engine.errors import SottovoceError

    if isinstance(exc, SottovoceError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def accent_color() -> QColor:
    return QColor(theme.palette().accent)
