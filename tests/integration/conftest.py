"""Fixtures for the store and key-custody integration tests (real SQLCipher files, real Secret Service)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend

from engine.keyring import SERVICE_NAME, KeyCustody, ScryptParams

FAST_SCRYPT = ScryptParams(n=2**10, r=8, p=1)


class MemoryKeyring:
    """A dictionary keyring; ``locked`` makes every call raise ``keyring.errors.KeyringLocked``.

    Not a ``KeyringBackend`` subclass on purpose: those register themselves with the keyring library and
    would then be chained in front of the real Secret Service.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}
        self.locked = False

    def _check(self) -> None:
        if self.locked:
            raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service: str, username: str) -> str | None:
        self._check()
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._check()
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._check()
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def custody(memory_keyring: MemoryKeyring) -> KeyCustody:
    """Fast scrypt, an in-memory keyring and an empty environment: independent of the machine."""
    return KeyCustody(keyring_backend=memory_keyring, scrypt=FAST_SCRYPT, environ={})


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """Make the keyring library report no backend at all, as on a machine without a Secret Service."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def _is_secret_service(backend: KeyringBackend) -> bool:
    return type(backend).__module__ == "keyring.backends.SecretService"


@pytest.fixture
def secret_service() -> Iterator[KeyringBackend]:
    """The real Secret Service through ``keyring``; skips when none is reachable."""
    backend = keyring.get_keyring()
    chained = [b for b in getattr(backend, "backends", []) if _is_secret_service(b)]
    if not _is_secret_service(backend) and not chained:
        pytest.skip(
            f"no Secret Service reachable (keyring backend is {type(backend).__name__} from "
            f"{type(backend).__module__}): run under ./test.sh, i.e. dbus-run-session with an unlocked "
            "gnome-keyring-daemon"
        )
    probe = f"probe-{uuid.uuid4().hex}"
    try:
        backend.set_password(SERVICE_NAME + "-test", probe, "x")
        backend.delete_password(SERVICE_NAME + "-test", probe)
    except keyring.errors.KeyringLocked:
        pytest.skip(
            "the Secret Service's default collection is locked: the login keyring in $XDG_DATA_HOME/keyrings "
            "was probably created with another unlock password than the one test.sh pipes in"
        )
    except Exception as exc:
        pytest.skip(f"the Secret Service is not usable here: {exc}")
    yield backend


def _mount_tmpfs(directory: Path, options: str) -> str | None:
    """Mount a tmpfs; returns why it is impossible, or ``None`` on success."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}"
    return None


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs to fill up; skips with the reason when mounting is impossible."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    reason = _mount_tmpfs(mountpoint, "size=2m,mode=0700")
    if reason is not None:
        pytest.skip(reason)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write into: a read-only tmpfs as root, else mode 0500."""
    directory = tmp_path / "readonly"
    directory.mkdir()
    if os.geteuid() == 0:
        reason = _mount_tmpfs(directory, "ro,size=1m")
        if reason is not None:
            pytest.skip(f"root ignores permissions and {reason}")
        try:
            yield directory
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
    else:
        directory.chmod(0o500)
        try:
            yield directory
        finally:
            with contextlib.suppress(OSError):
                directory.chmod(0o700)
