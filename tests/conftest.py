"""Shared test helpers: where the shared vectors live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors" / "status-go"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"the shared vectors are missing: expected {VECTORS} (clone with ../shared beside the repo)")
    return VECTORS
