#!/usr/bin/env bash
# Known-vulnerability audit of the locked dependency set with pip-audit, that never passes without auditing.
#
#   tests/security/audit.sh [LOCKFILE]          (default: requirements.lock at the repository root)
#
# Exit codes:
#   0  every locked package was checked by the vulnerability service and none has a known vulnerability
#   1  known vulnerabilities (listed on stdout)
#   3  NOT AUDITED: the service was unreachable, or it did not know some packages (pip-audit alone would
#      print "No known vulnerabilities found" and exit 0 in that case)
#   2  usage error (no lock file, no pip-audit)
#
# Where the answers come from:
#   SOTTOVOCE_AUDIT_SERVICE=pypi (default) | osv     pip-audit's -s
#   SOTTOVOCE_OSV_URL=URL                            an OSV-compatible /v1/query endpoint (implies osv)
#   SOTTOVOCE_OSV_DB=DIR                             offline: OSV JSON records (osv.dev's PyPI/all.zip unpacked),
#                                                    served on 127.0.0.1 by tests/security/osv_local.py (implies osv)
#   SOTTOVOCE_AUDIT_TIMEOUT=S                        socket timeout per request (default 15)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
LOCK="${1:-$ROOT/requirements.lock}"
SERVICE="${SOTTOVOCE_AUDIT_SERVICE:-pypi}"
OSV_URL="${SOTTOVOCE_OSV_URL:-}"

[ -f "$LOCK" ] || { echo "audit: no lock file $LOCK" >&2; exit 2; }
"$PYTHON" -m pip_audit --version >/dev/null 2>&1 || { echo "audit: pip-audit is not installed for $PYTHON" >&2; exit 2; }

WORK="$(mktemp -d)"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${SOTTOVOCE_OSV_DB:-}" ]; then
    [ -d "$SOTTOVOCE_OSV_DB" ] || { echo "audit: SOTTOVOCE_OSV_DB=$SOTTOVOCE_OSV_DB is not a folder" >&2; exit 2; }
    (cd "$ROOT" && exec "$PYTHON" -m tests.security.osv_local "$SOTTOVOCE_OSV_DB" "$WORK/port") &
    SERVER=$!
    for _ in $(seq 200); do [ -s "$WORK/port" ] && break; sleep 0.05; done
    [ -s "$WORK/port" ] || { echo "audit: NOT AUDITED: the local OSV server did not start" >&2; exit 3; }
    OSV_URL="http://127.0.0.1:$(cat "$WORK/port")/v1/query"
fi
ARGS=(--strict --no-deps --disable-pip -r "$LOCK" --format json --output "$WORK/report.json"
      --progress-spinner off --timeout "${SOTTOVOCE_AUDIT_TIMEOUT:-15}" --cache-dir "$WORK/cache")
if [ -n "$OSV_URL" ]; then
    ARGS+=(--vulnerability-service osv --osv-url "$OSV_URL")
else
    ARGS+=(--vulnerability-service "$SERVICE")
fi

"$PYTHON" -m pip_audit "${ARGS[@]}" >"$WORK/stdout" 2>"$WORK/stderr"
RC=$?
# pip-audit --strict exits 1 both for vulnerabilities and for packages it could not check: tell them apart
# from its report, and check that every locked package was checked.
"$PYTHON" - "$LOCK" "$WORK/report.json" "$RC" "$WORK/stderr" "${OSV_URL:-$SERVICE}" <<'EOF'
import json, re, sys
from pathlib import Path

lock, report_path, rc, stderr_path, source = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
canon = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {canon(line.split("==")[0].strip()) for line in Path(lock).read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")}
errors = [line for line in Path(stderr_path).read_text().splitlines() if line.strip() and not line.startswith("WARNING:")]
report = json.loads(report_path.read_text()) if report_path.is_file() and report_path.stat().st_size else None

def not_audited(why: str) -> None:
    print(f"audit: NOT AUDITED ({source}): {why}", file=sys.stderr)
    for line in errors[-3:]:
        print(f"audit:   {line[:300]}", file=sys.stderr)
    sys.exit(3)

if report is None:
    not_audited(f"pip-audit exited {rc} without a report")
deps = report.get("dependencies", [])
vulnerable = [(d["name"], d.get("version"), v) for d in deps for v in d.get("vulns", [])]
for name, version, vuln in vulnerable:
    fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
    print(f"{name} {version}: {vuln['id']} (fixed in: {fixes}) {vuln.get('description', '')[:200]}")
if vulnerable:
    print(f"audit: {len(vulnerable)} known vulnerabilities in {len({n for n, _, _ in vulnerable})} packages",
          file=sys.stderr)
    sys.exit(1)
skipped = [d for d in deps if d.get("skip_reason")]
checked = {canon(d["name"]) for d in deps if not d.get("skip_reason")}
if skipped:
    not_audited(f"{len(skipped)} of {len(locked)} packages not checked, e.g. {skipped[0]['skip_reason']}")
if rc != 0 or checked != locked:
    missing = sorted(locked - checked)
    not_audited(f"pip-audit exited {rc}; unchecked: {', '.join(missing[:5]) or 'none'}")
print(f"audit: {len(checked)} locked packages checked against {source}: no known vulnerabilities")
EOF
