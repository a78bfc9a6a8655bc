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


Event = MessageReceived | DeliveryChanged | InstallationFound | InstallationPaired | EnvelopeRejected
