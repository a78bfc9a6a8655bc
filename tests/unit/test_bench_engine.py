"""Smoke test of ``sottovoce bench engine`` at a tiny size: it runs on its own relay and reports every figure
(no timing checks: speed is judged by the benchmark's ratios, never by a test)."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from tests.integration.nats_fixtures import requires_nats

pytestmark = [requires_nats, pytest.mark.timeout(120)]

PROFILE_KEYS = {
    "messages", "msg_per_s", "us_per_msg", "p50_ms", "p99_ms", "transport_floor_us", "transport_floor_msg_per_s",
    "transport_floor_p50_ms", "transport_floor_p99_ms", "ratchet_floor_us", "commit_floor_us", "floor_us", "ratio",
    "least_us",
}  # fmt: skip
EXPECTED_KEYS = {"rounds", "envelope_bytes", "fsync_us", "durable_per_message", "signatures_us"} | {
    f"{profile}_{key}" for profile in ("one_way", "ping_pong", "concurrent") for key in PROFILE_KEYS
}


def test_bench_engine_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "engine", "--json", "--messages", "20", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == EXPECTED_KEYS
    assert figures["rounds"] == 1
    assert figures["one_way_messages"] == figures["ping_pong_messages"] == figures["concurrent_messages"] == 20
    for name, value in figures.items():
        assert isinstance(value, int | float) and value > 0, name
    assert lines[0].startswith("engine:")
    for name in ("one way:", "ping-pong:", "concurrent:"):
        assert any(name in line for line in lines), name
