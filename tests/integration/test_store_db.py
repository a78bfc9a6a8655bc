"""The SQLCipher database layer against real files: keys, foreign files, transactions, migrations, disk."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.keyring import KeyCustody, ScryptParams
from engine.store import errors
from engine.store.database import Database, split_statements
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.profile_db import DATABASE_FILE, open_profile_database

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MARKER = "PLAINTEXT-MARKER-7f3a9c"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(directory: Path) -> dict[str, str]:
    """Name → sha256 of every file below ``directory``."""
    return {str(p.relative_to(directory)): digest(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def make_db(path: Path, key: bytes = KEY) -> None:
    with Database.open(path, key, create=True) as db, db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('hello', 'world')")


# --- keys and foreign files -------------------------------------------------------------------------------------


def test_create_and_reopen_with_the_right_key(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    make_db(path)
    with Database.open(path, KEY) as db:
        assert db.query("SELECT key, value FROM meta") == [("hello", "world")]
        assert db.query_one("PRAGMA journal_mode") == ("wal",)
        assert db.query_one("PRAGMA foreign_keys") == (1,)
        assert db.query_one("PRAGMA secure_delete") == (1,)
        assert db.query_one("PRAGMA temp_store") == (2,)  # MEMORY


def test_wrong_key_is_typed_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    make_db(path)
    before = snapshot(tmp_path)
    with pytest.raises(errors.NotADatabase) as caught:
        Database.open(path, OTHER_KEY)
    assert caught.value.code == "not_a_database"
    assert snapshot(tmp_path) == before  # same bytes, and no -wal/-shm left behind


@pytest.mark.parametrize("kind", ["random bytes", "plain sqlite", "empty-looking header"])
def test_foreign_file_is_not_a_database(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "foreign.db"
    if kind == "random bytes":
        path.write_bytes(os.urandom(8192))
    elif kind == "plain sqlite":
        plain = sqlite3.connect(path)
        plain.execute("CREATE TABLE t (x)")
        plain.execute("INSERT INTO t VALUES ('not encrypted')")
        plain.commit()
        plain.close()
    else:
        path.write_bytes(b"SQLite format 3\x00" + bytes(4080))
    before = snapshot(tmp_path)
    with pytest.raises(errors.NotADatabase):
        Database.open(path, KEY)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("keep", [100, 4096 + 17, "half"])
def test_truncated_database_is_typed(tmp_path: Path, keep: int | str) -> None:
    path = tmp_path / "a.db"
    with Database.open(path, KEY, create=True) as db, db.transaction() as tx:
        tx.execute("CREATE TABLE big (x BLOB)")
        tx.executemany("INSERT INTO big VALUES (?)", [(os.urandom(3000),) for _ in range(40)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep == "half" else int(keep)])
    before = snapshot(tmp_path)
    with pytest.raises((errors.NotADatabase, errors.DatabaseCorrupt)) as caught:
        Database.open(path, KEY)
    print(f"\ntruncated to {keep}: {type(caught.value).__name__}")
    assert snapshot(tmp_path) == before


def test_damaged_page_is_database_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Database.open(path, KEY, create=True) as db, db.transaction() as tx:
        tx.execute("CREATE TABLE big (x BLOB)")
        tx.executemany("INSERT INTO big VALUES (?)", [(os.urandom(3000),) for _ in range(40)])
    data = bytearray(path.read_bytes())
    data[len(data) - 20 * 4096 + 100] ^= 0xFF  # inside one of big's pages (written last): its HMAC fails
    path.write_bytes(bytes(data))
    with Database.open(path, KEY) as db:
        with pytest.raises(errors.DatabaseCorrupt):
            db.query("SELECT count(*) FROM big WHERE length(x) > 0")
        with pytest.raises(errors.DatabaseCorrupt):
            db.check_integrity()


def test_not_readable_as_plain_sqlite_and_no_plaintext_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = Database.open(path, KEY, create=True)
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (MARKER, MARKER.encode()))
    files = [path, path.with_name("a.db-wal"), path.with_name("a.db-shm")]
    assert all(f.exists() for f in files)  # WAL mode: the marker sits in the WAL while open
    for f in files:
        assert MARKER.encode() not in f.read_bytes(), f
        assert b"SQLite format 3" not in f.read_bytes()[:16]
    db.close()
    assert MARKER.encode() not in path.read_bytes()
    plain = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="file is not a database"):
        plain.execute("SELECT * FROM sqlite_master").fetchall()
    plain.close()


# --- transactions -----------------------------------------------------------------------------------------------


def test_rollback_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Database.open(path, KEY, create=True) as db:
        with pytest.raises(ZeroDivisionError), db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('a', 1)")
            tx.execute("CREATE TABLE scratch (x)")
            assert tx.query("SELECT count(*) FROM meta") == [(1,)]
            _ = 1 / 0
        assert db.query("SELECT count(*) FROM meta") == [(0,)]
        assert db.query("SELECT name FROM sqlite_schema WHERE name = 'scratch'") == []
        with pytest.raises(RuntimeError, match="ended"):
            tx.execute("SELECT 1")
        # The connection is usable afterwards.
        with db.transaction() as tx2:
            tx2.execute("INSERT INTO meta (key, value) VALUES ('b', 2)")
    with Database.open(path, KEY) as db:
        assert db.query("SELECT key FROM meta") == [("b",)]


def test_constraint_violation_is_typed_and_rolls_back(tmp_path: Path) -> None:
    with Database.open(tmp_path / "a.db", KEY, create=True) as db:
        with pytest.raises(errors.ConstraintViolation), db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('k', 1)")
            tx.execute("INSERT INTO meta (key, value) VALUES ('k', 2)")
        assert db.query("SELECT count(*) FROM meta") == [(0,)]


def test_transactions_do_not_nest_and_closed_database_refuses(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "a.db", KEY, create=True)
    with db.transaction(), pytest.raises(RuntimeError, match="nest"), db.transaction():
        pass
    db.close()
    db.close()
    assert db.closed
    with pytest.raises(RuntimeError, match="closed"), db.transaction():
        pass


def test_split_statements_keeps_trigger_bodies() -> None:
    script = """
        CREATE TABLE a (x TEXT);
        CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'a;b' WHERE x = new.x; END;
        INSERT INTO a VALUES (';');
    """
    assert len(split_statements(script)) == 3


# --- migrations -------------------------------------------------------------------------------------------------

LATEST = len(MIGRATIONS)
APPLIED = [(migration.version, migration.name) for migration in MIGRATIONS]
NEXT = Migration(LATEST + 1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);")


def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Database.open(path, KEY, create=True) as db:
        assert db.schema_version == LATEST == 3
    with Database.open(path, KEY) as db:
        assert [row[:2] for row in db.query("SELECT version, name FROM schema_version")] == APPLIED
    with Database.open(path, KEY, migrations=[*MIGRATIONS, NEXT]) as db:
        assert db.schema_version == LATEST + 1
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES ('x')")
    with Database.open(path, KEY, migrations=[*MIGRATIONS, NEXT]) as db:
        assert [row[:2] for row in db.query("SELECT version, name FROM schema_version")] == [
            *APPLIED,
            (LATEST + 1, "notes"),
        ]
        assert db.query("SELECT body FROM notes") == [("x",)]


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    make_db(path)
    broken = Migration(LATEST + 1, "broken", "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);")
    with pytest.raises(errors.StoreError, match="no such table"):
        Database.open(path, KEY, migrations=[*MIGRATIONS, broken])
    with Database.open(path, KEY) as db:
        assert db.schema_version == LATEST
        assert db.query("SELECT name FROM sqlite_schema WHERE name = 'half'") == []


def test_newer_schema_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Database.open(path, KEY, create=True, migrations=[*MIGRATIONS, NEXT]).close()
    before = snapshot(tmp_path)
    with pytest.raises(errors.SchemaTooNew, match=f"version {LATEST + 1}"):
        Database.open(path, KEY)
    assert snapshot(tmp_path) == before


def test_migration_versions_must_be_consecutive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"expected {LATEST + 1}"):
        Database.open(tmp_path / "a.db", KEY, create=True, migrations=[*MIGRATIONS, Migration(LATEST + 2, "gap", "")])
    assert not (tmp_path / "a.db").exists()


# --- profile folder: permissions, failed creates ----------------------------------------------------------------


def test_permissions_are_private_even_with_a_loose_umask(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "profiles" / "alice"
    old = os.umask(0)
    try:
        db = open_profile_database(profile, "pass", create=True, custody=custody)
    finally:
        os.umask(old)
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    assert stat.S_IMODE(profile.parent.stat().st_mode) == 0o700  # made by us, so private too
    names = sorted(p.name for p in profile.iterdir())
    assert names == ["profile.json", DATABASE_FILE, DATABASE_FILE + "-shm", DATABASE_FILE + "-wal"]
    for p in profile.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    db.close()


def test_a_failed_create_removes_what_it_made(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "new" / "alice"
    broken = Migration(LATEST + 1, "broken", "CREATE TABLE oops (;")
    with pytest.raises(errors.StoreError):
        open_profile_database(profile, "pass", create=True, custody=custody, migrations=[*MIGRATIONS, broken])
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_an_existing_profile(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "alice"
    open_profile_database(profile, "pass", create=True, custody=custody).close()
    before = snapshot(profile)
    with pytest.raises(errors.ProfileExists):
        open_profile_database(profile, "pass", create=True, custody=custody)
    assert snapshot(profile) == before


def test_open_without_profile_is_profile_not_found(tmp_path: Path, custody: KeyCustody) -> None:
    with pytest.raises(errors.ProfileNotFound):
        open_profile_database(tmp_path / "nobody", "pass", custody=custody)
    assert list(tmp_path.iterdir()) == []


def test_profile_not_writable(read_only_directory: Path, custody: KeyCustody) -> None:
    with pytest.raises(errors.ProfileNotWritable) as caught:
        open_profile_database(read_only_directory / "alice", "pass", create=True, custody=custody)
    assert caught.value.code == "profile_not_writable"
    assert list(read_only_directory.iterdir()) == []


def test_existing_profile_on_a_read_only_file_system(small_filesystem: Path, custody: KeyCustody) -> None:
    profile = small_filesystem / "alice"
    open_profile_database(profile, "pass", create=True, custody=custody).close()
    before = snapshot(profile)
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    with pytest.raises(errors.ProfileNotWritable):
        open_profile_database(profile, "pass", custody=custody)
    assert snapshot(profile) == before


def test_create_over_a_loose_existing_folder_restores_its_mode(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "alice"
    profile.mkdir()
    profile.chmod(0o755)
    broken = Migration(LATEST + 1, "broken", "CREATE TABLE oops (;")
    with pytest.raises(errors.StoreError):
        open_profile_database(profile, "pass", create=True, custody=custody, migrations=[*MIGRATIONS, broken])
    assert stat.S_IMODE(profile.stat().st_mode) == 0o755
    assert list(profile.iterdir()) == []
    open_profile_database(profile, "pass", create=True, custody=custody).close()
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700


# --- disk full --------------------------------------------------------------------------------------------------


def test_disk_full_from_page_limit_is_typed(tmp_path: Path) -> None:
    """SQLITE_FULL without a small file system: the page limit gives the same "database or disk is full"."""
    with Database.open(tmp_path / "a.db", KEY, create=True) as db:
        with db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
        pages = db.query_one("PRAGMA page_count")
        assert pages is not None
        db.query(f"PRAGMA max_page_count = {pages[0] + 2}")
        with pytest.raises(errors.DiskFull), db.transaction() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('big', ?)", (os.urandom(100_000),))
        assert db.query("SELECT key FROM meta") == [("kept",)]


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no free block left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_disk_full_on_a_full_file_system(small_filesystem: Path, custody: KeyCustody) -> None:
    profile = small_filesystem / "alice"
    db = open_profile_database(profile, "pass", create=True, custody=custody)
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('kept', ?)", (b"committed",))
    filler = small_filesystem / "filler"
    fill(filler)
    with pytest.raises(errors.DiskFull) as caught:
        for i in range(50):
            with db.transaction() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", os.urandom(20_000)))
    assert caught.value.code == "disk_full"
    assert "disk is full" in str(caught.value)
    filler.unlink()  # space returns
    assert db.query("SELECT value FROM meta WHERE key = 'kept'") == [(b"committed",)]
    with db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('after', 'ok')")
    db.close()
    with open_profile_database(profile, "pass", custody=custody) as db:
        assert db.query("SELECT value FROM meta WHERE key IN ('kept', 'after') ORDER BY key") == [
            ("ok",),
            (b"committed",),
        ]
        db.check_integrity(quick=False)


# --- SQLCipher's log --------------------------------------------------------------------------------------------


def test_sqlcipher_prints_nothing_on_a_wrong_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.db"
    make_db(path)
    capfd.readouterr()
    for _ in range(2):
        with pytest.raises(errors.NotADatabase):
            Database.open(path, OTHER_KEY)
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import sqlcipher3
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "raw":  # what SQLCipher does unsilenced: proves the check below can see its log
        c = sqlcipher3.connect(path)
        c.execute("PRAGMA key = \\"x'" + "ab" * 32 + "'\\"")
        try:
            c.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        except sqlcipher3.DatabaseError:
            pass
    else:
        from engine.store import errors
        from engine.store.database import Database
        try:
            Database.open(Path(path), bytes(32))
        except errors.NotADatabase:
            pass
    """
)


def test_sqlcipher_log_is_silent_in_a_fresh_process(tmp_path: Path) -> None:
    """SQLCipher's log level is process-wide: check it from a process where nothing set it before."""
    path = tmp_path / "a.db"
    make_db(path)
    root = Path(__file__).resolve().parents[2]

    def run(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS, str(path), mode],
            capture_output=True,
            text=True,
            cwd=root,
            check=True,
        )
        return done.stderr

    assert "hmac check failed" in run("raw")
    assert run("ours") == ""


# --- figures ----------------------------------------------------------------------------------------------------


def test_print_costs(tmp_path: Path) -> None:
    """Not a benchmark: prints what a passphrase unlock and one durable commit cost here (see ``-s``)."""
    start = time.perf_counter()
    ScryptParams().derive("correct horse battery staple", os.urandom(16))
    scrypt_ms = (time.perf_counter() - start) * 1000
    with Database.open(tmp_path / "a.db", KEY, create=True) as db:
        rounds = 50
        start = time.perf_counter()
        for i in range(rounds):
            with db.transaction() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", os.urandom(200)))
        commit_ms = (time.perf_counter() - start) * 1000 / rounds
    print(f"\nscrypt n=2**17 r=8 p=1: {scrypt_ms:.0f} ms; one SQLCipher commit (WAL, synchronous=FULL): "
          f"{commit_ms:.2f} ms on {tmp_path}")
