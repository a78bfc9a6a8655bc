"""Local faults through the real CLI (``python -m app`` processes) on a real relay: a full disk, a locked and a
missing keyring, a wrong or absent passphrase, a truncated or corrupted database, a profile folder without write
permission. Each gives exactly one line on stderr (``sottovoce: ...``, exit code 1, no traceback), leaves what
was stored untouched, and once the cause is removed the next command works and nothing earlier is lost.

A disk that fills while a Messenger is running and receiving loses nothing either: what came meanwhile is shown,
once, as soon as the disk has room again, and a restart in between shows it once too.

The full disk is a tmpfs mounted by the test (root, as in CI); the folder without write permission is enforced
on root by running the command with CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER dropped (``setpriv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.messenger import Messenger
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import CUSTODY, Recorder, create_messenger, nats_relay, requires_nats, run, until
from tests.integration.nats_fixtures import PASSPHRASE as FIXTURE_PASSPHRASE

__all__ = ["nats_relay"]
pytestmark = [requires_nats, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "local faults passphrase"
KEYRING_MODE: dict[str, str | None] = {"SOTTOVOCE_PASSPHRASE": None,
                                       "PYTHON_KEYRING_BACKEND": "tests.reliability.file_keyring.FileKeyring"}
"""No passphrase: the database key goes to the keyring, here a file keyring that the test can lock."""
NO_PERMISSION_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner",
                          "--inh-caps", "-dac_override,-dac_read_search,-fowner", "--"]


class Cli:
    """``sottovoce --transport URL ARGS`` with a private data folder, a fast-to-type passphrase by default."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.url = url
        self.env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "SOTTOVOCE_DATA_DIR": str(tmp / "data"),
                    "PYTHONPATH": str(REPO), "SOTTOVOCE_TEST_KEYRING": str(tmp / "keyring.json")}
        self.env.pop("PYTHON_KEYRING_BACKEND", None)

    def __call__(self, profile: Path, *args: str, env: dict[str, str | None] | None = None,
                 prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        return subprocess.run([*(prefix or []), sys.executable, "-m", "app", "--transport", self.url,
                               "--profile", str(profile), *args], capture_output=True, text=True, env=environ,
                              cwd=str(REPO), timeout=60, check=False)

    def ok(self, profile: Path, *args: str, env: dict[str, str | None] | None = None) -> str:
        result = self(profile, *args, env=env)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit code 1 and exactly one line on stderr, no traceback; returns that line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("sottovoce: "), result.stderr
    print(f"\n  {lines[0]}")
    return lines[0]


def history(cli: Cli, profile: Path, env: dict[str, str | None] | None = None) -> list[str]:
    return [line.split(": ", 1)[1] for line in cli.ok(profile, "history", "bob", env=env).splitlines()]


def setup(cli: Cli, alice: Path, bob: Path, env: dict[str, str | None] | None = None) -> None:
    """Alice (at ``alice``, custody as ``env`` says) and Bob; Alice has sent "before" to Bob."""
    cli.ok(bob, "init", "--name", "bobby")
    cli.ok(alice, "init", "--name", "alice", env=env)
    cli.ok(alice, "contacts", "add", "--code", cli.ok(bob, "code").strip(), "--name", "bob", env=env)
    cli.ok(alice, "send", "bob", "before", env=env)


def digest(folder: Path, *, side_files: bool = True) -> dict[str, str]:
    """SHA-256 of every file of a profile (without SQLite's ``-shm``/``-wal`` when ``side_files`` is false)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and (side_files or not p.name.endswith(("-shm", "-wal")))}


@pytest.fixture
def cli(tmp_path: Path, nats_relay: RelayProcess) -> Cli:
    return Cli(tmp_path, nats_relay.url)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted by the test (needs root, as CI has); skipped with the reason otherwise."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (folder / "probe").write_bytes(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC
    return filler


def test_disk_full_while_sending_then_freed(cli: Cli, tmp_path: Path, small_disk: Path) -> None:
    alice = small_disk / "alice"
    setup(cli, alice, tmp_path / "bob")
    filler = fill(small_disk)
    before = digest(alice)
    for args in (("send", "bob", "during"), ("history", "bob")):  # SQLite needs room for its -shm even to read
        assert one_error_line(cli(alice, *args)) == "sottovoce: the disk is full: free some space and try again"
    assert digest(alice, side_files=False) == before  # the database is untouched; SQLite left an empty -wal
    assert not (alice / "sottovoce.db-wal").exists() or (alice / "sottovoce.db-wal").stat().st_size == 0
    filler.unlink()
    cli.ok(alice, "send", "bob", "after")
    assert history(cli, alice) == ["before", "after"]
    received = cli.ok(tmp_path / "bob", "listen", "--count", "2", "--timeout", "30")
    assert [line.split(": ", 1)[1] for line in received.splitlines()] == ["before", "after"]


def test_locked_then_unlocked_keyring(cli: Cli, tmp_path: Path) -> None:
    alice = tmp_path / "alice"
    keyring_mode = dict(KEYRING_MODE)
    setup(cli, alice, tmp_path / "bob", env=keyring_mode)
    before = digest(alice)
    lock = Path(cli.env["SOTTOVOCE_TEST_KEYRING"] + ".locked")
    lock.touch()
    for args in (("history", "bob"), ("send", "bob", "locked")):
        assert one_error_line(cli(alice, *args, env=keyring_mode)) == \
            "sottovoce: the system keyring is locked or access was denied: unlock it and try again"
    assert digest(alice) == before
    lock.unlink()
    cli.ok(alice, "send", "bob", "after", env=keyring_mode)
    assert history(cli, alice, env=keyring_mode) == ["before", "after"]


@pytest.mark.parametrize("missing", [{"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
                                     {"DBUS_SESSION_BUS_ADDRESS": None, "PYTHON_KEYRING_BACKEND": None}],
                         ids=["no-backend", "no-session-bus"])
def test_missing_keyring(cli: Cli, tmp_path: Path, missing: dict[str, str | None]) -> None:
    alice = tmp_path / "alice"
    keyring_mode = dict(KEYRING_MODE)
    setup(cli, alice, tmp_path / "bob", env=keyring_mode)
    before = digest(alice)
    gone = {**keyring_mode, **missing}
    assert one_error_line(cli(alice, "history", "bob", env=gone)) == \
        "sottovoce: no usable system keyring: set a passphrase to protect this profile"
    assert one_error_line(cli(tmp_path / "carol", "init", "--name", "carol", env=gone)) == \
        "sottovoce: no usable system keyring: set a passphrase to protect this profile"
    assert not (tmp_path / "carol").exists()
    assert digest(alice) == before
    assert history(cli, alice, env=keyring_mode) == ["before"]


def test_wrong_and_missing_passphrase(cli: Cli, tmp_path: Path) -> None:
    alice = tmp_path / "alice"
    setup(cli, alice, tmp_path / "bob")
    before = digest(alice)
    assert one_error_line(cli(alice, "send", "bob", "x", env={"SOTTOVOCE_PASSPHRASE": "wrong"})) == \
        "sottovoce: wrong passphrase"
    assert one_error_line(cli(alice, "history", "bob", env={"SOTTOVOCE_PASSPHRASE": None})) == \
        "sottovoce: this profile is protected by a passphrase: enter it to continue"
    assert digest(alice) == before
    cli.ok(alice, "send", "bob", "after")
    assert history(cli, alice) == ["before", "after"]


def _truncate_half(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def _truncate_header(db: Path) -> None:
    os.truncate(db, 1000)


def _scribble(db: Path) -> None:
    data = bytearray(db.read_bytes())
    for offset in range(3 * 4096 + 100, len(data), 4096):  # every page after the first three
        data[offset:offset + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))


def _truncate_profile_file(db: Path) -> None:
    profile = db.with_name("profile.json")
    os.truncate(profile, profile.stat().st_size // 2)


@pytest.mark.parametrize(("damage", "line"), [
    (_truncate_half, "sottovoce: the message database is damaged"),
    (_truncate_header, "sottovoce: the message database cannot be read: it is not a Sottovoce database or it is "
                       "damaged"),
    (_scribble, "sottovoce: the message database is damaged"),
    (_truncate_profile_file, "sottovoce: the profile description file is damaged"),
], ids=["truncated-half", "truncated-header", "corrupted-pages", "truncated-profile-json"])
def test_damaged_database_then_restored(cli: Cli, tmp_path: Path, damage: object, line: str) -> None:
    alice = tmp_path / "alice"
    setup(cli, alice, tmp_path / "bob")
    backup = tmp_path / "alice.backup"
    shutil.copytree(alice, backup)
    db = alice / "sottovoce.db"
    assert callable(damage)
    damage(db)
    damaged = digest(alice)
    for args in (("history", "bob"), ("send", "bob", "x")):
        assert one_error_line(cli(alice, *args)) == line
    assert digest(alice) == damaged  # the damaged file is left as it was, for recovery tools
    shutil.rmtree(alice)
    shutil.copytree(backup, alice)
    cli.ok(alice, "send", "bob", "after")
    assert history(cli, alice) == ["before", "after"]


def test_profile_folder_without_write_permission(cli: Cli, tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's permission override")
    alice = tmp_path / "alice"
    setup(cli, alice, tmp_path / "bob")
    before = digest(alice)
    alice.chmod(0o500)
    try:
        assert one_error_line(cli(alice, "send", "bob", "x", prefix=NO_PERMISSION_OVERRIDE)) == \
            "sottovoce: the profile folder cannot be written (permission denied or read-only)"
        assert digest(alice) == before
    finally:
        alice.chmod(0o700)
    cli.ok(alice, "send", "bob", "after")
    assert history(cli, alice) == ["before", "after"]


def _disk_full_while_listening(tmp_path: Path, small_disk: Path, url: str, *, restart: bool) -> list[str]:
    """Alice (profile on the small disk) is running when her disk fills; Bob sends "during", the disk is freed,
    Bob sends "after". Returns what Alice's events showed (with ``restart``, also after reopening her profile)."""
    async def main() -> list[str]:
        alice = await create_messenger(small_disk, "alice", url, display_name="alice")
        bob = await create_messenger(tmp_path, "bob", url, display_name="bobby")
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        rec = Recorder(alice)
        shown: list[str] = []
        try:
            await alice.start()
            await bob.start()
            await bob.send_text("alice", "before", wait=True, timeout=20)
            await until(lambda: len(rec.received) == 1, 20, "before on Alice")
            filler = fill(small_disk)
            await bob.send_text("alice", "during", wait=True, timeout=20)
            await asyncio.sleep(2.0)  # Alice's inbox meets the full disk
            filler.unlink()
            await bob.send_text("alice", "after", wait=True, timeout=20)
            with contextlib.suppress(AssertionError):
                await until(lambda: len(rec.received) >= 3, 10, "during and after on Alice")
            shown = [m.text for m in rec.received]
            if restart:
                await rec.close()
                await alice.close()
                alice = await Messenger.open(small_disk / "alice", passphrase=FIXTURE_PASSPHRASE, custody=CUSTODY,
                                             transport_url=url)
                rec = Recorder(alice)
                await alice.start()
                await alice.sync(20)
                shown += [m.text for m in rec.received]
        finally:
            await rec.close()
            await alice.close()
            await bob.close()
        return shown

    return run(main(), 90)


def test_disk_full_while_listening_loses_nothing_across_a_restart(tmp_path: Path, small_disk: Path,
                                                                  nats_relay: RelayProcess) -> None:
    shown = _disk_full_while_listening(tmp_path, small_disk, nats_relay.url, restart=True)
    assert sorted(shown) == ["after", "before", "during"], shown


def test_disk_full_while_listening_recovers_without_a_restart(tmp_path: Path, small_disk: Path,
                                                              nats_relay: RelayProcess) -> None:
    shown = _disk_full_while_listening(tmp_path, small_disk, nats_relay.url, restart=False)
    assert shown == ["before", "during", "after"], shown
