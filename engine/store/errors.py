"""Typed errors of the encrypted store and of database-key custody.

Each one leaves the disk as it was: a failed create removes what it made, a failed open writes nothing.
``str(error)`` is one line a user can read; ``error.code`` is a stable machine name.
"""

from __future__ import annotations

from engine.errors import SottovoceError


class StoreError(SottovoceError):
    """Base of every store and key-custody error."""

    code = "store_error"
    default_message = "the message database failed"


# --- key custody ------------------------------------------------------------------------------------------------


class KeyringError(StoreError):
    """The system keyring could not give or keep the database key."""

    code = "keyring_error"
    default_message = "the system keyring failed"


class KeyringUnavailable(KeyringError):
    code = "keyring_unavailable"
    default_message = "no usable system keyring: set a passphrase to protect this profile"


class KeyringLocked(KeyringError):
    """A keyring exists but is locked, or access to it was denied."""

    code = "keyring_locked"
    default_message = "the system keyring is locked or access was denied: unlock it and try again"


class DatabaseKeyMissing(KeyringError):
    """The keyring works but holds no (valid) key for this profile."""

    code = "database_key_missing"
    default_message = "the system keyring holds no key for this profile"


class PassphraseRequired(StoreError):
    code = "passphrase_required"
    default_message = "this profile is protected by a passphrase: enter it to continue"


class WrongPassphrase(StoreError):
    code = "wrong_passphrase"
    default_message = "wrong passphrase"


# --- profile folder ---------------------------------------------------------------------------------------------


class ProfileNotFound(StoreError):
    code = "profile_not_found"
    default_message = "no profile in this folder"


class ProfileExists(StoreError):
    code = "profile_exists"
    default_message = "a profile already exists in this folder"


class ProfileInvalid(StoreError):
    """``profile.json`` is missing fields or cannot be parsed."""

    code = "profile_invalid"
    default_message = "the profile description file is damaged"


class ProfileNotWritable(StoreError):
    code = "profile_not_writable"
    default_message = "the profile folder cannot be written (permission denied or read-only)"


# --- database file ----------------------------------------------------------------------------------------------


class NotADatabase(StoreError):
    """SQLCipher's ``file is not a database``: a foreign file, a damaged header, or the wrong key."""

    code = "not_a_database"
    default_message = "the message database cannot be read: it is not a Sottovoce database or it is damaged"


class DatabaseKeyMismatch(NotADatabase):
    """The key from the keyring is not the key this profile's database was made with."""

    code = "database_key_mismatch"
    default_message = "the key in the system keyring does not open this profile's database"


class DatabaseCorrupt(StoreError):
    code = "database_corrupt"
    default_message = "the message database is damaged"


class DiskFull(StoreError):
    code = "disk_full"
    default_message = "the disk is full: free some space and try again"


class DatabaseBusy(StoreError):
    code = "database_busy"
    default_message = "the profile is in use by another Sottovoce window or process"


class DatabaseIOError(StoreError):
    code = "database_io_error"
    default_message = "a disk error occurred while using the message database"


class ConstraintViolation(StoreError):
    """A UNIQUE, NOT NULL, CHECK or FOREIGN KEY constraint refused a change."""

    code = "constraint_violation"
    default_message = "the database refused a change that breaks one of its rules"


class SchemaTooNew(StoreError):
    code = "schema_too_new"
    default_message = "this profile was written by a newer Sottovoce: update the application to open it"
