"""Group commit of sends (``engine.runtime.sends``): the sends of one loop turn share a transaction, in order,
at most ``MAX_BATCH`` at a time; each caller gets its own result or error; a failed transaction fails its whole
batch and nothing else; a cancelled send is not sent; a closed messenger sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from engine.errors import SottovoceError
from engine.protocol.application.errors import EmptyText
from engine.runtime.errors import MessengerClosed
from engine.runtime.sends import MAX_BATCH, SendBatcher
from engine.store.errors import DiskFull


class FakeEngine:
    """``send_texts`` that records its batches; a text "bad" is refused, a text "fail" fails the transaction."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.closed: SottovoceError | None = None

    def send_texts(self, messages: Sequence[tuple[bytes, str]]) -> list[Any]:
        texts = [text for _, text in messages]
        if "fail" in texts:
            raise DiskFull()
        self.batches.append(texts)
        return [EmptyText() if text == "bad" else f"sent {text}" for text in texts]

    def batcher(self) -> SendBatcher:
        return SendBatcher(self.send_texts, closed=lambda: self.closed)


def test_sends_of_one_turn_share_a_transaction_in_order() -> None:
    engine = FakeEngine()

    async def main() -> list[Any]:
        batcher = engine.batcher()
        return await asyncio.gather(*(batcher.send(b"peer", f"m{n}") for n in range(5)))

    assert asyncio.run(main()) == [f"sent m{n}" for n in range(5)]
    assert engine.batches == [[f"m{n}" for n in range(5)]]


def test_a_lone_send_waits_for_no_one() -> None:
    engine = FakeEngine()

    async def main() -> None:
        batcher = engine.batcher()
        for n in range(3):
            assert await batcher.send(b"peer", f"m{n}") == f"sent m{n}"

    asyncio.run(main())
    assert engine.batches == [["m0"], ["m1"], ["m2"]]


def test_a_long_queue_is_committed_max_batch_at_a_time() -> None:
    engine = FakeEngine()
    count = 2 * MAX_BATCH + 3

    async def main() -> list[Any]:
        batcher = engine.batcher()
        return await asyncio.gather(*(batcher.send(b"peer", str(n)) for n in range(count)))

    assert asyncio.run(main()) == [f"sent {n}" for n in range(count)]
    assert [len(batch) for batch in engine.batches] == [MAX_BATCH, MAX_BATCH, 3]
    assert [text for batch in engine.batches for text in batch] == [str(n) for n in range(count)]


def test_a_refused_send_raises_for_its_caller_only() -> None:
    engine = FakeEngine()

    async def main() -> list[Any]:
        batcher = engine.batcher()
        return await asyncio.gather(*(batcher.send(b"peer", t) for t in ("a", "bad", "b")), return_exceptions=True)

    first, refused, last = asyncio.run(main())
    assert (first, last) == ("sent a", "sent b") and isinstance(refused, EmptyText)
    assert engine.batches == [["a", "bad", "b"]]


def test_a_failed_transaction_fails_its_batch_and_the_next_one_goes() -> None:
    engine = FakeEngine()

    async def main() -> tuple[list[Any], Any]:
        batcher = engine.batcher()
        failed = await asyncio.gather(*(batcher.send(b"peer", t) for t in ("a", "fail")), return_exceptions=True)
        return failed, await batcher.send(b"peer", "c")

    failed, after = asyncio.run(main())
    assert all(isinstance(result, DiskFull) for result in failed)
    assert after == "sent c" and engine.batches == [["c"]]


def test_a_send_cancelled_before_its_commit_is_not_sent() -> None:
    engine = FakeEngine()

    async def main() -> Any:
        batcher = engine.batcher()
        cancelled = asyncio.ensure_future(batcher.send(b"peer", "never"))
        kept = asyncio.ensure_future(batcher.send(b"peer", "kept"))
        await asyncio.sleep(0)  # both are queued now, their batch not committed yet
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        return await kept

    assert asyncio.run(main()) == "sent kept"
    assert engine.batches == [["kept"]]


def test_nothing_is_sent_once_closed() -> None:
    engine = FakeEngine()

    async def main() -> None:
        batcher = engine.batcher()
        pending = asyncio.ensure_future(batcher.send(b"peer", "late"))
        engine.closed = MessengerClosed()
        with pytest.raises(MessengerClosed):
            await pending

    asyncio.run(main())
    assert engine.batches == []


def test_a_loop_that_ended_with_a_batch_pending_does_not_block_the_next() -> None:
    engine = FakeEngine()
    batcher = engine.batcher()
    old = asyncio.new_event_loop()
    try:
        lost = old.create_task(batcher.send(b"peer", "lost"))
        old.call_soon(old.stop)  # runs the send's first step, then stops before its batch is committed
        old.run_forever()
        assert not lost.done()
    finally:
        old.close()

    async def main() -> Any:
        return await asyncio.wait_for(batcher.send(b"peer", "next"), 5)

    assert asyncio.run(main()) == "sent next"
    assert engine.batches == [["next"]]  # the send of the loop that ended has no caller: not sent
