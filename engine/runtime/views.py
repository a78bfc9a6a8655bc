"""Read-only views the Messenger hands out: who I am, a chat message, a device.

Keys appear as ``zQ3…`` text; the store's own types stay inside the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..identity import ColorHash
from ..store.port import DeliveryState, Direction


@dataclass(frozen=True, slots=True)
class Identity:
    """This installation's account: its chat key and the names and hashes derived from it."""

    chat_key: str
    display_name: str
    alias: str
    """The generated three-word name (what others see when no display name is known)."""
    emoji_hash: tuple[str, ...]
    color_hash: tuple[tuple[int, int], ...]
    """``(units, palette index)`` segments of the avatar ring (see :data:`engine.identity.RING_PALETTE`)."""
    installation_id: str
    device_name: str
    device_type: str

    @staticmethod
    def ring(color_hash: ColorHash) -> tuple[tuple[int, int], ...]:
        return tuple((units, color) for units, color in color_hash)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a 1:1 conversation, as stored here.

    ``chat_key`` is the other party of the conversation; ``from_key``/``to_key`` its author and addressee.
    ``direction`` is ``in`` (from the peer), ``out`` (sent here) or ``out_copy`` (sent by another of my
    installations). ``forward_secret`` is True when it went through the Double Ratchet, False on the
    DH-header path (a first message to a chat key whose bundle was unknown).
    """

    id: str
    chat_key: str
    from_key: str
    from_name: str | None
    """The author's contact name, or None (the author is me, or not in my contacts)."""
    installation_id: str
    """The author's installation."""
    to_key: str
    direction: Direction
    text: str
    timestamp_ms: int
    clock: int
    forward_secret: bool
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class Device:
    """An installation of my account: this one (``current``) or another one known here."""

    installation_id: str
    name: str
    device_type: str
    enabled: bool
    """Paired: it gets copies of what I send and I read what it sends."""
    current: bool
    last_seen_ns: int


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """A pending request from an account that asked to become my contact."""

    chat_key: str
    display_name: str
    """the name the requester announces for itself (unverified)"""
    text: str
    request_id: str
    """the id of the request message (status-go's activity-center id for it)"""
    contact_name: str | None
    """my name for the requester, when it is already in my address book"""
