"""The transport port: how the engine hands opaque envelopes to a relay and gets them back.

The relay sees only 4-byte Waku topics, sizes and times. Every stored message gets a relay ``sequence``
(one counter for the whole store, increasing, like a JetStream stream sequence) which is what makes a gap-free
hand-over from catch-up to live possible::

    hist = transport.history(topics, since_ns)
    async for env in hist:
        ...
    live = await transport.subscribe(topics, after_sequence=hist.cursor)
    async for env in live:
        ...

(:func:`follow` does exactly that.)

``history`` yields every stored message on the topics with ``relay_time_ns >= since_ns`` and
``sequence <= hist.cursor`` (the store's last sequence when the iteration started); ``subscribe`` with
``after_sequence=S`` yields every message with ``sequence > S``, then live ones: nothing lost, nothing twice.
"""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from engine.transport.errors import InvalidEnvelope

TOPIC_SIZE = 4
_MSG_ID = re.compile(r"^[0-9A-Za-z_.:+=-]{1,128}$")


def check_topic(topic: bytes) -> bytes:
    """Return ``topic`` if it is a 4-byte Waku topic, else raise :class:`InvalidEnvelope`."""
    if not isinstance(topic, bytes | bytearray) or len(topic) != TOPIC_SIZE:
        raise InvalidEnvelope(f"a Waku topic is {TOPIC_SIZE} bytes")
    return bytes(topic)


def check_msg_id(msg_id: str) -> str:
    """Return ``msg_id`` if it can travel as a relay de-duplication id (hex hash, optional 0x)."""
    if not isinstance(msg_id, str) or not _MSG_ID.match(msg_id):
        raise InvalidEnvelope("a message id is 1-128 characters of hex or [A-Za-z0-9_.:+=-]")
    return msg_id


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the engine publishes: an opaque serialized WakuMessage addressed to a 4-byte topic.

    ``content_topic`` is for the engine's bookkeeping and for adapters that need it; the NATS adapter does
    not send it (it is inside the WakuMessage bytes anyway).
    """

    topic: bytes
    content_topic: str
    payload: bytes
    msg_id: str

    def __post_init__(self) -> None:
        check_topic(self.topic)
        check_msg_id(self.msg_id)
        if not isinstance(self.payload, bytes):
            raise InvalidEnvelope("the payload is bytes")


@dataclass(frozen=True, slots=True)
class ReceivedEnvelope:
    """A stored message as the relay hands it back."""

    topic: bytes
    payload: bytes
    msg_id: str
    relay_time_ns: int
    """When the relay stored it (relay clock, ns since the Unix epoch)."""
    sequence: int
    """The relay's store sequence, increasing across all topics; the cursor for gap-free resumption."""


class ConnectionState(enum.Enum):
    """Connection state for a status bar."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


StateListener = Callable[[ConnectionState], None]


@runtime_checkable
class History(Protocol):
    """An async iterator over stored envelopes; ``cursor`` is valid once iteration has finished."""

    @property
    def cursor(self) -> int:
        """The store sequence the history is complete up to (pass to ``subscribe(after_sequence=...)``)."""
        ...

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]: ...

    async def __anext__(self) -> ReceivedEnvelope: ...

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        """Up to ``limit`` envelopes that already arrived, in order, without waiting (the next ones
        ``__anext__`` would return); lets a reader process a burst in one store transaction."""
        ...

    async def aclose(self) -> None:
        """Stop early and release relay-side resources."""
        ...


@runtime_checkable
class Subscription(Protocol):
    """A live, unending async iterator of envelopes; ends (``StopAsyncIteration``) only after ``close``."""

    @property
    def last_sequence(self) -> int:
        """Sequence of the last envelope handed out (or the starting point)."""
        ...

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]: ...

    async def __anext__(self) -> ReceivedEnvelope: ...

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        """As :meth:`History.take_ready`."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """The transport port. All methods are coroutines run on the caller's asyncio loop."""

    @property
    def state(self) -> ConnectionState: ...

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener(state)`` on every state change; returns a function that removes it."""
        ...

    async def connect(self) -> None:
        """Connect to the relay; raises :class:`RelayUnavailable` if it cannot be reached."""
        ...

    async def close(self) -> None:
        """Close subscriptions and the connection; idempotent."""
        ...

    async def publish(self, envelope: Envelope) -> None:
        """Return once the relay has stored ``envelope``.

        Raises :class:`RelayUnavailable` (quickly, when not connected), :class:`PublishTimeout` (no ack in time;
        resend with the same id) or :class:`PublishRejected`. Publishing the same ``msg_id`` again within the
        relay's de-duplication window stores nothing new and still succeeds.
        """
        ...

    async def subscribe(self, topics: Iterable[bytes], *, after_sequence: int | None = None) -> Subscription:
        """Live envelopes on ``topics``: all stored after ``after_sequence`` first, or only new ones if None."""
        ...

    def history(self, topics: Iterable[bytes], since_ns: int) -> History:
        """Everything stored on ``topics`` at or after ``since_ns`` up to the store's end at call time."""
        ...


async def follow(transport: Transport, topics: Iterable[bytes], since_ns: int) -> AsyncIterator[ReceivedEnvelope]:
    """Everything stored on ``topics`` since ``since_ns``, then live envelopes: no gap, nothing twice.

    An async generator; ``aclose()`` it (or leave the ``async for``) to release the subscription.
    """
    wanted = [check_topic(t) for t in topics]
    hist = transport.history(wanted, since_ns)
    try:
        async for envelope in hist:
            yield envelope
    finally:
        await hist.aclose()
    live = await transport.subscribe(wanted, after_sequence=hist.cursor)
    try:
        async for envelope in live:
            yield envelope
    finally:
        await live.close()
