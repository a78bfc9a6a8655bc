"""The user's address book: contacts as local records of the session store (``ContactRecord``, kind ``contacts``).

A contact is an identity (33-byte compressed chat key) the user added, with the nickname they chose (unique in
a profile, compared case-insensitively), the display name its contact code announced (an unsigned hint), and
whether the user verified it. The records never leave this installation. Pure functions over a store reader
or writer: the caller owns the transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from proto import local_state_pb2 as pb

from .errors import MalformedMessage, SottovoceError
from .identity import chat_key_text
from .store.port import StoreReader, StoreWriter

CONTACTS = "contacts"
"""Record kind of the session store: key = C(IK), value = ``ContactRecord``."""
MAX_NAME_CHARS = 64
_IDENTITY_LEN = 33


class ContactError(SottovoceError):
    """Base of the address book's errors."""

    code = "contact_error"
    default_message = "contact error"


class ContactNotFound(ContactError):
    code = "contact_not_found"
    default_message = "no such contact"


class ContactNameTaken(ContactError):
    code = "contact_name_taken"
    default_message = "another contact already has that name"


class InvalidContactName(ContactError):
    code = "invalid_contact_name"
    default_message = "a contact name has 1 to 64 characters, without control characters"


class CannotAddSelf(ContactError):
    code = "cannot_add_self"
    default_message = "that is your own chat key: add another account as a contact"


@dataclass(frozen=True, slots=True)
class Contact:
    """One address-book entry. ``identity`` is the 33-byte compressed chat key."""

    identity: bytes
    name: str
    display_name: str = ""
    verified: bool = False
    added_ns: int = 0
    added: bool = False
    """I sent this contact a request or accepted its own (the contact-request state; not stored here)"""
    has_added_us: bool = False
    blocked: bool = False

    @property
    def mutual(self) -> bool:
        """Both sides added each other: what status-go needs to show the chat."""
        return self.added and self.has_added_us

    @property
    def chat_key(self) -> str:
        """The ``zQ3sh…`` form of :attr:`identity`."""
        return chat_key_text(self.identity)


def check_name(name: str) -> str:
    """The trimmed nickname, or :class:`InvalidContactName`.

    A name cannot be a chat key (``zQ3…`` or ``0x04…``): names and keys are both accepted where a recipient
    is asked for, and must not be confused.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidContactName()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidContactName()
    if name.startswith(("zQ3", "0x04", "0X04")):
        raise InvalidContactName("a contact name cannot look like a chat key")
    return name


def to_bytes(contact: Contact) -> bytes:
    return pb.ContactRecord(name=contact.name, display_name=contact.display_name, verified=contact.verified,
                            added_ns=contact.added_ns).SerializeToString(deterministic=True)


def from_bytes(identity: bytes, data: bytes) -> Contact:
    record = pb.ContactRecord()
    try:
        record.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise MalformedMessage("stored contact record is corrupted") from exc
    if len(identity) != _IDENTITY_LEN or not record.name:
        raise MalformedMessage("stored contact record is incomplete")
    return Contact(bytes(identity), record.name, record.display_name, record.verified, record.added_ns)


def load_contacts(store: StoreReader) -> list[Contact]:
    """Every contact, by name (case-insensitively)."""
    contacts = [from_bytes(key, value) for key, value in store.records(CONTACTS)]
    return sorted(contacts, key=lambda c: (c.name.casefold(), c.name))


def load_contact(store: StoreReader, identity: bytes) -> Contact | None:
    data = store.record(CONTACTS, identity)
    return None if data is None else from_bytes(identity, data)


def find_by_name(contacts: Iterable[Contact], name: str) -> Contact | None:
    """The contact called ``name`` (case-insensitively), or None."""
    wanted = name.strip().casefold()
    return next((c for c in contacts if c.name.casefold() == wanted), None)


def unique_name(contacts: Iterable[Contact], name: str, identity: bytes | None = None) -> str:
    """``name``, or ``name (2)``, ``name (3)``... if another contact than ``identity`` is called that."""
    known = list(contacts)
    candidate, n = name, 2
    while (other := find_by_name(known, candidate)) is not None and other.identity != identity:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def delete_contact(writer: StoreWriter, identity: bytes) -> None:
    writer.delete_record(CONTACTS, identity)


def save_contact(writer: StoreWriter, contact: Contact) -> None:
    """Insert or replace ``contact``; :class:`ContactNameTaken` when another identity has its name."""
    other = find_by_name(load_contacts(writer), contact.name)
    if other is not None and other.identity != contact.identity:
        raise ContactNameTaken(f"another contact is already called {other.name!r}")
    writer.put_record(CONTACTS, contact.identity, to_bytes(contact))
