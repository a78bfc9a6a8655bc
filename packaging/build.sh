#!/usr/bin/env bash
# Builds the one-folder desktop app: dist/sottovoce/sottovoce (run it as `dist/sottovoce/sottovoce gui`).
# Also lays out dist/sottovoce/share/{applications,metainfo,icons} for a distribution package or ~/.local.
# Uses .venv (./install.sh) unless PYTHON names another interpreter that has the project and PyInstaller;
# DIST and WORK change the output and scratch folders (default dist/ and build/pyinstaller/).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
APP_ID=io.github.sottovoce.Sottovoce
started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/sottovoce.spec
share="$DIST/sottovoce/share"
install -D -m 644 "packaging/$APP_ID.desktop" "$share/applications/$APP_ID.desktop"
install -D -m 644 "packaging/$APP_ID.metainfo.xml" "$share/metainfo/$APP_ID.metainfo.xml"
install -D -m 644 resources/sottovoce.svg "$share/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in resources/hicolor/*/apps/"$APP_ID".png; do
    install -D -m 644 "$png" "$share/icons/${png#resources/}"
done
echo "built $DIST/sottovoce in $(( $(date +%s) - started )) s, $(du -sh "$DIST/sottovoce" | cut -f1)"
