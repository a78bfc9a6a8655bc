"""tests/security/audit.sh: the verdicts of a real pip-audit against an OSV endpoint on 127.0.0.1.

No test here leaves the machine: the vulnerability source is ``osv_local`` over a folder of OSV records made
by the test (or a closed loopback port), and the lock audited is a two-package slice of requirements.lock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from engine.transport.relay import free_port
from tests.security.osv_local import affects, canonical

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
AUDIT = REPO / "tests" / "security" / "audit.sh"
LOCK = REPO / "requirements.lock"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def audit(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    pins = locked()
    slice_ = tmp_path / "slice.lock"
    slice_.write_text(f"cryptography=={pins['cryptography']}\npillow=={pins['pillow']}\n")
    return subprocess.run(["bash", str(AUDIT), str(slice_)], capture_output=True, text=True, timeout=100,
                          env={**os.environ, **env}, check=False)


def osv_record(vuln_id: str, name: str, introduced: str, fixed: str) -> dict[str, object]:
    return {"id": vuln_id, "summary": f"{vuln_id} summary", "affected": [{
        "package": {"name": name, "ecosystem": "PyPI"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": introduced}, {"fixed": fixed}]}]}]}


def database(tmp_path: Path, *records: dict[str, object]) -> str:
    folder = tmp_path / "osv"
    folder.mkdir()
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    return str(folder)


def test_a_known_vulnerability_in_a_locked_package_fails_with_1_and_is_named(tmp_path: Path) -> None:
    version = locked()["pillow"]
    db = database(tmp_path, osv_record("SOTTOVOCE-TEST-1", "pillow", "0", version + ".post1"),
                  osv_record("SOTTOVOCE-TEST-2", "Pillow", "0", "1.0"))  # fixed long ago: not reported
    result = audit(tmp_path, SOTTOVOCE_OSV_DB=db)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [f"pillow {version}: SOTTOVOCE-TEST-1 (fixed in: {version}.post1) "
                                          "SOTTOVOCE-TEST-1 summary"]


def test_every_package_checked_and_none_vulnerable_is_0(tmp_path: Path) -> None:
    result = audit(tmp_path, SOTTOVOCE_OSV_DB=database(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit: 2 locked packages checked against http://127.0.0.1:")


def test_an_unreachable_service_is_3_not_audited_never_clean(tmp_path: Path) -> None:
    result = audit(tmp_path, SOTTOVOCE_OSV_URL=f"http://127.0.0.1:{free_port()}/v1/query",
                   SOTTOVOCE_AUDIT_TIMEOUT="5")
    assert result.returncode == 3 and result.stdout == ""
    assert "NOT AUDITED" in result.stderr.splitlines()[0]


def test_a_package_pip_audit_cannot_check_is_3_not_audited(tmp_path: Path) -> None:
    """A lock line pip-audit cannot check (here: not pinned) is 'not audited', not 'vulnerable' (both are exit 1
    of pip-audit --strict). The PyPI service's "not found on PyPI" is the same verdict, checked by the script on
    pip-audit's report (plain pip-audit calls that case clean: "No known vulnerabilities found", exit 0)."""
    db = database(tmp_path)
    loose = tmp_path / "loose.lock"
    loose.write_text("pillow\n")
    result = subprocess.run(["bash", str(AUDIT), str(loose)], capture_output=True, text=True, timeout=100,
                            env={**os.environ, "SOTTOVOCE_OSV_DB": db}, check=False)
    assert result.returncode == 3 and "NOT AUDITED" in result.stderr


def test_the_osv_range_reading() -> None:
    record = osv_record("X", "Some_Package", "1.0", "1.4")
    assert [affects(record, "some-package", v) for v in ("0.9", "1.0", "1.3.9", "1.4", "2")] == [
        False, True, True, False, False]
    last = {"id": "Y", "affected": [{"package": {"name": "p", "ecosystem": "PyPI"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "2.0"}]}]}]}
    assert [affects(last, "p", v) for v in ("0.1", "2.0", "2.0.1")] == [True, True, False]
    listed = {"id": "Z", "affected": [{"package": {"name": "p", "ecosystem": "PyPI"}, "versions": ["3.1"]}]}
    assert affects(listed, "p", "3.1") and not affects(listed, "p", "3.2") and not affects(listed, "q", "3.1")
    assert not affects({**record, "withdrawn": "2026-01-01T00:00:00Z"}, "some-package", "1.2")


def test_the_lock_is_what_is_installed() -> None:
    """requirements.lock pins exactly the distributions of this environment (regenerate it when this fails)."""
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()
                 if canonical(d.metadata["Name"]) != "sottovoce"}
    pins = locked()
    assert {n: v for n, v in installed.items() if pins.get(n) != v} == {}
    assert {n: v for n, v in pins.items() if installed.get(n) != v} == {}
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values())
