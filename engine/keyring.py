"""Custody of a profile's database key: the OS keyring, or a passphrase stretched with scrypt.

*Keyring mode*: 32 random bytes live in the system keyring (Secret Service on Linux) under the service
``sottovoce`` and the profile's id. *Passphrase mode* (chosen at creation when a passphrase is given, or
``SOTTOVOCE_PASSPHRASE`` is set): the key is scrypt(passphrase, salt). The mode is fixed at creation.

``profile.json`` in the profile folder holds no secret: the profile id, the mode, the scrypt salt and
parameters, and a key check (16 bytes of HMAC-SHA256 keyed by the database key) so that a wrong passphrase
or a foreign keyring entry is told apart from a damaged database file without touching the database. The
check gives an attacker nothing the encrypted database (whose first page is authenticated) does not.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Literal, Protocol

import keyring as system_keyring
import keyring.backends.fail
import keyring.errors
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from engine.store import errors
from engine.store.database import mapped_errors
from engine.store.files import make_private_directories, remove_directories, write_private_file

SERVICE_NAME = "sottovoce"
PASSPHRASE_ENV = "SOTTOVOCE_PASSPHRASE"
PROFILE_FILE = "profile.json"
PROFILE_FORMAT = 1
KEY_LENGTH = 32
SALT_LENGTH = 16
PROFILE_ID_BYTES = 16
_KEY_CHECK_LABEL = b"sottovoce/database-key-check/v1"

KeyMode = Literal["keyring", "passphrase"]
RandomSource = Callable[[int], bytes]


class SecretStore(Protocol):
    """What custody needs of a keyring: any ``keyring.backend.KeyringBackend`` fits."""

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: n=2**17, r=8 uses 128 MiB and about a quarter of a second on a laptop core."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=KEY_LENGTH, n=self.n, r=self.r, p=self.p).derive(passphrase.encode())

    def is_sane(self) -> bool:
        """Bounds for parameters read from disk, so a tampered file cannot demand gigabytes."""
        return 2**10 <= self.n <= 2**20 and self.n & (self.n - 1) == 0 and 1 <= self.r <= 32 and 1 <= self.p <= 4


@dataclass(frozen=True)
class ProfileInfo:
    """The non-secret contents of ``profile.json``."""

    profile_id: str
    key_mode: KeyMode
    key_check: bytes
    salt: bytes | None = None
    scrypt: ScryptParams | None = None

    def to_json(self) -> str:
        data: dict[str, object] = {
            "format": PROFILE_FORMAT,
            "profile_id": self.profile_id,
            "key_mode": self.key_mode,
            "key_check": self.key_check.hex(),
        }
        if self.salt is not None and self.scrypt is not None:
            data["kdf"] = {
                "name": "scrypt",
                "salt": self.salt.hex(),
                "n": self.scrypt.n,
                "r": self.scrypt.r,
                "p": self.scrypt.p,
            }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ProfileInfo:
        """Parse ``profile.json``; raise ``ProfileInvalid`` for anything unexpected."""
        try:
            data = json.loads(text)
            if data["format"] != PROFILE_FORMAT:
                raise errors.ProfileInvalid(f"unknown profile format {data['format']!r}")
            mode = data["key_mode"]
            profile_id = data["profile_id"]
            key_check = bytes.fromhex(data["key_check"])
            if mode not in ("keyring", "passphrase") or not isinstance(profile_id, str) or not profile_id:
                raise errors.ProfileInvalid()
            if mode == "keyring":
                return cls(profile_id, "keyring", key_check)
            kdf = data["kdf"]
            params = ScryptParams(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
            salt = bytes.fromhex(kdf["salt"])
            if kdf["name"] != "scrypt" or not params.is_sane() or len(salt) < SALT_LENGTH:
                raise errors.ProfileInvalid()
            return cls(profile_id, "passphrase", key_check, salt, params)
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.ProfileInvalid() from exc


@dataclass(frozen=True)
class DatabaseKey:
    """A database key and the profile description that goes with it (the key is kept out of ``repr``)."""

    key: bytes = field(repr=False)
    profile: ProfileInfo

    @property
    def mode(self) -> KeyMode:
        return self.profile.key_mode


def key_check(key: bytes) -> bytes:
    return hmac.new(key, _KEY_CHECK_LABEL, sha256).digest()[:16]


def read_profile_info(profile_dir: Path) -> ProfileInfo:
    """Read ``profile.json``; ``ProfileNotFound`` when absent, ``ProfileInvalid`` when damaged."""
    path = Path(profile_dir) / PROFILE_FILE
    with mapped_errors():
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise errors.ProfileNotFound(f"no profile in {profile_dir}") from exc
        except UnicodeDecodeError as exc:
            raise errors.ProfileInvalid() from exc
    return ProfileInfo.from_json(text)


def write_profile_info(profile_dir: Path, info: ProfileInfo) -> None:
    """Write ``profile.json`` atomically, mode 0600."""
    write_private_file(Path(profile_dir) / PROFILE_FILE, info.to_json().encode())


def key_mode(profile_dir: Path) -> KeyMode:
    """Which custody protects this profile, for a settings screen: ``"keyring"`` or ``"passphrase"``."""
    return read_profile_info(profile_dir).key_mode


class KeyCustody:
    """Makes and finds database keys. Every collaborator is injectable for tests.

    ``keyring_backend``: ``None`` means the ``keyring`` library's current backend, looked up at each call.
    ``random_bytes``: the source of the key, salt and profile id (default ``secrets.token_bytes``).
    ``environ``: where ``SOTTOVOCE_PASSPHRASE`` is read (default ``os.environ``).
    """

    def __init__(
        self,
        *,
        keyring_backend: SecretStore | None = None,
        random_bytes: RandomSource = secrets.token_bytes,
        scrypt: ScryptParams | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._backend = keyring_backend
        self._random = random_bytes
        self._scrypt = scrypt or ScryptParams()
        self._environ = environ

    # -- public

    def passphrase(self, explicit: str | None) -> str | None:
        """The passphrase in force: the explicit one, else a non-empty ``SOTTOVOCE_PASSPHRASE``."""
        if explicit is not None:
            if not explicit:
                raise errors.PassphraseRequired("the passphrase must not be empty")
            return explicit
        environ = os.environ if self._environ is None else self._environ
        return environ.get(PASSPHRASE_ENV) or None

    def new_key(self, passphrase: str | None = None) -> DatabaseKey:
        """A fresh key for a new profile; in keyring mode it is already stored (undo with :meth:`forget`).

        Passphrase mode when a passphrase is in force, else keyring mode (``KeyringUnavailable`` when there
        is no usable keyring, ``KeyringLocked`` when it is locked). Writes nothing to disk.
        """
        profile_id = self._random_exact(PROFILE_ID_BYTES).hex()
        phrase = self.passphrase(passphrase)
        if phrase is not None:
            salt = self._random_exact(SALT_LENGTH)
            key = self._scrypt.derive(phrase, salt)
            return DatabaseKey(key, ProfileInfo(profile_id, "passphrase", key_check(key), salt, self._scrypt))
        key = self._random_exact(KEY_LENGTH)
        backend = self._usable_backend()
        with _keyring_errors():
            backend.set_password(SERVICE_NAME, profile_id, key.hex())
            stored = backend.get_password(SERVICE_NAME, profile_id)
        if stored != key.hex():
            with contextlib.suppress(Exception):
                backend.delete_password(SERVICE_NAME, profile_id)
            raise errors.KeyringUnavailable("the system keyring did not keep the key: set a passphrase instead")
        return DatabaseKey(key, ProfileInfo(profile_id, "keyring", key_check(key)))

    def load_key(self, profile_dir: Path, passphrase: str | None = None) -> DatabaseKey:
        """The key of an existing profile, verified against its key check; reads only.

        A passphrase given to a keyring-mode profile is ignored (the key is random, not derived).
        """
        info = read_profile_info(profile_dir)
        if info.key_mode == "passphrase":
            phrase = self.passphrase(passphrase)
            if phrase is None:
                raise errors.PassphraseRequired()
            assert info.salt is not None and info.scrypt is not None
            key = info.scrypt.derive(phrase, info.salt)
            if not hmac.compare_digest(key_check(key), info.key_check):
                raise errors.WrongPassphrase()
            return DatabaseKey(key, info)
        backend = self._usable_backend()
        with _keyring_errors():
            stored = backend.get_password(SERVICE_NAME, info.profile_id)
        if stored is None:
            raise errors.DatabaseKeyMissing()
        try:
            key = bytes.fromhex(stored)
        except ValueError:
            key = b""
        if len(key) != KEY_LENGTH:
            raise errors.DatabaseKeyMissing("the system keyring's entry for this profile is damaged")
        if not hmac.compare_digest(key_check(key), info.key_check):
            raise errors.DatabaseKeyMismatch()
        return DatabaseKey(key, info)

    def forget(self, info: ProfileInfo) -> None:
        """Delete the keyring entry of a keyring-mode profile (best effort; passphrase mode has none)."""
        if info.key_mode != "keyring":
            return
        with contextlib.suppress(Exception):
            self._usable_backend().delete_password(SERVICE_NAME, info.profile_id)

    # -- internals

    def _random_exact(self, length: int) -> bytes:
        data = self._random(length)
        if len(data) != length:
            raise ValueError(f"the random source returned {len(data)} bytes, expected {length}")
        return data

    def _usable_backend(self) -> SecretStore:
        backend: SecretStore = self._backend if self._backend is not None else system_keyring.get_keyring()
        if isinstance(backend, keyring.backends.fail.Keyring):
            raise errors.KeyringUnavailable()
        return backend


def obtain_database_key(
    profile_dir: Path, *, passphrase: str | None = None, create: bool, custody: KeyCustody | None = None
) -> bytes:
    """The raw database key of a profile. ``create`` makes a new key, the folder (0700) and ``profile.json``.

    For whole-profile creation with clean-up of the database file too, use
    :func:`engine.store.profile_db.open_profile_database`.
    """
    custody = custody or KeyCustody()
    if not create:
        return custody.load_key(profile_dir, passphrase).key
    if (Path(profile_dir) / PROFILE_FILE).exists():
        raise errors.ProfileExists()
    made_dirs = make_private_directories(profile_dir)
    made: DatabaseKey | None = None
    try:
        made = custody.new_key(passphrase)
        write_profile_info(profile_dir, made.profile)
    except BaseException:
        if made is not None:
            custody.forget(made.profile)
        remove_directories(made_dirs)
        raise
    return made.key


@contextlib.contextmanager
def _keyring_errors() -> Iterator[None]:
    """Map the keyring library's (and its D-Bus backends') exceptions to typed errors."""
    try:
        yield
    except keyring.errors.KeyringLocked as exc:
        raise errors.KeyringLocked() from exc
    except Exception as exc:
        # secretstorage may leak its own exceptions past keyring; match by name to avoid importing it.
        if type(exc).__name__ in {"LockedException", "PromptDismissedException"}:
            raise errors.KeyringLocked() from exc
        if "denied" in str(exc).lower():
            raise errors.KeyringLocked() from exc
        raise errors.KeyringUnavailable(f"the system keyring failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
