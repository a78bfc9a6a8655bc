"""Colours, fonts and the style sheet of the app, light or dark as the system says; icons from ``resources/``.

Nothing here knows about the engine. :func:`palette` is read by the delegates that paint by hand (bubbles,
avatars), :func:`style_sheet` styles the widgets, :func:`icon` loads a line icon tinted for the theme (an empty
icon when the resource is missing, so the app still runs without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from PySide6.QtCore import QBuffer, QByteArray, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QImageReader, QPixmap


@dataclass(frozen=True, slots=True)
class Palette:
    dark: bool
    window: str
    sidebar: str
    panel: str
    text: str
    muted: str
    accent: str
    accent_text: str
    bubble_in: str
    bubble_out: str
    bubble_out_text: str
    border: str
    selection: str
    danger: str
    warning_bg: str
    unread: str


LIGHT = Palette(False, "#ffffff", "#f3f4f7", "#fafbfc", "#1b1d23", "#6b7180", "#2f6feb", "#ffffff",
                "#eef0f4", "#2f6feb", "#ffffff", "#e1e4ea", "#dde7fb", "#d93a3a", "#fff4d6", "#2f6feb")
DARK = Palette(True, "#17191e", "#1f2228", "#1b1d22", "#e8eaf0", "#9aa1b1", "#4c8dff", "#ffffff",
               "#2a2e36", "#3a6fd8", "#ffffff", "#2d3139", "#2a3a5c", "#ff6b6b", "#3b3320", "#4c8dff")


def system_is_dark() -> bool:
    """What the desktop asks for (``QStyleHints.colorScheme``); light when it does not say."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    return bool(QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark)


_current: list[Palette] = []


def palette() -> Palette:
    """The palette in force (set by :func:`apply`), else the system's."""
    return _current[-1] if _current else (DARK if system_is_dark() else LIGHT)


def apply(app: QGuiApplication, dark: bool | None = None) -> Palette:
    """Style ``app`` for the system's scheme (or the one forced by ``dark``); returns the palette used."""
    chosen = (DARK if dark else LIGHT) if dark is not None else (DARK if system_is_dark() else LIGHT)
    _current[:] = [chosen]
    set_sheet = getattr(app, "setStyleSheet", None)
    if set_sheet is not None:
        set_sheet(style_sheet(chosen))
    icon.cache_clear()
    return chosen


def style_sheet(p: Palette) -> str:
    return f"""
    QWidget {{ color: {p.text}; font-size: 10.5pt; }}
    QMainWindow, QDialog, #Page {{ background: {p.window}; }}
    #Sidebar {{ background: {p.sidebar}; border-right: 1px solid {p.border}; }}
    #SidebarHeader {{ font-size: 13pt; font-weight: 600; }}
    #ChatHeader {{ background: {p.window}; border-bottom: 1px solid {p.border}; }}
    #ChatTitle {{ font-size: 12pt; font-weight: 600; }}
    #Muted, QLabel[muted="true"] {{ color: {p.muted}; }}
    #Title {{ font-size: 17pt; font-weight: 600; }}
    #Banner {{ background: {p.warning_bg}; border-radius: 8px; padding: 8px 12px; }}
    #Danger {{ color: {p.danger}; font-weight: 600; }}
    #Emoji {{ font-size: 20pt; }}
    #Phrase {{ font-family: monospace; font-size: 13pt; background: {p.panel}; border: 1px solid {p.border};
               border-radius: 8px; padding: 12px; }}
    QListView, QListWidget, QTableWidget {{ background: transparent; border: none; outline: 0; }}
    QListView::item:selected, QListWidget::item:selected {{ background: {p.selection}; color: {p.text}; }}
    QLineEdit, QPlainTextEdit, QTextEdit, QComboBox {{ background: {p.panel}; border: 1px solid {p.border};
               border-radius: 8px; padding: 6px 8px; selection-background-color: {p.accent}; }}
    QLineEdit:focus, QPlainTextEdit:focus {{ border-color: {p.accent}; }}
    QPushButton {{ background: {p.panel}; border: 1px solid {p.border}; border-radius: 8px; padding: 6px 14px; }}
    QPushButton:hover {{ border-color: {p.accent}; }}
    QPushButton[primary="true"] {{ background: {p.accent}; color: {p.accent_text}; border: none;
               font-weight: 600; }}
    QPushButton[danger="true"] {{ background: {p.danger}; color: #ffffff; border: none; font-weight: 600; }}
    QToolButton {{ border: none; border-radius: 8px; padding: 6px; }}
    QToolButton:hover, QToolButton:checked {{ background: {p.selection}; }}
    QStatusBar {{ background: {p.sidebar}; color: {p.muted}; border-top: 1px solid {p.border}; }}
    QTabWidget::pane {{ border: none; }}
    QProgressBar {{ border: 1px solid {p.border}; border-radius: 4px; height: 8px; text-align: center; }}
    QProgressBar::chunk {{ background: {p.accent}; border-radius: 4px; }}
    """


@cache
def icon(name: str, color: str | None = None) -> QIcon:
    """Line icon ``name`` from ``resources/icons`` tinted ``color`` (default: the palette's text colour)."""
    try:
        from resources import icon_svg
    except ImportError:
        return QIcon()
    try:
        data = icon_svg(name, color or palette().text)
    except Exception:  # a missing or unknown icon: draw nothing rather than fail
        return QIcon()
    result = QIcon()
    for size in (24, 48, 96):  # rasterised sharp for 1x, 2x and 4x screens (HiDPI)
        buffer = QBuffer()
        buffer.setData(QByteArray(data))
        reader = QImageReader(buffer, QByteArray(b"svg"))
        reader.setScaledSize(QSize(size, size))
        image = reader.read()
        if not image.isNull():
            result.addPixmap(QPixmap.fromImage(image))
    return result


def app_icon() -> QIcon:
    """The application icon (SVG master, else the PNGs), empty when the resources are not there."""
    try:
        from resources import APP_ICON_SIZES, app_icon_png, app_icon_svg
    except ImportError:
        return QIcon()
    result = QIcon()
    svg = app_icon_svg()
    if svg.exists():
        result.addFile(str(svg))
    for size in APP_ICON_SIZES:
        path = app_icon_png(size)
        if path.exists():
            result.addFile(str(path))
    return result
