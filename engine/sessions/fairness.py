"""Receive fairness: a peer that floods waits behind everyone else, and loses nothing.

The relay hands envelopes over in the order they were stored, so without a policy a peer that publishes
20,000 valid messages at once delays every honest message behind them by the time it takes to process them
all (about a millisecond each). Each sender has a budget (a token bucket: ``burst`` envelopes at once, then
``rate_per_s``); an envelope whose sender is over budget is *parked*: set aside, not processed, not dropped.
Parked envelopes are processed when nothing else is waiting (the scheduler is work-conserving: a flood is
slowed down only while others have something to say), oldest first, and a sender with parked envelopes has all
its later ones parked too, so each peer's envelopes are still processed in the order they arrived.

Budgets are per sender for contacts (peers this account added); every other sender shares one smaller budget,
so a swarm of fresh keys cannot buy itself a budget each. This account's own installations are never parked
(pairing and history sync are bursts by nature). At most ``capacity`` envelopes are parked: beyond that the
queue stops growing and envelopes are processed in order again, so memory stays bounded.

Sans-I/O: time comes in as an argument; what waits is whatever the caller parks (kept in memory: the caller
keeps its store cursor at the oldest parked envelope, so a restart reads them again from the relay).
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

NS_PER_S = 10**9
STRANGERS = b""
"""The budget key shared by every sender this account did not add."""


@dataclass(frozen=True, slots=True)
class Budget:
    """A token bucket: ``burst`` envelopes at once, refilled at ``rate_per_s``."""

    rate_per_s: float
    burst: int


CONTACT_BUDGET = Budget(rate_per_s=50.0, burst=500)
"""Far above what a person types, and above a contact's catch-up after a day offline."""
STRANGER_BUDGET = Budget(rate_per_s=10.0, burst=100)
"""All senders we did not add together: contact requests and first messages."""
CAPACITY = 20_000
"""Envelopes parked at most. Each holds its envelope and its opened payload: 20,000 parked 1.2 KB envelopes
measured +47 MB of RSS."""
MAX_TRACKED = 4_096
"""Budgets remembered at most; the least recently used is forgotten (and starts full again)."""


class FairScheduler(Generic[T]):
    """Per-sender budgets in front of a bounded FIFO of parked items (see the module docstring)."""

    def __init__(self, contact: Budget = CONTACT_BUDGET, strangers: Budget = STRANGER_BUDGET, *,
                 capacity: int = CAPACITY, max_tracked: int = MAX_TRACKED) -> None:
        self._contact = contact
        self._strangers = strangers
        self._capacity = capacity
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[bytes, tuple[float, int]] = OrderedDict()
        self._parked: deque[tuple[bytes, T]] = deque()
        self._parked_by_key: Counter[bytes] = Counter()
        self.parked_total = 0
        """Items parked since this scheduler was made (a figure for logs and tests)."""

    def __len__(self) -> int:
        return len(self._parked)

    def admit(self, key: bytes | None, item: T, now_ns: int) -> bool:
        """True: process ``item`` now. False: it was parked (its sender, ``key``, is over budget or already has
        parked items). ``key`` None (this account, or an envelope whose sender is unknown) is always admitted."""
        if key is None:
            return True
        if len(self._parked) >= self._capacity:
            return True  # full: back to processing in order, memory stays bounded
        if self._parked_by_key[key] or not self._take(key, now_ns):
            self._parked.append((key, item))
            self._parked_by_key[key] += 1
            self.parked_total += 1
            return False
        return True

    def peek(self, limit: int) -> list[T]:
        """The ``limit`` oldest parked items, left in place (call :meth:`release` once they are processed)."""
        return [item for _, item in itertools.islice(self._parked, limit)]

    def release(self, count: int) -> None:
        """Forget the ``count`` oldest parked items (processed)."""
        for _ in range(min(count, len(self._parked))):
            self._forget(self._parked.popleft()[0])

    def unpark_newest(self, count: int) -> None:
        """Take back the ``count`` items parked last (their processing failed: the caller will offer them
        again)."""
        for _ in range(min(count, len(self._parked))):
            self._forget(self._parked.pop()[0])
            self.parked_total -= 1

    def _forget(self, key: bytes) -> None:
        self._parked_by_key[key] -= 1
        if not self._parked_by_key[key]:
            del self._parked_by_key[key]

    def _take(self, key: bytes, now_ns: int) -> bool:
        budget = self._strangers if key == STRANGERS else self._contact
        tokens, at_ns = self._buckets.pop(key, (float(budget.burst), now_ns))
        tokens = min(float(budget.burst), tokens + max(0, now_ns - at_ns) * budget.rate_per_s / NS_PER_S)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now_ns)
        if len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)
        return allowed
