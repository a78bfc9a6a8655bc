"""The session store port: what the engine needs to keep, independent of where it is kept.

Two adapters implement it: :class:`~engine.store.sqlcipher_store.SqlCipherSessionStore` (the profile's
encrypted database) and :class:`~engine.store.memory_store.MemorySessionStore` (the simulation). Both pass the
same contract tests (``tests/integration/test_session_store_contract.py``).

Everything that changes on a protocol step is written through one :class:`StoreWriter` inside
:meth:`SessionStore.transaction`: either all of it is committed or none of it is. The port stores the
encryption layer's state as opaque ``(kind, key) -> value`` records; their encoding belongs to
``engine.sessions.records``. Messages, the outbox, seen envelopes and cursors have their own typed records
because the engine and the UI query them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Direction(StrEnum):
    """Who wrote a stored chat message, seen from this installation."""

    IN = "in"
    """From the peer of the conversation."""
    OUT = "out"
    """Sent from this installation."""
    OUT_COPY = "out_copy"
    """Sent by another installation of this account (its copy reached us)."""


class DeliveryState(StrEnum):
    """Where a stored message stands."""

    QUEUED = "queued"
    """Outgoing, waiting in the outbox for the relay to acknowledge it."""
    SENT = "sent"
    """Outgoing, acknowledged by the relay."""
    DELIVERED = "delivered"
    """Outgoing, acknowledged by the peer (MVDS ack)."""
    RECEIVED = "received"
    """Incoming (or an own copy), committed here."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One chat message of a 1:1 conversation.

    ``message_id`` is status-go's id (``0x`` + 64 hex) and unique in a store. ``chat`` is the compressed
    identity key of the other party; ``author`` the compressed key that signed it.
    """

    message_id: str
    chat: bytes
    author: bytes
    author_installation: str
    direction: Direction
    text: str
    clock: int
    timestamp_ms: int
    received_ns: int
    forward_secret: bool
    state: DeliveryState


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A serialized ``WakuMessage`` waiting for the relay's acknowledgement.

    ``envelope_hash`` (the Waku message hash) is its key and its de-duplication id on the relay;
    ``message_id`` names the chat message it carries, if any, so its state can become ``SENT``.
    Items are returned oldest first (``sequence``, assigned by the store: one above every item present, so it
    orders the queue; once the newest items are dequeued their numbers may be given again).
    """

    envelope_hash: bytes
    topic: bytes
    waku_message: bytes
    message_id: str | None
    created_ns: int
    attempts: int = 0
    next_attempt_ns: int = 0
    sequence: int = 0


class StoreReader(Protocol):
    """Queries; available on the store and inside a transaction (which sees its own writes)."""

    def records(self, kind: str) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` of one record kind, in key order."""
        ...

    def record(self, kind: str, key: bytes) -> bytes | None: ...

    def meta(self, key: str) -> bytes | None: ...

    def cursor(self, name: str) -> int | None: ...

    def has_seen(self, *envelope_hashes: bytes) -> bool:
        """Whether any of these hashes was marked seen (an envelope is known by two: one question for both)."""
        ...

    def message(self, message_id: str) -> StoredMessage | None: ...

    def messages(self, chat: bytes, *, limit: int | None = None) -> list[StoredMessage]:
        """A conversation oldest first; with ``limit``, its newest ``limit`` messages (still oldest first)."""
        ...

    def message_count(self) -> int: ...

    def outbox(self, *, due_ns: int | None = None) -> list[OutboxItem]:
        """Outbox items oldest first; with ``due_ns``, only those whose ``next_attempt_ns <= due_ns``."""
        ...


class StoreWriter(StoreReader, Protocol):
    """The writes of one transaction."""

    def put_record(self, kind: str, key: bytes, value: bytes) -> None: ...

    def delete_record(self, kind: str, key: bytes) -> None: ...

    def put_meta(self, key: str, value: bytes) -> None: ...

    def set_cursor(self, name: str, value: int) -> None: ...

    def mark_seen(self, envelope_hash: bytes, seen_ns: int) -> bool:
        """Record a processed envelope; False when it was already recorded."""
        ...

    def forget_seen(self, before_ns: int) -> int:
        """Drop seen-envelope records older than ``before_ns`` (past the relay's retention); returns how many."""
        ...

    def add_message(self, message: StoredMessage) -> bool:
        """Insert a chat message; False (and nothing changed) when its ``message_id`` is already stored."""
        ...

    def set_message_state(self, message_id: str, state: DeliveryState, *,
                          only_from: Collection[DeliveryState] | None = None) -> bool:
        """Change a stored message's state; False when there is no such message, or (with ``only_from``) when its
        state is not one of those (then it is left as it is)."""
        ...

    def enqueue(self, item: OutboxItem) -> None:
        """Add an item to the outbox (an item with the same hash is left as it is)."""
        ...

    def reschedule(self, envelope_hash: bytes, attempts: int, next_attempt_ns: int) -> None: ...

    def dequeue(self, envelope_hash: bytes) -> bool:
        """Remove an acknowledged item; False when it was not there."""
        ...


class SessionStore(StoreReader, Protocol):
    """One installation's durable state."""

    def transaction(self) -> AbstractContextManager[StoreWriter]:
        """All writes inside are committed together when the block exits normally, else none is.

        A committed transaction survives a crash of the process, but not necessarily an operating-system crash
        or a power loss until :meth:`make_durable` is called (the store stays consistent either way: it comes
        back as of some earlier commit).
        """
        ...

    def make_durable(self) -> None:
        """Make every transaction committed so far survive a power loss too (one sync for all of them).

        The rule: nothing that depends on committed state leaves the machine before that state is durable.
        A ciphertext published, then its ratchet state rolled back by a power loss, would let the next message
        reuse the same message key on another plaintext; so the outbox pump calls this before each batch it
        publishes. Cheap when nothing was committed since the last call. Raises a ``StoreError`` on failure.
        """
        ...

    def durability(self) -> Callable[[], None] | None:
        """:meth:`make_durable` for a caller that must not wait on the disk: this call fixes what is covered
        (every commit made so far) and returns the sync itself, to run on any thread while the store goes on
        committing (None: nothing to sync). The sync raises a ``StoreError`` on failure."""
        ...

    def close(self) -> None: ...
