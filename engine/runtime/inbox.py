"""The inbox: catch-up of every subscribed topic, then live delivery, into the session engine.

Positions kept in the store (``cursors``), each written in the transaction of the step it describes:

* ``inbox:relay_time`` - the relay time of the last envelope processed by the reader that follows every
  backfilled topic. A restart reads the backfilled topics again from there, minus :data:`MARGIN_NS` (relay
  clocks of a cluster need not agree to the nanosecond); what was already processed is skipped by the
  engine's seen-envelope check, so nothing is shown twice.
* ``inbox:topic:<hex>`` - present once a topic's history since the account's creation has been read. A topic
  without it (a new installation's, or a new contact's) is read from the account's creation.

Live delivery uses the relay sequence: history up to its cursor, then ``subscribe(after_sequence=...)``, so
there is no gap between catch-up and live. When processing a message makes the engine listen on more
topics (a first message from a new contact), the new topics are read from the account's creation and the
live subscription is replaced by one over every topic, from the same sequence.

Our own envelopes come back to us (we follow the topics we publish on). Those the outbox pump published lately
(:attr:`~engine.runtime.outbox.OutboxPump.published`, exact bytes) are skipped without a store transaction: the
engine would find nothing for this installation in them. Their relay time is written to the cursor only every
:data:`ECHO_CURSOR_EVERY` echoes in a row, so a restart may read a few of them again (the engine then processes
them as any envelope, to the same effect: nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass

from ..errors import SottovoceError
from ..protocol.topics import topic_of_content_topic
from ..sessions.engine import Arrival, SessionEngine
from ..sessions.events import Event
from ..sessions.fairness import FairScheduler
from ..transport.errors import TransportClosed, TransportError
from ..transport.port import History, ReceivedEnvelope, Subscription, Transport

log = logging.getLogger(__name__)

RELAY_TIME_CURSOR = "inbox:relay_time"
TOPIC_CURSOR_PREFIX = "inbox:topic:"
MARGIN_NS = 120 * 10**9
"""Catch-up starts this long before the last position (relay clock skew, non-monotonic stream times)."""
PROGRESS_EVERY = 100
ECHO_CURSOR_EVERY = 100
"""Own echoes skipped in a row before their relay time is stored as the cursor anyway."""
MAX_BACKOFF_S = 5.0
MAX_BURST = 32
"""Envelopes already received are processed together, this many at most per store transaction: one commit
for a burst. The inbox then lets the event loop turn: reading from a non-empty queue never suspends, so without
that a catch-up would hold the loop (and a Qt window on it) for as long as the relay's buffer lasts, not for
one burst of about 30 ms."""


PARKED_SHARE = 8
"""Parked envelopes processed after a fresh burst that served someone, so that a flood still moves while others
talk (after a burst of only parked envelopes, none: reading on finds the next honest one sooner)."""


@dataclass(frozen=True, slots=True)
class _Parked:
    relay_time_ns: int
    arrival: Arrival


class _StoreFailed(Exception):
    """A burst could not be committed (disk full...): the round ends and the burst is read again."""


class Inbox:
    """Runs until cancelled. :attr:`caught_up` is set while every subscribed topic is being followed live."""

    def __init__(self, engine: SessionEngine, transport: Transport, emit: Callable[[list[Event]], None],
                 wait_connected: Callable[[], Awaitable[None]],
                 progress: Callable[[int, bool], None] | None = None, *,
                 published: Container[bytes] = frozenset()) -> None:
        """``published``: envelopes our own pump published lately (:attr:`OutboxPump.published`)."""
        self.engine = engine
        self.transport = transport
        self._emit = emit
        self._wait_connected = wait_connected
        self._progress = progress or (lambda processed, caught_up: None)
        self.caught_up = asyncio.Event()
        self.processed = 0
        self.failures: Counter[str] = Counter()
        """Envelopes that could not be processed (a store failure), by error code."""
        self.echoes = 0
        """Own envelopes skipped (see the module docstring)."""
        self._echoes_in_a_row = 0
        self._published = published
        self._position: int | None = None
        self._followed: frozenset[bytes] = frozenset()
        self._live: Subscription | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._wanted: frozenset[bytes] = frozenset()
        self._wanted_of: object = None
        self._parked: FairScheduler[_Parked] = FairScheduler()
        """Envelopes of senders over their receive budget, waiting (in memory: the cursor stays behind them)."""
        self._read_time = 0
        """The relay time of the last envelope read by a reader that keeps the position."""

    # --- topics and positions ---------------------------------------------------------------------------

    def wanted(self) -> frozenset[bytes]:
        """The 4-byte topics of every content topic the engine listens on."""
        subscriptions = self.engine.core.subscriptions()  # the same object until the set changes
        if subscriptions is not self._wanted_of:
            self._wanted = frozenset(topic_of_content_topic(ct) for ct in subscriptions)
            self._wanted_of = subscriptions
        return self._wanted

    def _backfilled(self, topic: bytes) -> bool:
        return self.engine.store.cursor(TOPIC_CURSOR_PREFIX + topic.hex()) is not None

    def _mark_backfilled(self, topics: frozenset[bytes]) -> None:
        now = self.engine.clock()
        with self.engine.store.transaction() as writer:
            for topic in sorted(topics):
                writer.set_cursor(TOPIC_CURSOR_PREFIX + topic.hex(), now)

    def _creation_since(self) -> int:
        return max(0, self.engine.account.created_ns - MARGIN_NS)

    def _resume_since(self) -> int:
        last = self.engine.store.cursor(RELAY_TIME_CURSOR)
        return self._creation_since() if last is None else max(0, last - MARGIN_NS)

    def refresh(self) -> None:
        """Call after the engine may have started listening on more topics (a contact added, a first message
        sent): ends the live subscription so that the next round reads the new topics' history."""
        live = self._live
        if live is None or self.wanted() <= self._followed:
            return
        self._live = None
        task = asyncio.ensure_future(live.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- the loop ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        while True:
            await self._wait_connected()
            try:
                await self._round()
                backoff = 0.2
            except TransportClosed:
                raise
            except (TransportError, _StoreFailed) as exc:
                # The position is that of the last burst committed: the next round reads again from there.
                self._set_caught_up(False)
                log.debug("inbox interrupted (%s); resuming", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _round(self) -> None:
        """Catch up what is not followed yet, then follow everything live until the topics grow."""
        wanted = self.wanted()
        if self._position is None:
            self._set_caught_up(False)
            backfilled = frozenset(t for t in wanted if self._backfilled(t))
            if backfilled:
                self._position = await self._read(self.transport.history(backfilled, self._resume_since()),
                                                  keep_position=True)
                self._followed = backfilled
        fresh = wanted - self._followed
        if fresh:
            self._set_caught_up(False)
            alone = not self._followed  # nothing else is followed: its times are the inbox's position
            end = await self._read(self.transport.history(fresh, self._creation_since()), keep_position=alone)
            self._mark_backfilled(fresh)
            self._followed |= fresh
            if self._position is None:
                self._position = end
        if not self.wanted() <= self._followed or self._position is None:
            return  # processing the history added topics: read those first
        live = await self.transport.subscribe(self._followed, after_sequence=self._position)
        self._live = live
        try:
            self._set_caught_up(not self._parked)
            await self._consume(live, keep_position=True, live=True)
        finally:
            self._live = None
            await live.close()

    async def _read(self, history: History, *, keep_position: bool) -> int:
        try:
            await self._consume(history, keep_position=keep_position, live=False)
        finally:
            await history.aclose()
        return history.cursor

    async def _consume(self, source: History | Subscription, *, keep_position: bool, live: bool) -> None:
        """Process ``source`` burst by burst until it ends (a history) or the topics grow (live). Parked
        envelopes go whenever nothing fresh is ready, and :data:`PARKED_SHARE` after each fresh burst."""
        while True:
            burst = source.take_ready(MAX_BURST)
            if not burst and self._parked:
                self._drain(MAX_BURST)
            else:
                if not burst:
                    try:
                        burst = [await anext(source)]
                    except StopAsyncIteration:
                        return
                    burst += source.take_ready(MAX_BURST - 1)
                served = self._process(burst, keep_position=keep_position)
                if live:
                    self._position = burst[-1].sequence
                if served:
                    self._drain(PARKED_SHARE)  # others were served: the parked move on too
            if live:
                self._set_caught_up(not self._parked)
            await asyncio.sleep(0)  # see MAX_BURST
            if live and not self.wanted() <= self._followed:
                return

    def _process(self, burst: list[ReceivedEnvelope], *, keep_position: bool) -> int:
        """Envelopes that arrived together, in one store transaction (own echoes skipped, senders over their
        budget parked: see :mod:`engine.sessions.fairness`); how many were processed."""
        fresh = [envelope for envelope in burst if envelope.payload not in self._published]
        self.echoes += len(burst) - len(fresh)
        if keep_position:
            self._read_time = burst[-1].relay_time_ns
        if not fresh:
            self._echoes_in_a_row += len(burst)
            if keep_position and self._echoes_in_a_row >= ECHO_CURSOR_EVERY:
                self._commit([], 0, self._cursor())
                self._echoes_in_a_row = 0
            self._count(len(burst))
            return 0
        self._echoes_in_a_row = 0
        now = self.engine.clock()
        ready: list[Arrival] = []
        parked = 0
        for envelope in fresh:
            arrival = self.engine.arrive(envelope.payload)
            # Only a reader that keeps the position parks: the cursor then stays at the oldest parked envelope.
            if not keep_position or self._parked.admit(self.engine.budget_key(arrival),
                                                       _Parked(envelope.relay_time_ns, arrival), now):
                ready.append(arrival)
            else:
                parked += 1
        if not ready:  # all parked: nothing to store, the cursor stays at the oldest parked envelope
            self._count(len(burst) - parked)
            return 0
        try:
            self._commit(ready, len(burst) - parked, self._cursor() if keep_position else None)
        except _StoreFailed:
            self._parked.unpark_newest(parked)  # the burst is read again
            raise
        return len(ready)

    def _drain(self, limit: int) -> None:
        """Process up to ``limit`` parked envelopes, oldest first, in one store transaction."""
        if not self._parked:
            return
        batch = self._parked.peek(limit)
        self._commit([parked.arrival for parked in batch], len(batch), self._cursor(after=len(batch)))
        self._parked.release(len(batch))

    def _cursor(self, *, after: int = 0) -> tuple[str, int]:
        """The relay-time cursor: the last envelope read, or the oldest one still parked once ``after`` parked
        envelopes are processed (a restart reads those again; what was processed is skipped as seen)."""
        waiting = self._parked.peek(after + 1)[after:]
        position = self._read_time if not waiting else min(self._read_time, waiting[0].relay_time_ns)
        return RELAY_TIME_CURSOR, position

    def _commit(self, arrivals: list[Arrival], processed: int, cursor: tuple[str, int] | None) -> None:
        try:
            events = self.engine.receive_arrivals(arrivals, cursor=cursor)
        except SottovoceError as exc:  # the store failed (disk full...): nothing of the burst was committed
            self.failures[exc.code] += max(1, len(arrivals))
            log.warning("could not process %d envelope(s): %s; reading them again", len(arrivals), exc.code)
            raise _StoreFailed(exc) from exc
        self._count(processed)
        self._emit(events)

    def _count(self, processed: int) -> None:
        before = self.processed
        self.processed += processed
        if not self.caught_up.is_set() and before // PROGRESS_EVERY != self.processed // PROGRESS_EVERY:
            self._progress(self.processed, False)

    def _set_caught_up(self, caught_up: bool) -> None:
        if caught_up == self.caught_up.is_set():
            return
        if caught_up:
            self.caught_up.set()
        else:
            self.caught_up.clear()
        self._progress(self.processed, caught_up)
