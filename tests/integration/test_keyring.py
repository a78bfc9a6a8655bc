"""Database-key custody: the real Secret Service, passphrase mode, missing and locked keyrings."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

from engine.keyring import (
    PASSPHRASE_ENV,
    PROFILE_FILE,
    SERVICE_NAME,
    KeyCustody,
    ScryptParams,
    key_mode,
    obtain_database_key,
    read_profile_info,
)
from engine.store import errors
from engine.store.migrations import MIGRATIONS, Migration
from engine.store.profile_db import open_profile_database

from .conftest import FAST_SCRYPT, MemoryKeyring


def snapshot(directory: Path) -> dict[str, str]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def put(profile: Path, custody: KeyCustody, passphrase: str | None = None, value: str = "v") -> None:
    with open_profile_database(profile, passphrase, custody=custody) as db, db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (value, value))


@pytest.fixture
def keyring_profiles(secret_service: KeyringBackend) -> Iterator[list[Path]]:
    """Profiles whose keyring entries are removed from the real Secret Service after the test."""
    made: list[Path] = []
    yield made
    for profile in made:
        try:
            info = read_profile_info(profile)
        except errors.StoreError:
            continue
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            secret_service.delete_password(SERVICE_NAME, info.profile_id)


# --- the real Secret Service ------------------------------------------------------------------------------------


def test_key_is_stored_in_the_keyring_and_reused(
    tmp_path: Path, secret_service: KeyringBackend, keyring_profiles: list[Path]
) -> None:
    profile = tmp_path / "alice"
    keyring_profiles.append(profile)
    custody = KeyCustody(environ={})
    with open_profile_database(profile, create=True, custody=custody) as db, db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('greeting', 'hi')")
    info = read_profile_info(profile)
    assert key_mode(profile) == "keyring"
    stored = secret_service.get_password(SERVICE_NAME, info.profile_id)
    assert stored is not None and len(bytes.fromhex(stored)) == 32
    text = (profile / PROFILE_FILE).read_text()
    assert stored not in text and "salt" not in text  # no secret, and no KDF in keyring mode
    key = obtain_database_key(profile, create=False, custody=custody)
    assert key.hex() == stored
    assert obtain_database_key(profile, create=False, custody=custody) == key
    with open_profile_database(profile, custody=custody) as db:
        assert db.query("SELECT value FROM meta") == [("hi",)]


def test_deleted_or_foreign_keyring_entry_is_typed(
    tmp_path: Path, secret_service: KeyringBackend, keyring_profiles: list[Path]
) -> None:
    profile = tmp_path / "alice"
    keyring_profiles.append(profile)
    custody = KeyCustody(environ={})
    open_profile_database(profile, create=True, custody=custody).close()
    info = read_profile_info(profile)
    before = snapshot(profile)
    secret_service.set_password(SERVICE_NAME, info.profile_id, "11" * 32)
    with pytest.raises(errors.DatabaseKeyMismatch):
        open_profile_database(profile, custody=custody)
    secret_service.delete_password(SERVICE_NAME, info.profile_id)
    with pytest.raises(errors.DatabaseKeyMissing):
        open_profile_database(profile, custody=custody)
    assert snapshot(profile) == before


def test_passphrase_from_the_environment_skips_the_keyring(
    tmp_path: Path, secret_service: KeyringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    profile = tmp_path / "alice"
    custody = KeyCustody(scrypt=FAST_SCRYPT)
    put_created(profile, custody)
    info = read_profile_info(profile)
    assert key_mode(profile) == "passphrase"
    assert info.salt is not None and len(info.salt) == 16
    assert secret_service.get_password(SERVICE_NAME, info.profile_id) is None
    put(profile, custody, value="again")
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(errors.PassphraseRequired):
        open_profile_database(profile, custody=custody)
    put(profile, custody, "correct horse battery staple", value="explicit")


def put_created(profile: Path, custody: KeyCustody, passphrase: str | None = None) -> None:
    with open_profile_database(profile, passphrase, create=True, custody=custody) as db, db.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES ('created', 1)")


def test_wrong_passphrase_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    profile = tmp_path / "alice"
    custody = KeyCustody(scrypt=FAST_SCRYPT)
    put_created(profile, custody)
    salt = json.loads((profile / PROFILE_FILE).read_text())["kdf"]["salt"]
    before = snapshot(profile)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(errors.WrongPassphrase) as caught:
        open_profile_database(profile, custody=custody)
    assert caught.value.code == "wrong_passphrase"
    with pytest.raises(errors.WrongPassphrase):
        obtain_database_key(profile, create=False, custody=custody)
    with pytest.raises(errors.WrongPassphrase):  # an explicit passphrase wins over the environment
        open_profile_database(profile, "also wrong", custody=custody)
    assert snapshot(profile) == before
    assert json.loads((profile / PROFILE_FILE).read_text())["kdf"]["salt"] == salt
    with pytest.raises(errors.ProfileExists):  # a second create must not replace the salt either
        open_profile_database(profile, "other", create=True, custody=custody)
    assert snapshot(profile) == before
    put(profile, custody, "right")


# --- no keyring, locked keyring ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_backend_without_passphrase(tmp_path: Path) -> None:
    profile = tmp_path / "alice"
    custody = KeyCustody(environ={})
    with pytest.raises(errors.KeyringUnavailable) as caught:
        open_profile_database(profile, create=True, custody=custody)
    assert caught.value.code == "keyring_unavailable"
    assert "passphrase" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the folder it made is gone again
    with pytest.raises(errors.KeyringUnavailable):
        obtain_database_key(profile, create=True, custody=custody)
    assert not (profile / PROFILE_FILE).exists()
    # With a passphrase, the same machine works.
    put_created(profile, KeyCustody(environ={}, scrypt=FAST_SCRYPT), "pass")
    assert key_mode(profile) == "passphrase"


def test_keyring_profile_when_the_keyring_disappears(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    profile = tmp_path / "alice"
    custody = KeyCustody(keyring_backend=memory_keyring, environ={})
    put_created(profile, custody)
    before = snapshot(profile)
    with pytest.raises(errors.KeyringUnavailable):
        open_profile_database(profile, "a passphrase cannot stand in for a random key", custody=KeyCustody(
            keyring_backend=keyring.backends.fail.Keyring(), environ={}
        ))
    memory_keyring.locked = True
    with pytest.raises(errors.KeyringLocked) as caught:
        open_profile_database(profile, custody=custody)
    assert caught.value.code == "keyring_locked"
    assert snapshot(profile) == before


def test_locked_keyring_on_create_leaves_nothing(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.locked = True
    with pytest.raises(errors.KeyringLocked):
        open_profile_database(tmp_path / "alice", create=True, custody=KeyCustody(
            keyring_backend=memory_keyring, environ={}
        ))
    assert list(tmp_path.iterdir()) == []


def test_a_keyring_that_drops_secrets_is_unavailable(tmp_path: Path) -> None:
    class Forgetful(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            pass

    with pytest.raises(errors.KeyringUnavailable, match="did not keep"):
        open_profile_database(tmp_path / "alice", create=True, custody=KeyCustody(
            keyring_backend=Forgetful(), environ={}
        ))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_create_removes_the_keyring_entry(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "sottovoce.db").write_bytes(b"someone else's")
    custody = KeyCustody(keyring_backend=memory_keyring, environ={})
    with pytest.raises(errors.ProfileExists):
        open_profile_database(tmp_path / "alice", create=True, custody=custody)
    assert memory_keyring.entries == {}
    broken = [*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", "SELECT * FROM nowhere;")]
    with pytest.raises(errors.StoreError):
        open_profile_database(tmp_path / "bob", create=True, custody=custody, migrations=broken)
    assert memory_keyring.entries == {}
    assert not (tmp_path / "bob").exists()


def test_an_interrupted_create_is_replaced(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """A profile.json without a database (a create cut short) does not block a new create."""
    profile = tmp_path / "alice"
    custody = KeyCustody(keyring_backend=memory_keyring, environ={})
    profile.mkdir()
    obtain_database_key(profile, create=True, custody=custody)  # profile.json, then no database
    stale = read_profile_info(profile)
    put_created(profile, custody)
    fresh = read_profile_info(profile)
    assert fresh.profile_id != stale.profile_id
    assert list(memory_keyring.entries) == [(SERVICE_NAME, fresh.profile_id)]


def _locked_collection(secret_service: KeyringBackend) -> Iterator[KeyringBackend]:
    """A new gnome-keyring collection, locked, and a SecretService backend pointed at it."""
    try:
        import secretstorage
        from secretstorage.util import DBusAddressWrapper, format_secret, open_session
    except ImportError:
        pytest.skip("secretstorage is not installed")
    connection = secretstorage.dbus_init()
    internal = DBusAddressWrapper(
        "/org/freedesktop/secrets", "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface", connection
    )
    session = open_session(connection)
    password = uuid.uuid4().hex.encode()
    label = f"sottovoce-test-{uuid.uuid4().hex[:8]}"
    try:
        (path,) = internal.call(
            "CreateWithMasterPassword",
            "a{sv}(oayays)",
            {"org.freedesktop.Secret.Collection.Label": ("s", label)},
            format_secret(session, password, "text/plain"),
        )
    except Exception as exc:
        pytest.skip(f"cannot make a test collection without a prompt (not gnome-keyring?): {exc}")
    collection = secretstorage.Collection(connection, path)
    try:
        collection.lock()
        backend = SecretService.Keyring()
        backend.preferred_collection = path  # type: ignore[attr-defined]
        yield backend
    finally:
        internal.call("UnlockWithMasterPassword", "o(oayays)", path, format_secret(session, password, "text/plain"))
        collection.delete()
        connection.close()


@pytest.fixture
def locked_secret_service(secret_service: KeyringBackend) -> Iterator[KeyringBackend]:
    yield from _locked_collection(secret_service)


def test_a_locked_secret_service_collection(tmp_path: Path, locked_secret_service: KeyringBackend) -> None:
    custody = KeyCustody(keyring_backend=locked_secret_service, environ={})
    with pytest.raises(errors.KeyringLocked) as caught:
        open_profile_database(tmp_path / "alice", create=True, custody=custody)
    assert "locked" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- injected randomness, tampering, cost -----------------------------------------------------------------------


def test_randomness_is_injectable(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    counter = iter(range(1, 1000))

    def fake_random(n: int) -> bytes:
        return bytes([next(counter)]) * n

    custody = KeyCustody(keyring_backend=memory_keyring, random_bytes=fake_random, scrypt=FAST_SCRYPT, environ={})
    key = obtain_database_key(tmp_path / "a", create=True, custody=custody)
    assert read_profile_info(tmp_path / "a").profile_id == "01" * 16
    assert key == bytes([2]) * 32
    key = obtain_database_key(tmp_path / "b", passphrase="pw", create=True, custody=custody)
    info = read_profile_info(tmp_path / "b")
    assert (info.profile_id, info.salt) == ("03" * 16, bytes([4]) * 16)
    assert key == FAST_SCRYPT.derive("pw", bytes([4]) * 16)


def test_tampered_profile_file_is_invalid(tmp_path: Path, custody: KeyCustody) -> None:
    profile = tmp_path / "alice"
    put_created(profile, custody, "pw")
    data = json.loads((profile / PROFILE_FILE).read_text())
    data["kdf"]["n"] = 2**30  # would demand 128 GiB
    (profile / PROFILE_FILE).write_text(json.dumps(data))
    with pytest.raises(errors.ProfileInvalid):
        open_profile_database(profile, "pw", custody=custody)
    (profile / PROFILE_FILE).write_text("{not json")
    with pytest.raises(errors.ProfileInvalid):
        open_profile_database(profile, "pw", custody=custody)


def test_default_scrypt_cost(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """The real parameters end to end (printed with ``-s``)."""
    custody = KeyCustody(keyring_backend=memory_keyring, environ={})
    start = time.perf_counter()
    put_created(tmp_path / "alice", custody, "a real passphrase")
    created = time.perf_counter() - start
    start = time.perf_counter()
    put(tmp_path / "alice", custody, "a real passphrase")
    opened = time.perf_counter() - start
    info = read_profile_info(tmp_path / "alice")
    assert info.scrypt == ScryptParams() and (info.scrypt.n, info.scrypt.r, info.scrypt.p) == (2**17, 8, 1)
    print(f"\npassphrase profile with scrypt n=2**17 r=8 p=1: create {created * 1000:.0f} ms, "
          f"open+commit {opened * 1000:.0f} ms")
