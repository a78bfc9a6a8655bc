"""Helpers of the packaging tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def load_script(name: str) -> ModuleType:
    """A script of ``packaging/`` as a module (the folder is not a package: ``packaging`` is a PyPI library)."""
    path = PACKAGING / name
    spec = importlib.util.spec_from_file_location(f"sottovoce_packaging_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
