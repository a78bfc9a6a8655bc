"""``sottovoce bench engine --two-processes`` at a tiny size: Bob runs in a child process that reports every
message he received, the extra figure is printed beside the issue's, and no process is left behind (no timing
checks: speed is judged by the benchmark's figures, never by a test)."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from app.cli import main
from tests.integration.nats_fixtures import requires_nats

pytestmark = [requires_nats, pytest.mark.timeout(180)]

TWO_PROCESS_KEYS = {f"two_processes_one_way_{key}" for key in ("msg_per_s", "us_per_msg", "p50_ms", "p99_ms")}


def test_two_processes_adds_its_figure_and_leaves_no_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "engine", "--json", "--messages", "20", "--repeat", "1", "--two-processes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) >= TWO_PROCESS_KEYS  # without the option there are none: test_bench_engine.py
    for key in TWO_PROCESS_KEYS:
        assert figures[key] > 0, key
    extra = [line for line in lines if "process of his own" in line]
    assert len(extra) == 1 and "extra figure, not the issue's" in extra[0]
    assert any("one way:" in line and "(target <= 1.50x)" in line for line in lines)  # the line, as is
    assert multiprocessing.active_children() == []

