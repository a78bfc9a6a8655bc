"""A keyring backend for CLI subprocesses: ``PYTHON_KEYRING_BACKEND=tests.reliability.file_keyring.FileKeyring``.

Entries live in the JSON file ``$SOTTOVOCE_TEST_KEYRING``; while ``$SOTTOVOCE_TEST_KEYRING.locked`` exists every
call raises ``KeyringLocked``, as the Secret Service does for a locked collection. Test-only: a real profile
never names this backend.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.errors
from keyring.backend import KeyringBackend

FILE_ENV = "SOTTOVOCE_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1

    @staticmethod
    def _path() -> Path:
        return Path(os.environ[FILE_ENV])

    def _load(self) -> dict[str, str]:
        if Path(str(self._path()) + ".locked").exists():
            raise keyring.errors.KeyringLocked("Failed to unlock the collection!")
        try:
            return json.loads(self._path().read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._path().write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")
        self._path().write_text(json.dumps(entries))
