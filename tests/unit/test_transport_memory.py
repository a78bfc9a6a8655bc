"""The in-memory transport: store, de-duplication, history, gap-free catch-up, outages and delivery hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest

from engine.transport.errors import InvalidEnvelope, RelayUnavailable, TransportClosed
from engine.transport.memory import MemoryNetwork, MemorySubscription, MemoryTransport
from engine.transport.port import ConnectionState, Envelope, ReceivedEnvelope, Transport, follow

T1 = b"\x00\x00\x00\x01"
T2 = b"\x00\x00\x00\x02"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=10))


def env(topic: bytes, n: int) -> Envelope:
    return Envelope(topic=topic, content_topic="/waku/1/x/rfc26", payload=b"p%d" % n, msg_id=f"{n:064x}")


class Clock:
    """A deterministic clock: each reading advances by 1 ms."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


async def drain(sub: MemorySubscription, n: int) -> list[ReceivedEnvelope]:
    return [await asyncio.wait_for(sub.__anext__(), 1) for _ in range(n)]


async def up(network: MemoryNetwork, name: str = "peer") -> MemoryTransport:
    t = network.transport(name)
    await t.connect()
    return t


def test_envelope_validation() -> None:
    with pytest.raises(InvalidEnvelope):
        Envelope(topic=b"abc", content_topic="", payload=b"", msg_id="aa")
    with pytest.raises(InvalidEnvelope):
        Envelope(topic=T1, content_topic="", payload=b"", msg_id="")
    with pytest.raises(InvalidEnvelope):
        Envelope(topic=T1, content_topic="", payload=b"", msg_id="has space")
    assert Envelope(topic=T1, content_topic="", payload=b"", msg_id="0x" + "ab" * 32).msg_id.startswith("0x")
    assert InvalidEnvelope().code == "invalid_envelope"


def test_is_a_transport() -> None:
    assert isinstance(MemoryNetwork().transport(), Transport)


def test_publish_store_dedup_and_sequence() -> None:
    async def main() -> None:
        net = MemoryNetwork(clock=Clock())
        a = await up(net)
        await a.publish(env(T1, 1))
        await a.publish(env(T2, 2))
        await a.publish(env(T1, 1))  # same id: stored once
        stored = net.stored()
        assert [e.sequence for e in stored] == [1, 2]
        assert [e.topic for e in stored] == [T1, T2]
        assert net.stored(T1)[0].payload == b"p1"
        assert net.publish_count == 3
        assert stored[0].relay_time_ns < stored[1].relay_time_ns

    run(main())


def test_dedup_window_expires() -> None:
    async def main() -> None:
        clock = Clock()
        net = MemoryNetwork(clock=clock, duplicate_window_ns=10_000_000)
        a = await up(net)
        await a.publish(env(T1, 1))
        clock.now += 20_000_000
        await a.publish(env(T1, 1))
        assert len(net.stored()) == 2

    run(main())


def test_history_since_and_cursor() -> None:
    async def main() -> None:
        net = MemoryNetwork(clock=Clock())
        a = await up(net)
        for n in range(5):
            await a.publish(env(T1 if n % 2 == 0 else T2, n))
        since = net.stored()[2].relay_time_ns
        hist = a.history([T1], since)
        got = [e async for e in hist]
        assert [e.payload for e in got] == [b"p2", b"p4"]
        assert hist.cursor == 5
        all_t = [e.sequence async for e in a.history([T1, T2], 0)]
        assert all_t == [1, 2, 3, 4, 5]

    run(main())


def test_subscribe_live_and_topic_filter() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a, b = await up(net, "a"), await up(net, "b")
        sub = await b.subscribe([T1])
        await a.publish(env(T2, 1))
        await a.publish(env(T1, 2))
        [got] = await drain(sub, 1)
        assert got.payload == b"p2" and got.sequence == 2
        assert sub.last_sequence == 2
        await sub.close()
        assert [e async for e in sub] == []

    run(main())


def test_catch_up_then_live_is_gap_free() -> None:
    async def main() -> None:
        net = MemoryNetwork(clock=Clock())
        a, b = await up(net, "a"), await up(net, "b")
        for n in range(3):
            await a.publish(env(T1, n))
        hist = b.history([T1], 0)
        seen = []
        async for e in hist:
            seen.append(e.sequence)
            if e.sequence == 1:  # messages arriving while catching up
                await a.publish(env(T1, 10))
                await a.publish(env(T1, 11))
        assert seen == [1, 2, 3] and hist.cursor == 3
        sub = await b.subscribe([T1], after_sequence=hist.cursor)
        await a.publish(env(T1, 12))
        live = await drain(sub, 3)
        assert [e.payload for e in live] == [b"p10", b"p11", b"p12"]

    run(main())


def test_outage_states_and_resumption() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a, b = await up(net, "a"), await up(net, "b")
        states: list[ConnectionState] = []
        remove = b.add_state_listener(states.append)
        sub = await b.subscribe([T1])
        await a.publish(env(T1, 1))
        net.set_online(False)
        with pytest.raises(RelayUnavailable) as info:
            await a.publish(env(T1, 2))
        assert info.value.retryable and info.value.code == "relay_unavailable"
        with pytest.raises(RelayUnavailable):
            await a.connect()
        net.set_online(True)
        await a.publish(env(T1, 2))
        assert [e.payload for e in await drain(sub, 2)] == [b"p1", b"p2"]
        assert states == [ConnectionState.DISCONNECTED, ConnectionState.RECONNECTING, ConnectionState.CONNECTED]
        remove()
        await b.close()
        assert b.state == ConnectionState.CLOSED and states[-1] == ConnectionState.CONNECTED
        with pytest.raises(TransportClosed):
            await b.publish(env(T1, 3))

    run(main())


def test_missed_while_offline_is_replayed_on_resume() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        a, b = await up(net, "a"), await up(net, "b")
        sub = await b.subscribe([T1])

        def drop_b(e: ReceivedEnvelope, who: str) -> Sequence[float]:
            return () if who == "b" else (0,)

        net.deliver = drop_b  # b misses live deliveries, as if its link were down
        await a.publish(env(T1, 1))
        net.deliver = lambda e, who: (0,)
        net.set_online(False)
        net.set_online(True)  # b resumes after its last delivered sequence, like an ordered consumer
        assert [e.payload for e in await drain(sub, 1)] == [b"p1"]

    run(main())


def test_deliver_policy_drop_duplicate_delay_reorder() -> None:
    async def main() -> None:
        def policy(e: ReceivedEnvelope, who: str) -> Sequence[float]:
            return {b"p1": (), b"p2": (0, 0), b"p3": (0.05,), b"p4": (0,)}[e.payload]

        net = MemoryNetwork(deliver=policy)
        a, b = await up(net, "a"), await up(net, "b")
        sub = await b.subscribe([T1])
        for n in (1, 2, 3, 4):
            await a.publish(env(T1, n))
        got = [e.payload for e in await drain(sub, 4)]
        assert got == [b"p2", b"p2", b"p4", b"p3"]
        # the store itself is complete: history is not affected by the policy
        assert [e.payload async for e in b.history([T1], 0)] == [b"p1", b"p2", b"p3", b"p4"]

    run(main())


def test_invalid_topic_and_not_connected() -> None:
    async def main() -> None:
        net = MemoryNetwork()
        t = net.transport()
        with pytest.raises(RelayUnavailable):
            await t.publish(env(T1, 1))
        await t.connect()
        with pytest.raises(InvalidEnvelope):
            await t.subscribe([b"toolong"])

    run(main())


def test_follow_hands_over_without_gap() -> None:
    async def main() -> None:
        net = MemoryNetwork(clock=Clock())
        a, b = await up(net, "a"), await up(net, "b")
        for n in range(3):
            await a.publish(env(T1, n))
        stream = follow(b, [T1], 0)
        got = []
        async for e in stream:
            got.append(e.payload)
            if len(got) == 2:
                await a.publish(env(T1, 3))  # during catch-up
            if len(got) == 4:
                await a.publish(env(T1, 4))  # live
            if len(got) == 5:
                break
        await stream.aclose()
        assert got == [b"p0", b"p1", b"p2", b"p3", b"p4"]
        assert not b._subs  # the live subscription was released

    run(main())


def test_take_ready_hands_out_what_already_arrived_in_order_and_never_waits() -> None:
    async def main() -> None:
        net = MemoryNetwork(clock=Clock())
        a, b = await up(net, "a"), await up(net, "b")
        sub = await b.subscribe([T1])
        assert sub.take_ready(10) == []  # nothing yet: no waiting
        for n in range(6):
            await a.publish(env(T1, n))
        first = await asyncio.wait_for(sub.__anext__(), 1)
        rest = sub.take_ready(3)
        assert [e.payload for e in [first, *rest]] == [b"p0", b"p1", b"p2", b"p3"]
        assert sub.last_sequence == rest[-1].sequence
        assert [e.payload for e in sub.take_ready(10)] == [b"p4", b"p5"]
        await a.publish(env(T1, 6))
        await sub.close()
        assert [e.payload for e in sub.take_ready(10)] == [b"p6"]  # delivered before the close
        with pytest.raises(StopAsyncIteration):
            await sub.__anext__()

        hist = a.history([T1], 0)
        got = [await hist.__anext__(), *hist.take_ready(4)]
        assert [e.payload for e in got] == [b"p0", b"p1", b"p2", b"p3", b"p4"]
        assert [e.payload async for e in hist] == [b"p5", b"p6"]
        assert hist.cursor == 7

    run(main())
