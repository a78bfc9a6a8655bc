"""Render the application icon's PNGs from ``resources/sottovoce.svg`` with QtSvg (no other dependency).

    .venv/bin/python packaging/render_icons.py          # writes resources/icons/hicolor/<N>x<N>/apps/*.png

The PNGs are committed; run this again after editing the SVG. It works headless (``QT_QPA_PLATFORM=offscreen``
is set when no platform is chosen).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from resources import APP_ICON_SIZES, app_icon_png, app_icon_svg  # noqa: E402


def render(svg: Path, size: int, out: Path) -> None:
    """Draw ``svg`` into a transparent ``size`` x ``size`` PNG at ``out``."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"render_icons: cannot write {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(APP_ICON_SIZES), metavar="N")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # QImage text/format plugins want an application
    for size in args.sizes:
        out = app_icon_png(size)
        render(app_icon_svg(), size, out)
        print(f"{out.relative_to(REPO)}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
