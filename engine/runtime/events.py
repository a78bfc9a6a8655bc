"""What the Messenger tells its users, and the fan-out that delivers it to every listener.

Each :meth:`EventHub.stream` gets every event published after it was opened, in order, once; a stream opened
before :meth:`Messenger.start` sees everything the catch-up commits. Events are published only after the
store transaction that made them true has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from ..sessions.events import DeliveryChanged
from ..transport.port import ConnectionState
from .views import ChatMessage


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A chat message was committed here: from a contact, or a copy of one another of my installations sent."""

    message: ChatMessage


@dataclass(frozen=True, slots=True)
class DeviceFound:
    """A verified bundle named an installation not known before (``own``: one of my account's)."""

    chat_key: str
    installation_id: str
    own: bool


@dataclass(frozen=True, slots=True)
class DevicePaired:
    """One of my installations was paired (here, or by its pairing message aimed at this one)."""

    installation_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The relay connection went up or down."""

    state: ConnectionState


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Catch-up status: ``processed`` envelopes so far; ``caught_up`` once every subscribed topic is live."""

    processed: int
    caught_up: bool


@dataclass(frozen=True, slots=True)
class ContactRequestReceived:
    """Someone asked to become my contact: accept or decline it (``Messenger.contact_requests`` lists them)."""

    chat_key: str
    display_name: str
    text: str
    request_id: str


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A contact's state changed: I added it or it added me (``mutual`` when both), a removal, a block, or its
    entry arrived from another of my installations."""

    chat_key: str
    added: bool
    has_added_us: bool
    blocked: bool

    @property
    def mutual(self) -> bool:
        return self.added and self.has_added_us


@dataclass(frozen=True, slots=True)
class IdentityChanged:
    """A contact announced a new display name (its profile), in a message, contact update or contact code."""

    chat_key: str
    display_name: str


Event = (MessageReceived | DeliveryChanged | DeviceFound | DevicePaired | ConnectionChanged | SyncProgress
         | ContactRequestReceived | ContactChanged | IdentityChanged)
"""Everything :meth:`engine.messenger.Messenger.events` yields."""


class _Closed:
    pass


_CLOSED: Final = _Closed()


class EventStream:
    """One listener's ordered view of the events: an async iterator (and async context manager).

    Unbounded: read it or :meth:`close` it.
    """

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[Event | _Closed] = asyncio.Queue()
        self._closed = False

    def _put(self, item: Event | _Closed) -> None:
        if not self._closed:
            self._queue.put_nowait(item)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _Closed):
            self._closed = True
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration`` once closed."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def close(self) -> None:
        """Stop listening; events already queued are dropped."""
        self._hub.discard(self)
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class EventHub:
    """Publishes each event to every open :class:`EventStream`."""

    def __init__(self) -> None:
        self._streams: list[EventStream] = []

    def stream(self) -> EventStream:
        stream = EventStream(self)
        self._streams.append(stream)
        return stream

    def discard(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    def publish(self, event: Event) -> None:
        for stream in list(self._streams):
            stream._put(event)

    def close(self) -> None:
        """End every stream (after the events already queued)."""
        for stream in list(self._streams):
            stream._put(_CLOSED)
        self._streams.clear()
