"""Smoke test of ``sottovoce bench store`` at tiny sizes: it runs and reports every figure (no timing checks)."""

from __future__ import annotations

import json

import pytest

from app.cli import main

EXPECTED_KEYS = {
    "sessions", "session_record_bytes", "skipped_keys_per_session", "load_sessions_per_s",
    "load_sessions_floor_per_s", "load_sessions_ratio", "load_sessions_read_share", "load_state_sessions_per_s",
    "load_state_floor_per_s", "load_state_ratio", "load_state_read_share", "load_sessions_ms", "load_state_ms",
    "read_floor_ms", "parse_floor_ms", "state_read_floor_ms", "state_parse_floor_ms", "messages", "text_bytes",
    "envelope_bytes", "db_bytes_a", "db_bytes_b", "db_bytes_a_per_10k", "db_bytes_b_per_10k", "db_a_text_ratio",
    "db_b_text_ratio", "db_a_envelope_ratio", "db_b_envelope_ratio", "timed_messages", "messages_per_s",
    "send_per_s", "publish_per_s", "receive_per_s", "unsynced_messages", "unsynced_messages_per_s",
}  # fmt: skip


def test_bench_store_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "store", "--json", "--sessions", "50", "--messages", "100", "--timed-messages", "40",
            "--repeat", "1"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == EXPECTED_KEYS
    assert figures["sessions"] == 50
    assert figures["messages"] == 100
    assert figures["timed_messages"] == 40
    assert figures["unsynced_messages"] == 60
    for name, value in figures.items():
        assert isinstance(value, int | float) and value > 0, name
    assert any(line.startswith("store:") for line in lines[:-1])
