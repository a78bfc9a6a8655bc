"""One SQLCipher database file: keying, pragmas, migrations, transactions, and typed errors.

The file is encrypted with a raw 256-bit key (``PRAGMA key = "x'…'"``, no SQLCipher PBKDF), runs in WAL mode
with ``foreign_keys``, ``secure_delete`` and in-memory temporary storage, and logs nothing: SQLCipher's own
log is switched off before the key is given. Every failure of the ``sqlcipher3`` driver or of the file system
surfaces as a :class:`~engine.store.errors.StoreError`.

**Durability: WAL with ``synchronous = NORMAL``, plus :meth:`Database.make_durable`.** What SQLite promises
(https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html):

* A ``COMMIT`` appends the transaction's pages to the ``-wal`` file with ``write()`` and returns without an
  fsync. Once it has returned, the transaction survives a crash of *this process* (the bytes are in the
  operating system's cache and the next open replays the WAL): nothing committed is lost to a process crash.
* A crash of the *operating system* or a *power loss* may roll back the commits made since the last sync of
  the WAL. The database stays consistent whatever happens (each WAL frame is checksummed and salted; recovery
  replays the WAL up to the last commit whose frames all check out, and drops the rest as a whole): it is
  exactly the database of some earlier commit, never a mix, never corrupt.
* SQLite syncs on its own only around checkpoints (the WAL before its pages are copied into the database
  file, the database file after, and the WAL header when the WAL starts over). Those pages are then durable.
* :meth:`Database.make_durable` closes the gap on demand: one ``fsync`` of the ``-wal`` file (and, the first
  time, of the folder that holds it, so the file itself survives). Every commit that returned before it is
  then durable against power loss too: their frames were written to that file before the call, and recovery
  keeps every frame up to the last valid commit. Commits made after it are not covered until the next call.

So the database never needs a sync per commit; a caller that lets something *leave the machine* that depends
on the committed state (a published ciphertext depends on the ratchet state that produced it) calls
:meth:`~Database.make_durable` first, and one fsync covers all the commits before it (group commit).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import quote

import sqlcipher3  # type: ignore[import-untyped]

from engine.store import errors
from engine.store.migrations import MIGRATIONS, Migration, check_migrations

KEY_LENGTH = 32
BUSY_TIMEOUT_MS = 5000
FILE_MODE = 0o600
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

SqlValue = int | float | str | bytes | None
Params = Sequence[SqlValue] | Mapping[str, SqlValue]
Row = tuple[Any, ...]


class _Cursor(Protocol):
    rowcount: int
    lastrowid: int | None

    def fetchall(self) -> list[Row]: ...

    def fetchone(self) -> Row | None: ...


class _Connection(Protocol):
    """The part of a ``sqlcipher3`` connection this module uses (the driver has no type hints)."""

    in_transaction: bool
    total_changes: int

    def execute(self, sql: str, parameters: Params = ..., /) -> _Cursor: ...

    def executemany(self, sql: str, parameters: Iterator[Params] | Sequence[Params], /) -> _Cursor: ...

    def close(self) -> None: ...


# --- error mapping ----------------------------------------------------------------------------------------------

_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_CONSTRAINT, _SQLITE_AUTH, _SQLITE_NOTADB = 19, 23, 26

_BY_SQLITE_CODE: dict[int, type[errors.StoreError]] = {
    _SQLITE_NOTADB: errors.NotADatabase,
    _SQLITE_CORRUPT: errors.DatabaseCorrupt,
    _SQLITE_FULL: errors.DiskFull,
    _SQLITE_READONLY: errors.ProfileNotWritable,
    _SQLITE_PERM: errors.ProfileNotWritable,
    _SQLITE_AUTH: errors.ProfileNotWritable,
    _SQLITE_CANTOPEN: errors.ProfileNotWritable,
    _SQLITE_BUSY: errors.DatabaseBusy,
    _SQLITE_LOCKED: errors.DatabaseBusy,
    _SQLITE_IOERR: errors.DatabaseIOError,
    _SQLITE_CONSTRAINT: errors.ConstraintViolation,
}

_BY_ERRNO: dict[int, type[errors.StoreError]] = {
    errno.ENOSPC: errors.DiskFull,
    errno.EDQUOT: errors.DiskFull,
    errno.EACCES: errors.ProfileNotWritable,
    errno.EPERM: errors.ProfileNotWritable,
    errno.EROFS: errors.ProfileNotWritable,
}


def translate_error(exc: BaseException) -> errors.StoreError | None:
    """The typed error for a ``sqlcipher3`` or ``OSError`` exception; ``None`` for anything else."""
    if isinstance(exc, errors.StoreError):
        return exc
    if isinstance(exc, sqlcipher3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        cls = _BY_SQLITE_CODE.get(code & 0xFF) if isinstance(code, int) else None
        if cls is errors.ConstraintViolation:
            return errors.ConstraintViolation(f"constraint failed: {exc}")
        if cls is not None:
            return cls()
        return errors.StoreError(f"database error: {exc}")
    if isinstance(exc, OSError):
        cls = _BY_ERRNO.get(exc.errno or 0)
        if cls is not None:
            return cls()
        return errors.DatabaseIOError(f"disk error: {exc.strerror or exc}")
    return None


LOW_SPACE_BYTES = 256 * 1024
"""Free space under which a disk I/O error of the database is reported as a full disk."""


def _nearly_full(path: Path) -> bool:
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < LOW_SPACE_BYTES


class mapped_errors:  # noqa: N801 - used as a function: ``with mapped_errors(path):``
    """Re-raise driver and file-system exceptions as typed store errors (the original as ``__cause__``).

    With the database ``path``, a disk I/O error on a file system with almost no space left is ``DiskFull``:
    SQLite reports a full disk as ``SQLITE_IOERR`` when it cannot create or grow its ``-shm``/``-wal`` files.
    (A class, not a ``@contextmanager`` generator: it wraps every statement, and costs a third as much.)
    """

    __slots__ = ("_path",)

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, (sqlcipher3.Error, OSError)):
            return
        typed = translate_error(exc)
        if typed is None or typed is exc:
            return
        path = self._path
        if path is not None and type(typed) in (errors.DatabaseIOError, errors.StoreError) and _nearly_full(path):
            typed = errors.DiskFull()
        raise typed from exc


# --- statements and transactions --------------------------------------------------------------------------------


def split_statements(script: str) -> list[str]:
    """Split SQL text into complete statements (``;`` inside strings or trigger bodies is kept)."""
    statements: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlcipher3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement: {current.strip()[:60]!r}")
    return statements


@dataclass(frozen=True)
class ExecResult:
    rowcount: int
    lastrowid: int | None


class Transaction:
    """Runs statements inside one ``BEGIN IMMEDIATE … COMMIT`` block; unusable once the block ends."""

    def __init__(self, connection: _Connection) -> None:
        self._connection: _Connection | None = connection

    def _live(self) -> _Connection:
        if self._connection is None:
            raise RuntimeError("the transaction has ended")
        return self._connection

    def execute(self, sql: str, params: Params = ()) -> ExecResult:
        with mapped_errors():
            cursor = self._live().execute(sql, params)
            return ExecResult(cursor.rowcount, cursor.lastrowid)

    def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        """Run ``sql`` once per parameter row; returns the total row count."""
        with mapped_errors():
            return self._live().executemany(sql, rows).rowcount

    def executescript(self, script: str) -> None:
        """Run several ``;``-separated statements inside this transaction (no implicit COMMIT)."""
        for statement in split_statements(script):
            self.execute(statement)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with mapped_errors():
            return self._live().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        with mapped_errors():
            return self._live().execute(sql, params).fetchone()

    def _end(self) -> None:
        self._connection = None


# --- the database -----------------------------------------------------------------------------------------------


def side_files(path: Path) -> list[Path]:
    """The WAL, shared-memory and rollback-journal files SQLite may keep next to ``path``."""
    return [path.with_name(path.name + suffix) for suffix in SIDE_SUFFIXES]


def remove_database_files(path: Path) -> None:
    """Delete a database file and its side files, ignoring the ones that do not exist."""
    for candidate in [path, *side_files(path)]:
        with suppress(FileNotFoundError):
            candidate.unlink()


class Database:
    """An open, keyed and migrated SQLCipher database. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, connection: _Connection, path: Path) -> None:
        self._connection: _Connection | None = connection
        self._transaction: Transaction | None = None
        self.path = path
        self._wal_fd: int | None = None
        self._commits = 0
        self._durable_at: tuple[int, int] | None = None
        """``(commits, total_changes)`` when the WAL was last synced: unchanged means nothing to sync. None at
        first: what an earlier process committed (and crashed before syncing) may still be in the WAL unsynced."""
        self.durable_syncs = 0
        """How many times :meth:`make_durable` synced the WAL (calls with no commit since the last one do not)."""

    @classmethod
    def open(
        cls,
        path: Path,
        key: bytes,
        *,
        create: bool = False,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Database:
        """Open (or with ``create`` make) the database at ``path`` with a raw 32-byte key and migrate it.

        A create that fails removes the files it made; an open that fails writes nothing.
        """
        if len(key) != KEY_LENGTH:
            raise ValueError("the database key must be 32 bytes")
        check_migrations(list(migrations))
        if create:
            with mapped_errors():
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                except FileExistsError as exc:
                    raise errors.ProfileExists(f"a database already exists at {path}") from exc
                # SQLite gives the -wal and -shm files the mode of the database file, so 0600 covers them.
                try:
                    os.fchmod(fd, FILE_MODE)
                finally:
                    os.close(fd)
        elif not path.is_file():
            raise errors.ProfileNotFound(f"no message database at {path}")
        try:
            connection = _connect(path, key)
        except BaseException:
            if create:
                remove_database_files(path)
            raise
        database = cls(connection, path)
        try:
            database._migrate(migrations)
        except BaseException:
            database.close()
            if create:
                remove_database_files(path)
            raise
        return database

    # -- queries

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception (including a failed commit) rolls everything back."""
        connection = self._live()
        if self._transaction is not None:
            raise RuntimeError("transactions do not nest")
        with mapped_errors(self.path):
            connection.execute("BEGIN IMMEDIATE")
        transaction = Transaction(connection)
        self._transaction = transaction
        try:
            yield transaction
            with mapped_errors(self.path):
                connection.execute("COMMIT")
            self._commits += 1
        except BaseException:
            if connection.in_transaction:
                with suppress(sqlcipher3.Error):
                    connection.execute("ROLLBACK")
            raise
        finally:
            transaction._end()
            self._transaction = None

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Read outside a transaction (inside one, use the :class:`Transaction`)."""
        with mapped_errors():
            return self._live().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> Row | None:
        with mapped_errors():
            return self._live().execute(sql, params).fetchone()

    @property
    def schema_version(self) -> int:
        return _schema_version(self._live())

    def check_integrity(self, *, quick: bool = True) -> None:
        """Run SQLite's ``quick_check`` (or the full ``integrity_check``); raise ``DatabaseCorrupt`` on damage."""
        rows = self.query("PRAGMA quick_check" if quick else "PRAGMA integrity_check")
        if [tuple(row) for row in rows] != [("ok",)]:
            raise errors.DatabaseCorrupt()

    # -- durability

    def make_durable(self) -> None:
        """Make every transaction committed so far durable against power loss: one fsync of the ``-wal`` file.

        See the module docstring for what is durable before and after. Does nothing when nothing was committed
        since the last call. Raises ``DatabaseIOError`` (or ``DiskFull``...) if the sync fails: the commits may
        then not be durable, and nothing that depends on them may leave the machine.
        """
        sync = self.durability()
        if sync is not None:
            sync()

    def durability(self) -> Callable[[], None] | None:
        """:meth:`make_durable` in two halves, for a caller that must not wait on the disk: this call fixes what
        is covered (every commit made so far); the callable it returns does the fsync, on any thread, while this
        connection goes on committing. None when nothing was committed since the last sync."""
        connection = self._live()
        if self._transaction is not None:
            raise RuntimeError("make_durable inside a transaction would not cover it")
        written = (self._commits, connection.total_changes)  # a write outside transaction() changes the latter
        if written == self._durable_at:
            return None
        with mapped_errors(self.path):
            if self._wal_fd is None:
                try:
                    self._wal_fd = _open_for_sync(self.path.with_name(self.path.name + "-wal"))
                except FileNotFoundError:  # no WAL (yet): what was committed is in the database file itself
                    fd = _open_for_sync(self.path)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                else:
                    # fsync applies to the file, whichever descriptor names it: ours is as good as SQLite's.
                    # The WAL stays the same file (truncated and rewritten in place, never replaced) while a
                    # connection is open; the folder is synced once so that the file's own entry is durable.
                    _sync_folder(self.path.parent)
            # A descriptor of its own: the sync may still run when this database is closed.
            wal_fd = None if self._wal_fd is None else os.dup(self._wal_fd)

        def sync() -> None:
            if wal_fd is not None:
                try:
                    with mapped_errors(self.path):
                        os.fsync(wal_fd)
                finally:
                    os.close(wal_fd)
            self._durable_at = written
            self.durable_syncs += 1

        return sync

    # -- lifetime

    def close(self) -> None:
        """Close the connection (SQLite checkpoints and removes the WAL files); closing twice is harmless."""
        fd, self._wal_fd = self._wal_fd, None
        if fd is not None:
            with suppress(OSError):
                os.close(fd)
        connection, self._connection = self._connection, None
        if connection is not None:
            with mapped_errors():
                connection.close()

    @property
    def closed(self) -> bool:
        return self._connection is None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _live(self) -> _Connection:
        if self._connection is None:
            raise RuntimeError("the database is closed")
        return self._connection

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        current = self.schema_version
        known = len(migrations)
        if current > known:
            raise errors.SchemaTooNew(
                f"this profile's database is at schema version {current}, this Sottovoce knows up to {known}: "
                "update the application to open it"
            )
        for migration in migrations[current:]:
            with self.transaction() as tx:
                tx.execute(_SCHEMA_VERSION_TABLE)
                tx.executescript(migration.sql)
                tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time())),
                )


_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


def _open_for_sync(path: Path) -> int:
    """A descriptor to fsync ``path`` through (Windows wants write access for that; POSIX does not)."""
    return os.open(path, (os.O_RDWR if os.name == "nt" else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0))


def _sync_folder(folder: Path) -> None:
    """fsync a directory, so that the files created in it stay there after a power loss (POSIX only)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _schema_version(connection: _Connection) -> int:
    with mapped_errors():
        exists = connection.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            return 0
        row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _connect(path: Path, key: bytes) -> _Connection:
    """Open ``path`` read-write (never creating it), key it, prove the key on a first read, set the pragmas."""
    with mapped_errors():
        uri = "file:" + quote(str(path.resolve())) + "?mode=rw"
        connection = cast(_Connection, sqlcipher3.connect(uri, uri=True, isolation_level=None))
    try:
        with mapped_errors(path):
            # Process-wide in SQLCipher, but cheap; must precede the key so a wrong key is not logged.
            connection.execute("PRAGMA cipher_log_level = NONE")
            connection.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
            connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            # Per-connection settings first: nothing below writes except journal_mode on a new file.
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA secure_delete = ON")
            connection.execute("PRAGMA temp_store = MEMORY")
            connection.execute("PRAGMA synchronous = NORMAL")  # durable on demand: Database.make_durable
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise errors.StoreError(f"the database cannot use WAL mode (got {mode!r})")
    except BaseException:
        with suppress(sqlcipher3.Error):
            connection.close()
        raise
    return connection
