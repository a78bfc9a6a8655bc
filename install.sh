#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for Sottovoce: system packages, then a virtual environment in .venv
# with the app and its development tools. Run from the repository root; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
    python3 python3-venv python3-pip \
    libzbar0 \
    dbus dbus-daemon gnome-keyring \
    libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
    libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 \
    libxcb-render-util0 libxcb-image0 libglib2.0-0 \
    libpulse0 fonts-noto-color-emoji desktop-file-utils appstream xvfb xauth
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Exact versions from requirements.lock (the audited set; regenerate with tests/security/lock.sh).
.venv/bin/python -m pip install --quiet -c requirements.lock --upgrade pip
.venv/bin/python -m pip install --quiet -c requirements.lock -e ".[dev]"
echo "installed: run '.venv/bin/sottovoce gui' or './test.sh'"
