#!/usr/bin/env bash
# Regenerate requirements.lock: exactly what 'pip install .[dev]' installs into a clean venv, made from the
# committed tree (git archive HEAD) in a temporary folder, so neither .venv nor uncommitted files leak in.
#   tests/security/lock.sh            (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/src"
git -C "$ROOT" archive HEAD | tar -x -C "$WORK/src"
"${PYTHON:-python3}" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$WORK/src[dev]"
{
    echo "# Sottovoce's locked dependency set: exactly what 'pip install .[dev]' installs on Python $("$WORK/venv/bin/python" -c 'import sys; print(*sys.version_info[:2], sep=".")') ($(uname -sm)),"
    echo "# pip and setuptools included. Made by tests/security/lock.sh (a clean venv from 'git archive HEAD')."
    echo "# Used as constraints by install.sh and audited by tests/security/audit.sh (pip-audit --strict)."
    "$WORK/venv/bin/python" -m pip freeze --all --exclude sottovoce | sort -f
} > "$ROOT/requirements.lock.new"
mv "$ROOT/requirements.lock.new" "$ROOT/requirements.lock"
echo "requirements.lock: $(grep -vc '^#' "$ROOT/requirements.lock") packages"
