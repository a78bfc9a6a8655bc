"""``packaging/build.sh`` builds the one-folder app and its frozen ``sottovoce`` runs: ``--help``,
``conformance`` on the status-go vectors, the bundled relay and zbar are in place, and ``gui --smoke`` shows
a window offscreen; ``share/`` holds the desktop entry, AppStream file and icons a package installs.

The build takes 16-40 s on the 2-core machine (it prints the time and size), so it runs in the suite: a module
that PyInstaller does not see (an import by name) shows up here, not in a user's hands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.transport.relay import RelayProcess
from resources import APP_ICON_SIZES, APP_ID
from tests.integration.nats_fixtures import nats_relay, requires_nats  # noqa: F401  (pytest fixture)
from tests.packaging.support import PACKAGING, REPO

VECTORS = REPO.parent / "shared" / "vectors" / "status-go"


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``dist/sottovoce/sottovoce`` built into a temporary folder (removed afterwards)."""
    if importlib_missing("PyInstaller") or shutil.which("bash") is None:
        pytest.skip("PyInstaller not installed (the dev extra)")
    work = tmp_path_factory.mktemp("pyinstaller")
    started = time.perf_counter()
    env = {**os.environ, "PYTHON": sys.executable, "DIST": str(work / "dist"), "WORK": str(work / "build")}
    result = subprocess.run(["bash", str(PACKAGING / "build.sh")], capture_output=True, text=True, cwd=str(REPO),
                            env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    app = work / "dist" / "sottovoce"
    size_mb = sum(f.lstat().st_size for f in app.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20
    print(f"\npyinstaller: one-folder build in {time.perf_counter() - started:.1f} s, {size_mb:.0f} MiB")
    yield app / "sottovoce"
    shutil.rmtree(work, ignore_errors=True)


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


def _run(exe: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})}, cwd=str(exe.parent))


def test_frozen_app_lists_its_commands(frozen: Path) -> None:
    result = _run(frozen, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("init", "send", "listen", "relay", "conformance"):
        assert f"\n    {command} " in result.stdout, result.stdout


def test_frozen_app_passes_the_status_go_vectors(frozen: Path) -> None:
    files = sorted(str(p) for p in VECTORS.glob("*.json"))
    if not files:
        pytest.skip(f"no vector files in {VECTORS}")
    result = _run(frozen, "conformance", *files)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].endswith(" passed, 0 failed")


def test_frozen_app_finds_its_bundled_relay_and_zbar(frozen: Path) -> None:
    probe = _run(frozen, "relay", "--help")
    assert probe.returncode == 0, probe.stderr
    internal = frozen.parent / "_internal"
    assert os.access(internal / "bin" / "nats-server", os.X_OK)
    assert any(internal.glob("libzbar.so*"))
    assert (internal / "resources" / "icons" / "send.svg").is_file()
    assert (internal / "engine" / "identity" / "data").is_dir()


@requires_nats
def test_frozen_app_chats_through_a_relay_after_reading_a_qr_code(frozen: Path, nats_relay: RelayProcess,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """Two profiles of the frozen CLI: a contact added from a QR image (pyzbar on the bundled libzbar), one
    message through a relay on 127.0.0.1 and the whole engine."""
    env = {"SOTTOVOCE_PASSPHRASE": "frozen test", "SOTTOVOCE_DATA_DIR": str(tmp_path / "data")}

    def sv(profile: str, *args: str) -> str:
        result = _run(frozen, "--profile", str(tmp_path / profile), "--transport", nats_relay.url, *args, env=env)
        assert result.returncode == 0, f"sottovoce {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    sv("alice", "init", "--name", "alice")
    sv("bob", "init", "--name", "bobby")
    qr = tmp_path / "bob.png"
    sv("bob", "code", "--qr", str(qr))
    sv("alice", "contacts", "add", "--qr", str(qr), "--name", "bob")
    sv("alice", "send", "bob", "hello from the frozen app")
    received = json.loads(sv("bob", "listen", "--json", "--count", "1").strip().splitlines()[-1])
    assert received["text"] == "hello from the frozen app" and received["pfs"] is True


def test_build_lays_out_what_a_package_installs(frozen: Path) -> None:
    share = frozen.parent / "share"
    app_id = APP_ID
    assert (share / "applications" / f"{app_id}.desktop").read_bytes() == (PACKAGING / f"{app_id}.desktop").read_bytes()
    assert (share / "metainfo" / f"{app_id}.metainfo.xml").is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / f"{app_id}.svg").is_file()
    sizes = {p.parent.parent.name for p in (share / "icons" / "hicolor").glob(f"*/apps/{app_id}.png")}
    assert sizes == {f"{n}x{n}" for n in APP_ICON_SIZES}


def test_frozen_gui_smoke_shows_a_window(frozen: Path, tmp_path: Path) -> None:
    if not (REPO / "app" / "gui.py").exists():
        pytest.skip("app/gui.py not there yet")
    result = _run(frozen, "--profile", str(tmp_path / "profile"), "gui", "--smoke",
                  env={"QT_QPA_PLATFORM": "offscreen", "SOTTOVOCE_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = [line for line in result.stdout.splitlines() if line.startswith("window_ms=")]
    assert figures, result.stdout
    print(f"\nfrozen gui --smoke: {figures[-1]}")
