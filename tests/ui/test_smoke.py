"""``sottovoce gui --smoke`` as a user runs it: a new profile, the first window shown and painted, window_ms printed.

The figure is printed for the record (speed targets are read from printed figures, not asserted on time)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gui_smoke_paints_the_onboarding_window_and_prints_window_ms(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SOTTOVOCE_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "app", "--profile", str(tmp_path / "new"), "gui", "--smoke"],
                            capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"window_ms=(\d+)", result.stdout.strip())
    assert match, result.stdout
    print(f"\ngui --smoke on a new profile: window_ms={match.group(1)} (target <= 1500)")
    assert not (tmp_path / "new").exists()  # showing onboarding creates nothing
