"""The datasync clock: it ticks when the engine has something due, and a wake only disturbs it for an earlier due."""

from __future__ import annotations

import asyncio
import time
from typing import cast

from engine.runtime.datasync import DatasyncTicker
from engine.sessions.engine import SessionEngine
from engine.sessions.events import Event

MS = 1_000_000


class FakeEngine:
    """``next_due_ns`` as the test sets it; each tick returns one marker event and clears the due time."""

    def __init__(self) -> None:
        self.next_due_ns: int | None = None
        self.ticks = 0

    def tick(self) -> list[Event]:
        self.ticks += 1
        self.next_due_ns = None
        return [cast(Event, f"tick {self.ticks}")]


async def started(engine: FakeEngine) -> tuple[DatasyncTicker, list[Event], asyncio.Task[None]]:
    ticked: list[Event] = []
    ticker = DatasyncTicker(cast(SessionEngine, engine), ticked.extend)
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0.01)
    return ticker, ticked, task


def test_ticks_when_due_and_hands_over_the_events() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        engine.next_due_ns = time.time_ns() + 30 * MS
        _, ticked, task = await started(engine)
        assert ticked == []
        await asyncio.sleep(0.1)
        assert ticked == ["tick 1"] and engine.ticks == 1
        task.cancel()

    asyncio.run(scenario())


def test_a_wake_for_an_earlier_due_time_ticks_at_once() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        ticker, ticked, task = await started(engine)  # nothing due: asleep until woken
        engine.next_due_ns = time.time_ns() - MS
        ticker.wake()
        await asyncio.sleep(0.01)
        assert ticked == ["tick 1"]
        task.cancel()

    asyncio.run(scenario())


def test_a_wake_for_a_later_due_time_lets_the_loop_sleep() -> None:
    async def scenario() -> None:
        engine = FakeEngine()
        engine.next_due_ns = soon = time.time_ns() + 50 * MS
        ticker, ticked, task = await started(engine)
        engine.next_due_ns = soon + 10_000 * MS  # e.g. the message due soon was acknowledged
        ticker.wake()
        assert not ticker._wake.is_set()
        engine.next_due_ns = soon - 10 * MS
        ticker.wake()
        assert ticker._wake.is_set()
        engine.next_due_ns = soon + 10_000 * MS
        await asyncio.sleep(0.15)  # woken, and again at the old time: each time it sees nothing due
        assert ticked == [] and not task.done()
        task.cancel()

    asyncio.run(scenario())
