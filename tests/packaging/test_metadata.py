"""The desktop entry and the AppStream metadata validate with the freedesktop tools and agree with the project."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from resources import APP_ID

REPO = Path(__file__).resolve().parents[2]
DESKTOP = REPO / "packaging" / f"{APP_ID}.desktop"
METAINFO = REPO / "packaging" / f"{APP_ID}.metainfo.xml"
SCREENSHOTS = REPO / "docs" / "screenshots"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian: desktop-file-utils, appstream)")
    return path


def test_desktop_entry_validates() -> None:
    result = subprocess.run([_tool("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True, check=False,
                            timeout=60)
    output = result.stdout + result.stderr
    bad = [line for line in output.splitlines() if "error:" in line or "warning:" in line]
    assert result.returncode == 0 and not bad, output


def test_metainfo_validates_without_errors_or_warnings() -> None:
    result = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", "--no-color", str(METAINFO)], check=False,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    bad = [line for line in output.splitlines() if line.startswith(("E:", "W:"))]
    assert result.returncode == 0 and not bad, output


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_launches_the_installed_command_with_the_app_icon() -> None:
    entry = _desktop_entry()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    command = entry["Exec"].split()
    assert command[0] in scripts and scripts[command[0]] == "app.cli:main"
    assert command[1:] == ["gui"]
    assert entry["Icon"] == APP_ID


def test_metainfo_names_this_app_its_launcher_license_and_current_release() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    launchable = root.find("launchable")
    assert launchable is not None and launchable.text == DESKTOP.name
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert root.findtext("project_license") == project["license"]
    releases = [r.get("version") for r in root.iter("release")]
    assert releases and releases[0] == project["version"], "newest <release> first, matching pyproject's version"
    assert root.find("content_rating") is not None


def test_screenshots_point_at_the_committed_images() -> None:
    images = [img.text or "" for img in ET.parse(METAINFO).getroot().iter("image")]
    assert images
    names = [url.rsplit("/", 1)[1] for url in images]
    assert all(url.startswith("https://") and "/docs/screenshots/" in url for url in images), images
    if not SCREENSHOTS.is_dir():
        pytest.skip("docs/screenshots/ not made yet (packaging/screenshots.py)")
    missing = [n for n in names if not (SCREENSHOTS / n).is_file()]
    assert not missing, f"metainfo names screenshots that docs/screenshots/ lacks: {missing}"
