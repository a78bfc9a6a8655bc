"""status-go's own vectors, run through ``sottovoce conformance`` and the runner behind it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from engine.conformance import run_file


def test_every_encryption_vector_passes(vectors_dir: Path) -> None:
    result = run_file(vectors_dir / "status-go-vectors.json")
    failures = [f"{r.case_id}: {r.reason}" for r in result.results if not r.ok]
    assert failures == []
    assert result.passed == len(json.loads((vectors_dir / "status-go-vectors.json").read_text())["cases"])


def test_cli_prints_closing_line_and_exit_code(vectors_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", str(vectors_dir / "status-go-vectors.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "59 passed, 0 failed"


def test_unknown_case_type_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vector_file = tmp_path / "v.json"
    vector_file.write_text(json.dumps({"cases": [{"id": "mystery-1", "type": "mystery"}]}))
    assert main(["conformance", str(vector_file)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["FAIL mystery-1: unknown case type 'mystery'", "0 passed, 1 failed"]


def test_a_wrong_expectation_fails_with_reason(vectors_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads((vectors_dir / "status-go-vectors.json").read_text())
    case = next(c for c in document["cases"] if c["type"] == "conversation")
    deliver = next(e for e in case["events"] if e["op"] == "deliver")
    deliver["expect"]["plaintext"] = "00" + deliver["expect"]["plaintext"]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({"cases": [case]}))
    assert main(["conformance", str(tampered)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"FAIL {case['id']}: event ") and "plaintext" in out[0]
    assert out[-1] == "0 passed, 1 failed"


def test_unreadable_file_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["conformance", str(broken)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 passed, 1 failed"
