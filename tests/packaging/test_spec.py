"""The PyInstaller spec runs (with PyInstaller's build steps recorded, not executed) and names inputs that exist;
its runtime hook makes the bundled nats-server and libzbar findable."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.packaging.support import PACKAGING, REPO

SPEC = PACKAGING / "sottovoce.spec"
HOOK = PACKAGING / "pyi_rth_sottovoce.py"


class _Step:
    """Stands for Analysis/PYZ/EXE/COLLECT: records its arguments."""

    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls[type(self).__name__] = (args, kwargs)
        self.pure: list[Any] = []
        self.scripts: list[Any] = []
        self.binaries: list[Any] = []
        self.datas: list[Any] = []


def run_spec() -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    steps = {name: type(name, (_Step,), {"calls": calls}) for name in ("Analysis", "PYZ", "EXE", "COLLECT")}
    namespace: dict[str, Any] = {"__name__": "__main__", "SPECPATH": str(PACKAGING), **steps}
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return calls


def test_spec_builds_a_one_folder_sottovoce_from_inputs_that_exist() -> None:
    calls = run_spec()
    (scripts,), analysis = calls["Analysis"]
    assert [Path(s) for s in scripts] == [REPO / "app" / "__main__.py"]
    for source, _ in analysis["datas"]:
        assert glob.glob(source), f"spec data {source} matches nothing"
    dests = {dest for _, dest in analysis["datas"]}
    assert {"engine/identity/data", "resources", "resources/icons"} <= dests
    assert any(d.startswith("resources/hicolor/") for d in dests)
    binaries = {Path(src).name: dest for src, dest in analysis["binaries"]}
    assert binaries.get("nats-server") == "bin"
    assert any(name.startswith("libzbar") for name in binaries)
    for src, _ in analysis["binaries"]:
        assert os.access(src, os.R_OK), src
    assert all(Path(h).is_file() for h in analysis["runtime_hooks"])
    hidden = set(analysis["hiddenimports"])
    assert {"app.cli", "app.commands", "engine.messenger", "PySide6.QtSvg", "PySide6.QtMultimedia"} <= hidden
    if (REPO / "app" / "gui.py").exists():
        assert "app.gui" in hidden
    exe_kwargs = calls["EXE"][1]
    assert exe_kwargs["name"] == "sottovoce" and exe_kwargs["exclude_binaries"] is True  # one folder, not one file
    assert calls["COLLECT"][1]["name"] == "sottovoce"


def test_runtime_hook_points_at_the_bundled_relay_and_zbar(tmp_path: Path) -> None:
    bundle = tmp_path / "_internal"
    (bundle / "bin").mkdir(parents=True)
    (bundle / "libzbar.so.0").write_bytes(b"")
    probe = textwrap.dedent(f"""
        import ctypes.util, os, runpy, sys
        sys._MEIPASS = {str(bundle)!r}
        runpy.run_path({str(HOOK)!r})
        print(ctypes.util.find_library("zbar"))
        print(os.environ["PATH"].split(os.pathsep)[0])
        print(ctypes.util.find_library("c") is not None)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    assert out == [str(bundle / "libzbar.so.0"), str(bundle / "bin"), "True"]
