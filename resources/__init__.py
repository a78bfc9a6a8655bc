"""Sottovoce's bundled resources: the application icon and the UI's line icons (no Qt import here).

Application icon
    ``sottovoce.svg`` (the master drawing) and PNGs rendered from it by ``packaging/render_icons.py`` at
    :data:`APP_ICON_SIZES`, laid out as a freedesktop ``hicolor`` theme under ``hicolor/<N>x<N>/apps/``
    (``app_icon_svg()``, ``app_icon_png(size)``; :data:`APP_ID` is the desktop/AppStream id and file name).

UI icons (``icons/<name>.svg``, 24 x 24, 2 px round strokes in ``currentColor``)
    ``add-contact``, ``camera``, ``clipboard``, ``delivered`` (double tick), ``devices``, ``lock``
    (forward secret), ``no-forward-secrecy`` (open lock), ``qr``, ``queued`` (clock), ``screen-region``,
    ``search``, ``send``, ``sent`` (single tick), ``settings``, ``tray`` (the app's mark for the system tray;
    the unread badge is drawn over it at run time), ``verified``, ``warning``.

    ``icon_path(name)`` gives the file; ``icon_svg(name, color)`` gives the SVG with ``currentColor`` replaced
    (Qt's SVG renderer draws ``currentColor`` black), for a light or dark palette::

        QIcon(QPixmap.fromImage(QImage.fromData(icon_svg("send", "#e8eaf0"), "SVG")))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from engine.errors import SottovoceError

__all__ = [
    "APP_ICON_SIZES",
    "APP_ID",
    "ICON_NAMES",
    "RESOURCES_DIR",
    "InvalidIconColor",
    "UnknownIcon",
    "app_icon_png",
    "app_icon_svg",
    "icon_path",
    "icon_svg",
]

RESOURCES_DIR: Final = Path(__file__).resolve().parent
APP_ID: Final = "io.github.sottovoce.Sottovoce"
"""Reverse-DNS application id: the .desktop file's and AppStream component's name, and the icon name."""
APP_ICON_SIZES: Final = (16, 24, 32, 48, 64, 128, 256, 512)
ICON_NAMES: Final = frozenset({
    "add-contact", "camera", "clipboard", "delivered", "devices", "lock", "no-forward-secrecy", "qr", "queued",
    "screen-region", "search", "send", "sent", "settings", "tray", "verified", "warning",
})

_COLOR = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?(?:[0-9a-fA-F]{2})?|[a-zA-Z]{3,20}")


class UnknownIcon(SottovoceError):
    code = "unknown_icon"
    default_message = "no such icon"


class InvalidIconColor(SottovoceError):
    code = "invalid_icon_color"
    default_message = "not a colour"


def app_icon_svg() -> Path:
    """The application icon's master SVG."""
    return RESOURCES_DIR / "sottovoce.svg"


def app_icon_png(size: int) -> Path:
    """The application icon rendered at ``size`` x ``size`` pixels (one of :data:`APP_ICON_SIZES`)."""
    if size not in APP_ICON_SIZES:
        raise UnknownIcon(f"no {size} px application icon (sizes: {', '.join(map(str, APP_ICON_SIZES))})")
    return RESOURCES_DIR / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def icon_path(name: str) -> Path:
    """The SVG file of UI icon ``name`` (one of :data:`ICON_NAMES`); ``UnknownIcon`` otherwise."""
    if name not in ICON_NAMES:
        raise UnknownIcon(f"no icon called {name!r}")
    return RESOURCES_DIR / "icons" / f"{name}.svg"


def icon_svg(name: str, color: str = "#000000") -> bytes:
    """UI icon ``name`` as SVG bytes drawn in ``color`` (``#rgb``, ``#rrggbb``, ``#rrggbbaa`` or a CSS name)."""
    if not _COLOR.fullmatch(color):
        raise InvalidIconColor(f"not a colour: {color!r}")
    return icon_path(name).read_bytes().replace(b"currentColor", color.encode("ascii"))
