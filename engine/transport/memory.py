"""In-memory transport: a shared :class:`MemoryNetwork` standing in for the relay, for tests and simulations.

It behaves like the JetStream relay where the engine can tell: one store sequence across topics, per-topic
logs for ``history``, de-duplication by message id within a window, ``subscribe(after_sequence=...)`` gap-free
resumption, and resumption after an outage (``set_online``). Live delivery goes through a pluggable
:data:`DeliverPolicy` so a simulation can drop, duplicate, delay or reorder messages. Everything runs on the
caller's asyncio loop; there are no threads and, with the default policy, no timers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Final

from engine.transport.errors import RelayUnavailable, TransportClosed
from engine.transport.port import (
    ConnectionState,
    Envelope,
    ReceivedEnvelope,
    StateListener,
    check_topic,
)

DeliverPolicy = Callable[[ReceivedEnvelope, str], Sequence[float]]
"""``policy(envelope, subscriber_name) -> delays``: one live delivery per delay (seconds, 0 = at once).

``()`` drops the message for that subscriber, ``(0, 0)`` duplicates it, ``(0.05,)`` delays it (and so
reorders it behind later ones). History and ``after_sequence`` catch-up read the store and are not affected.
"""

DEFAULT_DUPLICATE_WINDOW_NS: Final = 120 * 1_000_000_000


def deliver_once(envelope: ReceivedEnvelope, subscriber: str) -> Sequence[float]:
    """The default policy: every message delivered once, immediately."""
    return (0.0,)


class MemoryNetwork:
    """The shared relay store and fan-out. Create transports with :meth:`transport`."""

    def __init__(
        self,
        *,
        clock: Callable[[], int] = time.time_ns,
        duplicate_window_ns: int = DEFAULT_DUPLICATE_WINDOW_NS,
        deliver: DeliverPolicy = deliver_once,
    ) -> None:
        self.clock = clock
        self.duplicate_window_ns = duplicate_window_ns
        self.deliver: DeliverPolicy = deliver
        self._log: list[ReceivedEnvelope] = []
        self._by_topic: dict[bytes, list[ReceivedEnvelope]] = {}
        self._seen: dict[str, int] = {}
        self._last_time = 0
        self._online = True
        self._transports: list[MemoryTransport] = []
        self.publish_count = 0
        """Publish calls that reached the store (duplicates included)."""

    # --- store -------------------------------------------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        return len(self._log)

    @property
    def online(self) -> bool:
        return self._online

    def stored(self, topic: bytes | None = None) -> list[ReceivedEnvelope]:
        """A copy of the stored log, all topics or one."""
        return list(self._log if topic is None else self._by_topic.get(topic, ()))

    def _store(self, envelope: Envelope) -> ReceivedEnvelope | None:
        now = max(self.clock(), self._last_time)
        self._last_time = now
        self.publish_count += 1
        seen = self._seen.get(envelope.msg_id)
        if seen is not None and now - seen < self.duplicate_window_ns:
            return None
        self._seen[envelope.msg_id] = now
        received = ReceivedEnvelope(
            topic=envelope.topic,
            payload=envelope.payload,
            msg_id=envelope.msg_id,
            relay_time_ns=now,
            sequence=len(self._log) + 1,
        )
        self._log.append(received)
        self._by_topic.setdefault(envelope.topic, []).append(received)
        return received

    def _after(self, topics: frozenset[bytes], sequence: int) -> list[ReceivedEnvelope]:
        return [e for e in self._log[sequence:] if e.topic in topics]

    # --- simulation hooks ----------------------------------------------------------------------------------

    def set_online(self, online: bool) -> None:
        """Take the relay down or bring it back; connected transports see RECONNECTING / CONNECTED."""
        if online == self._online:
            return
        self._online = online
        for transport in list(self._transports):
            transport._relay_changed(online)

    def transport(self, name: str = "peer") -> MemoryTransport:
        """A new transport on this network; ``name`` is what the deliver policy sees as subscriber."""
        return MemoryTransport(self, name)

    def _fan_out(self, received: ReceivedEnvelope) -> None:
        for transport in self._transports:
            for sub in transport._subs:
                if received.topic in sub.topics:
                    for delay in self.deliver(received, transport.name):
                        sub._offer(received, delay)


class MemorySubscription:
    """A live subscription on a :class:`MemoryTransport`."""

    def __init__(self, transport: MemoryTransport, topics: frozenset[bytes], after: int) -> None:
        self.topics = topics
        self._transport = transport
        self._queue: asyncio.Queue[ReceivedEnvelope | None] = asyncio.Queue()
        self._high = after
        self._last = after
        self._closed = False
        self._ended = False
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def last_sequence(self) -> int:
        return self._last

    def _offer(self, received: ReceivedEnvelope, delay: float) -> None:
        if self._closed:
            return
        self._high = max(self._high, received.sequence)
        if delay <= 0:
            self._queue.put_nowait(received)
        else:
            self._timers.append(asyncio.get_running_loop().call_later(delay, self._late, received))

    def _late(self, received: ReceivedEnvelope) -> None:
        if not self._closed:
            self._queue.put_nowait(received)

    def _catch_up(self, network: MemoryNetwork) -> None:
        for received in network._after(self.topics, self._high):
            self._offer(received, 0.0)

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]:
        return self

    async def __anext__(self) -> ReceivedEnvelope:
        if self._ended or (self._closed and self._queue.empty()):
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        self._last = item.sequence
        return item

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        taken: list[ReceivedEnvelope] = []
        while len(taken) < limit and not self._ended and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._ended = True  # __anext__ ends the iteration
                break
            self._last = item.sequence
            taken.append(item)
        return taken

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._transport._subs.discard(self)
        self._queue.put_nowait(None)


class MemoryHistory:
    """History over the in-memory store (snapshot of the store at the first ``__anext__``)."""

    def __init__(self, transport: MemoryTransport, topics: frozenset[bytes], since_ns: int) -> None:
        self._transport = transport
        self._topics = topics
        self._since = since_ns
        self._items: list[ReceivedEnvelope] | None = None
        self._cursor = 0

    @property
    def cursor(self) -> int:
        return self._cursor

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]:
        return self

    async def __anext__(self) -> ReceivedEnvelope:
        if self._items is None:
            self._transport._require_up()
            network = self._transport.network
            self._cursor = network.last_sequence
            self._items = [e for e in network._after(self._topics, 0) if e.relay_time_ns >= self._since]
            self._items.reverse()
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop()

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        if not self._items:
            return []
        taken = self._items[-limit:]
        del self._items[-limit:]
        taken.reverse()
        return taken

    async def aclose(self) -> None:
        self._items = []


class MemoryTransport:
    """A :class:`~engine.transport.port.Transport` over a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self._state = ConnectionState.DISCONNECTED
        self._listeners: list[StateListener] = []
        self._subs: set[MemorySubscription] = set()

    # --- state --------------------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _set_state(self, state: ConnectionState) -> None:
        if state != self._state:
            self._state = state
            for listener in list(self._listeners):
                listener(state)

    def _relay_changed(self, online: bool) -> None:
        if online:
            self._set_state(ConnectionState.CONNECTED)
            for sub in list(self._subs):
                sub._catch_up(self.network)
        else:
            self._set_state(ConnectionState.DISCONNECTED)
            self._set_state(ConnectionState.RECONNECTING)

    def _require_up(self) -> None:
        if self._state == ConnectionState.CLOSED:
            raise TransportClosed()
        if self._state != ConnectionState.CONNECTED or not self.network.online:
            raise RelayUnavailable()

    # --- port ---------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._state == ConnectionState.CLOSED:
            raise TransportClosed()
        if not self.network.online:
            raise RelayUnavailable("the relay is offline")
        self._set_state(ConnectionState.CONNECTING)
        if self not in self.network._transports:
            self.network._transports.append(self)
        self._set_state(ConnectionState.CONNECTED)

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()
        if self in self.network._transports:
            self.network._transports.remove(self)
        self._set_state(ConnectionState.CLOSED)

    async def publish(self, envelope: Envelope) -> None:
        self._require_up()
        received = self.network._store(envelope)
        if received is not None:
            self.network._fan_out(received)

    async def subscribe(self, topics: Iterable[bytes], *, after_sequence: int | None = None) -> MemorySubscription:
        self._require_up()
        wanted = frozenset(check_topic(t) for t in topics)
        start = self.network.last_sequence if after_sequence is None else after_sequence
        sub = MemorySubscription(self, wanted, start)
        self._subs.add(sub)
        sub._catch_up(self.network)
        return sub

    def history(self, topics: Iterable[bytes], since_ns: int) -> MemoryHistory:
        return MemoryHistory(self, frozenset(check_topic(t) for t in topics), since_ns)
