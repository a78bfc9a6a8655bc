"""A profile folder's encrypted database: key custody plus the SQLCipher file, created or opened as one step.

Layout of a profile folder (mode 0700)::

    profile.json      non-secret: profile id, key mode, scrypt salt/parameters, key check   (0600)
    sottovoce.db      the SQLCipher database, with -wal and -shm next to it while open      (0600)
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from engine.keyring import PROFILE_FILE, KeyCustody, ProfileInfo, read_profile_info, write_profile_info
from engine.store import errors
from engine.store.database import Database, mapped_errors, side_files
from engine.store.files import DIRECTORY_MODE, make_private_directories, remove_directories, write_private_file
from engine.store.migrations import MIGRATIONS, Migration

DATABASE_FILE = "sottovoce.db"


def database_path(profile_dir: Path) -> Path:
    return Path(profile_dir) / DATABASE_FILE


def open_profile_database(
    profile_dir: Path,
    passphrase: str | None = None,
    create: bool = False,
    *,
    custody: KeyCustody | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> Database:
    """Open the profile's database, or with ``create`` make a new profile (folder, key, database).

    Opening writes nothing when it fails: the key is checked against ``profile.json`` before the database is
    touched (``WrongPassphrase``, ``DatabaseKeyMismatch``). Creating raises ``ProfileExists`` when the folder
    already holds a database, and on any failure removes every file and folder it made and the keyring entry.
    A ``profile.json`` left without a database by an interrupted create is replaced.
    """
    profile_dir = Path(profile_dir)
    custody = custody or KeyCustody()
    if create:
        return _create(profile_dir, passphrase, custody, migrations)
    read_profile_info(profile_dir)  # ProfileNotFound / ProfileInvalid before anything else
    path = database_path(profile_dir)
    if not path.is_file():
        raise errors.ProfileNotFound(f"the profile in {profile_dir} has no message database")
    key = custody.load_key(profile_dir, passphrase)
    return Database.open(path, key.key, migrations=migrations)


def _create(
    profile_dir: Path, passphrase: str | None, custody: KeyCustody, migrations: Sequence[Migration]
) -> Database:
    path = database_path(profile_dir)
    profile_file = profile_dir / PROFILE_FILE
    made_dirs = make_private_directories(profile_dir)
    made: ProfileInfo | None = None
    previous: bytes | None = None
    wrote_profile = False
    stale: ProfileInfo | None = None
    old_mode: int | None = None
    try:
        if any(candidate.exists() for candidate in [path, *side_files(path)]):
            raise errors.ProfileExists()
        with mapped_errors():
            mode = stat.S_IMODE(profile_dir.stat().st_mode)
            if mode != DIRECTORY_MODE:
                os.chmod(profile_dir, DIRECTORY_MODE)
                old_mode = mode
        if profile_file.exists():
            with mapped_errors():
                previous = profile_file.read_bytes()
            with contextlib.suppress(errors.ProfileInvalid):
                stale = read_profile_info(profile_dir)
        key = custody.new_key(passphrase)
        made = key.profile
        wrote_profile = True
        write_profile_info(profile_dir, key.profile)
        database = Database.open(path, key.key, create=True, migrations=migrations)
    except BaseException:
        if made is not None:
            custody.forget(made)
        if wrote_profile and made is not None:
            _restore(profile_file, previous, made)
        if old_mode is not None:
            with contextlib.suppress(OSError):
                os.chmod(profile_dir, old_mode)
        remove_directories(made_dirs)
        raise
    if stale is not None and stale.profile_id != made.profile_id:
        custody.forget(stale)
    return database


def _restore(profile_file: Path, previous: bytes | None, ours: ProfileInfo) -> None:
    """Put ``profile.json`` back as it was before a failed create, unless a concurrent create replaced it."""
    with contextlib.suppress(OSError, errors.StoreError):
        if profile_file.read_bytes() != ours.to_json().encode():
            return
        if previous is None:
            profile_file.unlink()
        else:
            write_private_file(profile_file, previous)


