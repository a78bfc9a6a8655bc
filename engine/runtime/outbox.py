"""The outbox pump: publishes the session engine's persisted outbox until the relay acknowledges each item.

Items go out oldest first, each under its Waku message hash as the relay's de-duplication id, so a resend
after a lost acknowledgement stores nothing twice. A failed publish is rescheduled with exponential backoff
(in the store, so the schedule survives a restart) and the batch stops there, keeping the order. While the
relay is unreachable nothing is tried; when the connection comes back every item is sent at once, whatever
its schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from ..protocol.topics import content_topic_of
from ..sessions.engine import SessionEngine
from ..sessions.events import Event
from ..store.port import DeliveryState, OutboxItem
from ..transport.errors import TransportClosed, TransportError
from ..transport.port import ConnectionState, Envelope, Transport

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 60.0
REJECTED_RETRY_S = 600.0
"""A publish the relay refused (not a transient failure) is tried again only this much later."""
IDLE_POLL_S = 30.0


def retry_delay_s(attempts: int, rng: random.Random | None = None) -> float:
    """Backoff before the next try of an item that failed ``attempts + 1`` times: 0.5 s doubling to 60 s, ±20 %."""
    base = min(FIRST_RETRY_S * float(1 << min(attempts, 16)), MAX_RETRY_S)
    return base * (rng or random.Random()).uniform(0.8, 1.2)


class OutboxPump:
    """Runs until cancelled. Call :meth:`wake` after anything that queued an item."""

    def __init__(self, engine: SessionEngine, transport: Transport, emit: Callable[[list[Event]], None],
                 wait_connected: Callable[[], Awaitable[None]]) -> None:
        self.engine = engine
        self.transport = transport
        self._emit = emit
        self._wait_connected = wait_connected
        self._wake = asyncio.Event()
        self._force = False
        self._sent: dict[str, list[asyncio.Future[None]]] = {}
        self.drained = asyncio.Event()
        """Set while the outbox is empty."""
        self.failures: Counter[str] = Counter()
        """Failed publishes, by error code."""

    def wake(self, *, everything: bool = False) -> None:
        """Look at the outbox now; ``everything`` also sends items whose retry time has not come yet."""
        self._force = self._force or everything
        self.drained.clear()
        self._wake.set()

    def connection_changed(self, state: ConnectionState) -> None:
        if state == ConnectionState.CONNECTED:
            self.wake(everything=True)

    async def wait_sent(self, message_id: str) -> None:
        """Return once the relay acknowledged the message ``message_id`` (at once if it already did)."""
        stored = self.engine.store.message(message_id)
        if stored is not None and stored.state != DeliveryState.QUEUED:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent.setdefault(message_id, []).append(future)
        try:
            await future
        finally:
            waiters = self._sent.get(message_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._sent.pop(message_id, None)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            everything, self._force = self._force, False
            items = self.engine.store.outbox() if everything else self.engine.outbox_due()
            if not items:
                if not self.engine.store.outbox():
                    self.drained.set()
                await self._sleep(self._next_due_s())
                continue
            if self.transport.state != ConnectionState.CONNECTED:
                await self._wait_connected()
                self._force = True
                continue
            for item in items:
                delay = await self._publish(item)
                if delay is not None:
                    await self._sleep(delay)  # the failed item goes first again, after its backoff
                    break

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _next_due_s(self) -> float:
        pending = self.engine.store.outbox()
        if not pending:
            return IDLE_POLL_S
        now = self.engine.clock()
        return max(0.0, min(IDLE_POLL_S, (min(i.next_attempt_ns for i in pending) - now) / 1e9))

    async def _publish(self, item: OutboxItem) -> float | None:
        """Publish one item; None when acknowledged, else the seconds until its next try."""
        envelope = Envelope(item.topic, content_topic_of(item.topic), item.waku_message, item.envelope_hash.hex())
        try:
            await self.transport.publish(envelope)
        except TransportClosed:
            raise
        except TransportError as exc:
            self.failures[exc.code] += 1
            delay = retry_delay_s(item.attempts) if exc.retryable else REJECTED_RETRY_S
            log_at = logging.DEBUG if exc.retryable else logging.WARNING
            log.log(log_at, "publish failed (%s, attempt %d); retrying in %.1f s", exc.code, item.attempts + 1, delay)
            self.engine.publish_failed(item, int(delay * 1e9))
            return delay
        events = self.engine.published(item)
        self._emit(events)
        if item.message_id is not None:
            for future in self._sent.pop(item.message_id, []):
                if not future.done():
                    future.set_result(None)
        return None
