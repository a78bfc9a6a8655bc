#!/usr/bin/env bash
# Runs the whole test suite: lint, types, then pytest inside a private D-Bus session with an unlocked
# gnome-keyring (a real Secret Service for the keyring tests). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
export QT_QPA_PLATFORM=offscreen
# A keyring of our own for this run: the login collection lives under XDG_DATA_HOME.
export XDG_DATA_HOME="$(mktemp -d)"
trap 'rm -rf "$XDG_DATA_HOME"' EXIT
.venv/bin/ruff check .
.venv/bin/mypy
dbus-run-session -- sh -c '
  printf sottovoce-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec .venv/bin/python -m pytest "$@"' sh "$@"
