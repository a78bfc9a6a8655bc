"""The application icon's PNGs exist at every size, are square, match their size and the SVG they come from;
every UI icon the resources module names exists, is a 24 x 24 line drawing in ``currentColor`` and renders."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import resources
from resources import (
    APP_ICON_SIZES,
    ICON_NAMES,
    InvalidIconColor,
    UnknownIcon,
    app_icon_png,
    app_icon_svg,
    icon_path,
    icon_svg,
)
from tests.packaging.support import load_script

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.parametrize("size", APP_ICON_SIZES)
def test_app_icon_png_is_square_at_its_nominal_size(size: int) -> None:
    path = app_icon_png(size)
    assert path.is_file(), f"{path} missing: run packaging/render_icons.py"
    assert path.parent.parent.name == f"{size}x{size}"
    assert png_size(path) == (size, size)


def test_app_icon_sizes_cover_the_usual_hicolor_sizes() -> None:
    assert {16, 24, 32, 48, 64, 128, 256, 512} <= set(APP_ICON_SIZES)
    on_disk = {p.parent.parent.name for p in (resources.RESOURCES_DIR / "hicolor").rglob("*.png")}
    assert on_disk == {f"{s}x{s}" for s in APP_ICON_SIZES}


def test_app_icon_pngs_are_rendered_from_the_current_svg(qapp: object, tmp_path: Path) -> None:
    """Editing the SVG without running packaging/render_icons.py fails here."""
    from PySide6.QtGui import QImage

    render_icons = load_script("render_icons.py")
    for size in (16, 64, 512):
        fresh = tmp_path / f"{size}.png"
        render_icons.render(app_icon_svg(), size, fresh)
        committed = QImage(str(app_icon_png(size))).convertToFormat(QImage.Format.Format_ARGB32)
        rendered = QImage(str(fresh)).convertToFormat(QImage.Format.Format_ARGB32)
        assert committed == rendered, f"{app_icon_png(size)} is stale: run packaging/render_icons.py"


def test_every_named_ui_icon_exists_and_nothing_else_is_there() -> None:
    on_disk = {p.stem for p in (resources.RESOURCES_DIR / "icons").glob("*.svg")}
    assert on_disk == set(ICON_NAMES)


@pytest.mark.parametrize("name", sorted(ICON_NAMES))
def test_ui_icon_is_a_24px_line_drawing_in_current_color_that_renders(qapp: object, name: str) -> None:
    from PySide6.QtCore import QByteArray
    from PySide6.QtSvg import QSvgRenderer

    text = icon_path(name).read_text()
    assert 'viewBox="0 0 24 24"' in text
    assert "currentColor" in text
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b", text), "UI icons take their colour from the palette"
    renderer = QSvgRenderer(QByteArray(icon_svg(name, "#123456")))
    assert renderer.isValid()
    assert renderer.defaultSize().width() == renderer.defaultSize().height() == 24


def test_icon_svg_replaces_current_color() -> None:
    svg = icon_svg("send", "#e8eaf0")
    assert b"currentColor" not in svg and b"#e8eaf0" in svg


def test_unknown_icon_and_bad_colour_are_typed_errors() -> None:
    with pytest.raises(UnknownIcon):
        icon_path("../sottovoce")
    with pytest.raises(UnknownIcon):
        app_icon_png(20)
    with pytest.raises(InvalidIconColor):
        icon_svg("send", '"/><script/>')
