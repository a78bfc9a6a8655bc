"""A deterministic relay for the simulation: a durable log plus a faulty live delivery.

Like a Waku store node or a JetStream stream, the relay keeps every envelope it accepted (:attr:`log`), so an
installation that was offline or missed a live delivery catches up by reading the log again. Live delivery
is where the faults are: an envelope may be dropped, delivered twice, or delayed (which reorders it). While
the relay is down it accepts nothing and publishers keep their outbox.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One accepted envelope: its position, content topic and serialized ``WakuMessage``."""

    sequence: int
    content_topic: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Faults:
    """Probabilities of live-delivery faults, and the longest delay in ticks."""

    drop: float = 0.05
    duplicate: float = 0.05
    delay: float = 0.2
    max_delay: int = 40


@dataclass
class SimulatedRelay:
    """The relay and every live subscription, advanced one tick at a time by the simulation."""

    rng: random.Random
    faults: Faults = field(default_factory=Faults)
    log: list[LogEntry] = field(default_factory=list)
    up: bool = True
    tick: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    _queues: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    _order: int = 0

    def publish(self, content_topic: str, data: bytes, subscribers: Callable[[str], list[str]]) -> bool:
        """Accept an envelope (False while down) and schedule its live delivery to ``subscribers(topic)``."""
        if not self.up:
            self.counts["publish_refused"] += 1
            return False
        entry = LogEntry(len(self.log), content_topic, data)
        self.log.append(entry)
        for name in subscribers(content_topic):
            self._schedule(name, entry)
        return True

    def _schedule(self, name: str, entry: LogEntry) -> None:
        faults = self.faults
        if self.rng.random() < faults.drop:
            self.counts["dropped"] += 1
            return
        copies = 2 if self.rng.random() < faults.duplicate else 1
        self.counts["duplicated"] += copies - 1
        for _ in range(copies):
            delay = 0
            if self.rng.random() < faults.delay:
                delay = self.rng.randint(1, faults.max_delay)
                self.counts["delayed"] += 1
            self._order += 1
            heapq.heappush(self._queues.setdefault(name, []), (self.tick + delay, self._order, entry.sequence))

    def due(self, name: str, limit: int) -> list[LogEntry]:
        """Up to ``limit`` live deliveries due for ``name`` now, in delivery order."""
        queue = self._queues.get(name, [])
        out: list[LogEntry] = []
        while queue and queue[0][0] <= self.tick and len(out) < limit:
            out.append(self.log[heapq.heappop(queue)[2]])
        return out

    def disconnect(self, name: str) -> None:
        """``name`` went offline: what was in flight to it is lost (it will catch up from the log)."""
        lost = len(self._queues.pop(name, ()))
        self.counts["lost_in_flight"] += lost

    def drain_all(self) -> None:
        """Make every scheduled delivery due now (the end of the run)."""
        for queue in self._queues.values():
            queue[:] = [(0, order, sequence) for _, order, sequence in queue]
            heapq.heapify(queue)
