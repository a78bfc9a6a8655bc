"""An OSV query endpoint on 127.0.0.1 over a folder of OSV records: pip-audit's vulnerability source offline.

pip-audit cannot read a vulnerability dump, but it can ask any OSV-compatible URL (``-s osv --osv-url``).
This serves ``POST /v1/query`` (``{"package": {"name", "ecosystem"}, "version"}`` -> ``{"vulns": [...]}``)
from OSV JSON records, e.g. osv.dev's ``PyPI/all.zip`` unpacked or a checkout of pypa/advisory-database
converted to JSON. Run ``python -m tests.security.osv_local DIR PORT_FILE``: it writes its port to
``PORT_FILE`` once listening and serves until killed.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version


def canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _in_ranges(version: Version, ranges: Iterable[dict[str, Any]]) -> bool:
    """OSV ECOSYSTEM ranges: affected from an ``introduced`` until the next ``fixed`` (excluded) or
    ``last_affected`` (included)."""
    for entry in ranges:
        if entry.get("type") != "ECOSYSTEM":
            continue
        affected = False
        events = []
        for event in entry.get("events", []):
            (kind, raw), = event.items()
            bound = Version("0") if raw == "0" else Version(raw)
            events.append((bound, {"introduced": 0, "fixed": 1, "last_affected": 2}[kind]))
        for bound, kind in sorted(events):
            if kind == 0 and version >= bound:
                affected = True
            elif (kind == 1 and version >= bound) or (kind == 2 and version > bound):
                affected = False
        if affected:
            return True
    return False


def affects(record: dict[str, Any], name: str, version: str) -> bool:
    """Whether an OSV record names PyPI project ``name`` at ``version`` as affected."""
    if record.get("withdrawn"):
        return False
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) != canonical(name):
            continue
        if version in affected.get("versions", []):
            return True
        try:
            if _in_ranges(Version(version), affected.get("ranges", [])):
                return True
        except InvalidVersion:
            continue
    return False


def load(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.rglob("*.json"))]


def serve(folder: Path, port_file: Path) -> None:
    records = load(folder)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            package = query.get("package", {})
            found = [r for r in records if package.get("ecosystem") == "PyPI"
                     and affects(r, package.get("name", ""), query.get("version", ""))]
            body = json.dumps({"vulns": found} if found else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    temporary = port_file.with_name(port_file.name + ".tmp")
    temporary.write_text(str(server.server_address[1]))
    temporary.replace(port_file)
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
