"""The outbox pump: publishes the session engine's persisted outbox until the relay acknowledges each item.

Each item goes out under its Waku message hash as the relay's de-duplication id (``Nats-Msg-Id``), so a resend
after a lost acknowledgement stores nothing twice. A failed publish is rescheduled with exponential backoff
(in the store, so the schedule survives a restart). While the relay is unreachable nothing is tried; when the
connection comes back every item is sent at once, whatever its schedule.

**Durable before published.** The store commits without syncing each transaction (see
:meth:`~engine.store.port.SessionStore.make_durable`). Before publishing a batch the pump makes the store
durable, once for the whole batch: every item of it, and the ratchet state that produced its ciphertext, was
committed before that sync. So a power loss can never roll back the state behind a ciphertext already on the
relay (which would make the next message reuse its message key on another plaintext). If the sync fails,
nothing is published and the batch is tried again after a backoff.

**Pipelined, in queue order as far as the relay allows.** A batch is the items due, oldest first; they are
published in that order with up to :data:`MAX_IN_FLIGHT` acknowledgements awaited at once, and each
acknowledgements that came in together are committed together (``published_many``: one transaction, not one
per item). The order they are stored in on the relay:

* all go through one connection, written in queue order, and the relay stores one connection's publishes in
  the order it reads them, so without failures the stream order is the queue order;
* when an item fails, no further item of the batch is started, but the ones already in flight (at most
  ``MAX_IN_FLIGHT - 1`` later items) may still be stored: they overtake the failed item;
* a failed item is rescheduled (its backoff) and the items queued after it wait for it: a batch is the due
  items up to the first one waiting for its retry. Only an item the relay refused outright
  (:data:`REJECTED_RETRY_S`) lets the ones behind it go first.

So order is not a guarantee. Receivers do not need it: the Double Ratchet keeps the keys of skipped messages
(up to 1000 per chain, far more than :data:`MAX_IN_FLIGHT`), envelopes are de-duplicated by hash, and chat
messages carry their own clock for display order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from ..errors import SottovoceError
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
MAX_IN_FLIGHT = 32
"""Publishes of one batch awaiting the relay's acknowledgement at once."""


class RecentlyPublished:
    """Digests of the last envelopes one installation published: the inbox skips their echoes.

    Our inbox follows the topics we publish on, so every envelope we publish comes back to us. The engine would
    open it, find nothing for this installation and commit that (a whole store transaction per message sent);
    the exact same bytes cannot hold anything for us, so the inbox skips them (see :mod:`engine.runtime.inbox`).
    Bounded: only the last :attr:`size` are remembered (an older echo, or one read again after a restart, just
    goes through the engine as before). The pump keeps one (:attr:`OutboxPump.published`) for its inbox.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._order: deque[bytes] = deque()
        self._digests: set[bytes] = set()

    @staticmethod
    def _digest(payload: bytes) -> bytes:
        return hashlib.sha256(payload).digest()

    def add(self, payload: bytes) -> None:
        digest = self._digest(payload)
        if digest in self._digests:
            return
        self._digests.add(digest)
        self._order.append(digest)
        if len(self._order) > self.size:
            self._digests.discard(self._order.popleft())

    def __contains__(self, payload: object) -> bool:
        return isinstance(payload, bytes) and self._digest(payload) in self._digests


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
        self._refused: set[bytes] = set()
        """Items the relay refused outright: they do not hold up the items queued after them."""
        self.drained = asyncio.Event()
        """Set while the outbox is empty."""
        self.failures: Counter[str] = Counter()
        """Failed publishes (and failed syncs of the store before a batch), by error code."""
        self.batches = 0
        """Batches published (each after one ``make_durable`` of the store)."""
        self.published = RecentlyPublished()
        """What this pump published lately: the inbox skips their echoes."""

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
            items = self.engine.store.outbox() if everything else self._due_in_order()
            if not items:
                if not self.engine.store.outbox():
                    self.drained.set()
                await self._sleep(self._next_due_s())
                continue
            if self.transport.state != ConnectionState.CONNECTED:
                await self._wait_connected()
                self._force = True
                continue
            delay = await self._publish_batch(items)
            if delay is not None:
                await self._sleep(delay)  # the failed item goes first again, after its backoff

    def _due_in_order(self) -> list[OutboxItem]:
        """The items due, oldest first, up to the first one waiting for its retry: a message whose publish
        failed is not overtaken by the ones queued after it. An item the relay refused does not hold up the
        rest (it waits :data:`REJECTED_RETRY_S` and may never be taken)."""
        now = self.engine.clock()
        due = []
        for item in self.engine.store.outbox():
            if item.next_attempt_ns > now:
                if item.envelope_hash in self._refused:
                    continue
                break
            due.append(item)
        return due

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _next_due_s(self) -> float:
        pending = self.engine.store.outbox()
        if not pending:
            return IDLE_POLL_S
        now = self.engine.clock()
        return max(0.0, min(IDLE_POLL_S, (min(i.next_attempt_ns for i in pending) - now) / 1e9))

    async def _publish_batch(self, items: list[OutboxItem]) -> float | None:
        """Make the store durable, then publish ``items`` in order, pipelined; None when every one was
        acknowledged, else the seconds until the earliest next try (no item is started after a failure)."""
        try:
            sync = self.engine.store.durability()
            if sync is not None:  # on a thread: the loop goes on (receiving, committing) during the fsync
                await asyncio.to_thread(sync)
        except SottovoceError as exc:  # the disk failed: publishing now could outlive the state behind it
            self.failures[exc.code] += 1
            delay = retry_delay_s(self.failures[exc.code] - 1)
            log.warning("could not make the store durable (%s); publishing again in %.1f s", exc.code, delay)
            return delay
        self.batches += 1
        in_flight: dict[asyncio.Task[float | None], OutboxItem] = {}
        delays: list[float] = []

        async def settle(return_when: str) -> None:
            done, _ = await asyncio.wait(in_flight, return_when=return_when)
            acknowledged = []
            for task in done:
                item = in_flight.pop(task)
                delay = task.result()  # TransportClosed ends the pump, as before
                if delay is None:
                    acknowledged.append(item)
                else:
                    delays.append(delay)
            self._acknowledged(acknowledged)  # a store error ends the pump, as before

        try:
            for item in items:
                while len(in_flight) >= MAX_IN_FLIGHT and not delays:
                    await settle(asyncio.FIRST_COMPLETED)
                if delays:
                    break
                in_flight[asyncio.ensure_future(self._publish(item))] = item
            while in_flight:
                await settle(asyncio.ALL_COMPLETED)
        finally:
            for task in in_flight:  # cancelled, or a sibling failed hard: stop the rest
                task.cancel()
            for task in in_flight:
                with contextlib.suppress(BaseException):
                    await task
        return min(delays) if delays else None

    async def _publish(self, item: OutboxItem) -> float | None:
        """Publish one item; None when acknowledged, else the seconds until its next try."""
        envelope = Envelope(item.topic, content_topic_of(item.topic), item.waku_message, item.envelope_hash.hex())
        self.published.add(item.waku_message)  # before: the echo may come back before the acknowledgement
        try:
            await self.transport.publish(envelope)
        except TransportClosed:
            raise
        except TransportError as exc:
            self.failures[exc.code] += 1
            delay = retry_delay_s(item.attempts) if exc.retryable else REJECTED_RETRY_S
            if not exc.retryable:
                self._refused.add(item.envelope_hash)
            log_at = logging.DEBUG if exc.retryable else logging.WARNING
            log.log(log_at, "publish failed (%s, attempt %d); retrying in %.1f s", exc.code, item.attempts + 1, delay)
            self.engine.publish_failed(item, int(delay * 1e9))
            return delay
        return None

    def _acknowledged(self, items: list[OutboxItem]) -> None:
        """The relay acknowledged ``items``: one transaction drops them from the outbox, then they count as sent."""
        if not items:
            return
        items.sort(key=lambda item: item.sequence)
        self._emit(self.engine.published_many(items))
        for item in items:
            if item.message_id is not None:
                for future in self._sent.pop(item.message_id, []):
                    if not future.done():
                        future.set_result(None)
