"""What happened, as the session engine reports it once a step is committed."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.port import DeliveryState, StoredMessage


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A chat message was committed: from a peer, or a copy of one an own installation sent."""

    message: StoredMessage


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    """An outgoing message's state changed (queued -> sent -> delivered)."""

    message_id: str
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class InstallationFound:
    """A verified bundle named an installation we did not know (``own`` for this account's devices)."""

    identity: bytes
    installation_id: str
    own: bool


@dataclass(frozen=True, slots=True)
class InstallationPaired:
    """An own installation was enabled (here by the user, or by its pairing message aimed at us)."""

    installation_id: str
    name: str


@dataclass(frozen=True, slots=True)
class EnvelopeRejected:
    """An envelope on a subscribed topic was dropped; ``code`` is the typed error's stable name."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class ContactRequestReceived:
    """A peer asked to become a contact (a new request: accept or decline it)."""

    identity: bytes
    request_id: str
    text: str
    display_name: str


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A peer's contact state changed: a request sent, accepted or declined, a removal, a block."""

    identity: bytes
    added: bool
    has_added_us: bool
    blocked: bool


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """A peer announced a new display name (in a chat message, contact update or chat identity)."""

    identity: bytes
    display_name: str


@dataclass(frozen=True, slots=True)
class ContactSynced:
    """An own installation shared a contact's address-book entry (after pairing, or when it changed)."""

    identity: bytes
    nickname: str
    verified: bool
    display_name: str


Event = (MessageReceived | DeliveryChanged | InstallationFound | InstallationPaired | EnvelopeRejected
         | ContactRequestReceived | ContactChanged | ProfileChanged | ContactSynced)
