"""Reading QR codes: one decoding path for image files, the clipboard, a screen region and camera frames.

Every source ends in :func:`scan_image` (encoded image bytes) or :func:`scan_qimage` (a ``QImage``, e.g. a
camera frame), which run pyzbar through :func:`engine.codes.decode_qr_image` and the code parser in a worker
thread, never on the Qt thread. :class:`CameraScanner` feeds it frames from QtMultimedia (imported only when a
camera is opened); :class:`RegionPicker` lets the user drag a rectangle over a grab of the screen.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QMouseEvent, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.codes import (
    CodeError,
    ContactCodeInfo,
    PairingCodeInfo,
    read_code_text_from_image,
)

from .tasks import background

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sottovoce-qr")


@dataclass(frozen=True, slots=True)
class ScannedCode:
    """A valid code read from a QR: its text (give it to the Messenger) and what it says."""

    text: str
    info: ContactCodeInfo | PairingCodeInfo

    @property
    def is_pairing(self) -> bool:
        return isinstance(self.info, PairingCodeInfo)


def decode_code(data: bytes) -> ScannedCode:
    """The first valid Sottovoce code in an image (blocking: call it off the Qt thread)."""
    return ScannedCode(*read_code_text_from_image(data, time.time_ns()))


async def scan_image(data: bytes) -> ScannedCode:
    """:func:`decode_code` in the worker thread."""
    return await asyncio.get_running_loop().run_in_executor(_executor, decode_code, data)


def qimage_bytes(image: QImage) -> bytes:
    """A ``QImage`` as uncompressed grey BMP bytes (cheap to make on the Qt thread, decoded elsewhere)."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    if grey.width() > 1600:
        grey = grey.scaledToWidth(1600, Qt.TransformationMode.SmoothTransformation)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    grey.save(buffer, "BMP")  # type: ignore[call-overload]
    buffer.close()
    return bytes(data.data())


async def scan_qimage(image: QImage) -> ScannedCode:
    """A frame or picture already in memory, through the same path as files."""
    return await scan_image(qimage_bytes(image))


def clipboard_image() -> QImage | None:
    image = QGuiApplication.clipboard().image()
    return None if image.isNull() else image


class CameraScanner(QWidget):
    """A live camera preview that reads each new frame while no other frame is being decoded.

    ``found(ScannedCode)`` fires once for the first valid code; ``failed(str)`` when no camera can be used.
    Frames can also be fed directly with :meth:`feed_frame` (tests, or a frame source of one's own).
    """

    found = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = QLabel("Starting the camera…")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(320, 240)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preview)
        self._busy = False
        self._done = False
        self._camera: Any = None
        self._session: Any = None
        self._sink: Any = None
        self.frames_decoded = 0

    def start(self) -> None:
        try:
            from PySide6.QtMultimedia import QCamera, QMediaCaptureSession, QMediaDevices, QVideoSink
        except ImportError as exc:  # QtMultimedia loads libpulse (Debian: libpulse0) even for a camera
            self.preview.setText("Camera support is not installed. Use an image file, the clipboard or a screen "
                                 "region.")
            self.failed.emit(f"the camera cannot be used here: {exc}")
            return

        device = QMediaDevices.defaultVideoInput()
        if device.isNull():
            self.preview.setText("No camera found. Use an image file, the clipboard or a screen region.")
            self.failed.emit("no camera found")
            return
        self._camera = QCamera(device)
        self._session = QMediaCaptureSession()
        self._sink = QVideoSink()
        self._session.setCamera(self._camera)
        self._session.setVideoSink(self._sink)
        self._sink.videoFrameChanged.connect(self.feed_frame)
        self._camera.errorOccurred.connect(lambda _e, text: self.failed.emit(text or "the camera failed"))
        self._camera.start()

    def stop(self) -> None:
        if self._camera is not None:
            self._camera.stop()
        self._camera = self._session = self._sink = None

    def feed_frame(self, frame: Any) -> None:
        """A ``QVideoFrame`` or ``QImage``: shown, and decoded unless a decode is in flight."""
        image = frame if isinstance(frame, QImage) else frame.toImage()
        if image.isNull() or self._done:
            return
        self.preview.setPixmap(QPixmap.fromImage(image).scaled(self.preview.size(),
                                                                Qt.AspectRatioMode.KeepAspectRatio))
        if self._busy:
            return
        self._busy = True
        background(self._decode(image))

    async def _decode(self, image: QImage) -> None:
        try:
            code = await scan_qimage(image)
        except CodeError:
            return
        finally:
            self._busy = False
            self.frames_decoded += 1
        if not self._done:
            self._done = True
            self.stop()
            self.found.emit(code)


class RegionPicker(QWidget):
    """A full-screen grab on which the user drags a rectangle; ``picked(QImage)`` gives that part."""

    picked = Signal(QImage)
    cancelled = Signal()

    def __init__(self, shot: QPixmap | None = None) -> None:
        super().__init__(None, Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint)
        if shot is None:
            screen = QGuiApplication.primaryScreen()
            shot = screen.grabWindow(0) if screen is not None else QPixmap()
        self.shot = shot
        self._origin: QPoint | None = None
        self._rect = QRect()
        self.setCursor(Qt.CursorShape.CrossCursor)
        ratio = max(1.0, shot.devicePixelRatio())
        self.resize(int(shot.width() / ratio), int(shot.height() / ratio))

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.drawPixmap(self.rect(), self.shot)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 110))
        if not self._rect.isNull():
            ratio = self.shot.width() / max(1, self.width())
            source = QRect(int(self._rect.x() * ratio), int(self._rect.y() * ratio), int(self._rect.width() * ratio),
                           int(self._rect.height() * ratio))
            painter.drawPixmap(self._rect, self.shot, source)
            painter.setPen(QColor("#4c8dff"))
            painter.drawRect(self._rect)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(self.rect().adjusted(0, 20, 0, 0), Qt.AlignmentFlag.AlignHCenter,
                         "Drag a rectangle around the QR code · Esc to cancel")
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._origin = event.position().toPoint()
        self._rect = QRect(self._origin, self._origin)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._origin is not None:
            self._rect = QRect(self._origin, event.position().toPoint()).normalized()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._origin is None:
            return
        self.select(QRect(self._origin, event.position().toPoint()).normalized())

    def select(self, rect: QRect) -> None:
        """Pick ``rect`` (widget coordinates) and close."""
        ratio = self.shot.width() / max(1, self.width())
        source = QRect(int(rect.x() * ratio), int(rect.y() * ratio), int(rect.width() * ratio),
                       int(rect.height() * ratio))
        image = self.shot.copy(source).toImage() if rect.width() > 8 and rect.height() > 8 else QImage()
        self.close()
        if image.isNull():
            self.cancelled.emit()
        else:
            self.picked.emit(image)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            self.cancelled.emit()
