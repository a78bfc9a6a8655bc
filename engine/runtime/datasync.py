"""The datasync clock: sends MVDS acks and retransmissions when the session engine has them due.

status-go runs a 300 ms ticker; here the loop sleeps until :attr:`SessionEngine.next_due_ns` (or until
:meth:`DatasyncTicker.wake` says something new may be due) and then runs one :meth:`SessionEngine.tick`,
whose outbox items the pump publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

from ..sessions.engine import SessionEngine
from ..sessions.events import Event

NS_PER_S = 1e9


class DatasyncTicker:
    """Runs until cancelled; ``after_tick`` gets each tick's events (it should also wake the outbox)."""

    def __init__(self, engine: SessionEngine, after_tick: Callable[[list[Event]], None]) -> None:
        self.engine = engine
        self._after_tick = after_tick
        self._wake = asyncio.Event()
        self._asleep_until: float | None = None
        """When the sleeping loop looks again by itself (``inf``: only when woken); None before it first sleeps."""

    def wake(self) -> None:
        """Something was sent or received: wake the loop if that made something due before it would look again.

        (A due time that moved later needs no wake: the loop wakes at the earlier time and sleeps again.)"""
        due = self.engine.next_due_ns
        if due is not None and (self._asleep_until is None or due < self._asleep_until):
            self._wake.set()

    async def run(self) -> None:
        while True:
            due = self.engine.next_due_ns
            delay = None if due is None else (due - time.time_ns()) / NS_PER_S
            if delay is None or delay > 0:
                self._asleep_until = math.inf if due is None else due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                continue
            self._after_tick(self.engine.tick())
