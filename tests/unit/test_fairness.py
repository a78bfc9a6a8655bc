"""Receive fairness (engine.sessions.fairness and the inbox that applies it): a peer that floods waits behind
everyone else and loses nothing; each peer's messages keep their order; memory stays bounded; a restart with
envelopes still parked reads them again from the relay."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.protocol.topics import topic_of_content_topic
from engine.protocol.waku import WakuMessage
from engine.runtime.inbox import RELAY_TIME_CURSOR, Inbox
from engine.sessions.engine import SessionEngine
from engine.sessions.events import Event, MessageReceived
from engine.sessions.fairness import STRANGERS, Budget, FairScheduler
from engine.transport.memory import MemoryNetwork
from engine.transport.port import Envelope
from tests.unit.test_session_engine import T0, Clock, Device, Relay, talk

NS = 10**9
KEYS = [b"alice", b"bob", STRANGERS]


# --- the scheduler --------------------------------------------------------------------------------------------


def test_a_sender_gets_its_burst_then_its_rate() -> None:
    fair: FairScheduler[int] = FairScheduler(Budget(rate_per_s=2.0, burst=3), Budget(rate_per_s=1.0, burst=1))
    assert [fair.admit(b"alice", n, 0) for n in range(4)] == [True, True, True, False]
    assert fair.admit(b"bob", 10, 0)  # another sender has its own budget
    fair.release(1)  # alice's parked item processed
    assert not fair.admit(b"alice", 4, NS // 4)  # a quarter of a token so far
    fair.release(1)
    assert fair.admit(b"alice", 5, NS // 4 + NS // 2)  # 1.5 tokens refilled
    assert fair.admit(None, 6, 0)  # no key (this account, an envelope that does not open): never parked


def test_every_stranger_shares_one_budget() -> None:
    fair: FairScheduler[int] = FairScheduler(Budget(100.0, 100), Budget(rate_per_s=0.0, burst=2))
    assert [fair.admit(STRANGERS, n, 0) for n in range(3)] == [True, True, False]
    assert fair.peek(5) == [2]


def test_parked_items_stay_bounded() -> None:
    fair: FairScheduler[int] = FairScheduler(Budget(0.0, 1), Budget(0.0, 1), capacity=5)
    admitted = [fair.admit(b"flood", n, 0) for n in range(20)]
    assert len(fair) == 5 and fair.peek(10) == [1, 2, 3, 4, 5]
    assert admitted == [True] + [False] * 5 + [True] * 14  # full: processed in arrival order again


def test_taking_back_the_last_parked_items() -> None:
    fair: FairScheduler[int] = FairScheduler(Budget(0.0, 1), Budget(0.0, 1))
    for n in range(4):
        fair.admit(b"flood", n, 0)
    fair.unpark_newest(2)
    assert fair.peek(10) == [1] and fair.parked_total == 1
    fair.release(1)
    assert len(fair) == 0
    assert not fair.admit(b"flood", 9, 0)  # no token left: parked again, nothing else waits
    assert fair.peek(1) == [9]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("arrive"), st.sampled_from(KEYS), st.integers(0, 3 * NS)),
                          st.tuples(st.just("drain"), st.just(b""), st.integers(1, 5))), max_size=120))
def test_each_sender_is_processed_in_arrival_order_and_nothing_is_lost(ops: list[tuple[str, bytes, int]]) -> None:
    fair: FairScheduler[tuple[bytes, int]] = FairScheduler(Budget(1.0, 3), Budget(0.5, 2), capacity=7)
    arrived: dict[bytes, list[int]] = {k: [] for k in KEYS}
    processed: dict[bytes, list[int]] = {k: [] for k in KEYS}
    now = 0
    for n, (op, key, value) in enumerate(ops):
        if op == "arrive":
            now += value
            arrived[key].append(n)
            if fair.admit(key, (key, n), now):
                processed[key].append(n)
        else:
            batch = fair.peek(value)
            fair.release(len(batch))
            for k, m in batch:
                processed[k].append(m)
        assert len(fair) <= 7
    for k, m in fair.peek(len(fair)):
        processed[k].append(m)
    assert processed == arrived


# --- the inbox on a relay ---------------------------------------------------------------------------------------


def _publish(network: MemoryNetwork, envelopes: list[bytes]) -> None:
    async def publish() -> None:
        transport = network.transport("publisher")
        await transport.connect()
        for n, data in enumerate(envelopes):
            content_topic = WakuMessage.from_bytes(data).content_topic
            await transport.publish(Envelope(topic_of_content_topic(content_topic), content_topic, data, f"m{n}"))

    asyncio.run(publish())


def _world(flood: int) -> tuple[Device, MemoryNetwork, dict[str, int]]:
    """Bob knows Alice and Mallory (a contact); on the relay: Mallory's flood, then one message of Alice.
    Also each message's relay time."""
    relay = Relay(Clock())
    alice, bob, mallory = relay.device("alice"), relay.device("bob"), relay.device("mallory")
    talk(relay, alice, bob, "hello")
    talk(relay, mallory, bob, "hi")
    bob.engine.add_contact(mallory.identity)
    relay.settle()
    times: Iterator[int] = itertools.count(T0, 1_000)
    network = MemoryNetwork(clock=lambda: next(times))
    sent = [(f"flood {n}", mallory) for n in range(flood)] + [("honest", alice)]
    labelled = [(text, data) for text, sender in sent for data in relay.send(sender, bob, text)[1]
                if bob in relay.subscribers(data)]
    assert len(labelled) == len(sent)
    _publish(network, [data for _, data in labelled])
    relay_time = {e.payload: e.relay_time_ns for e in network.stored()}
    return bob, network, {text: relay_time[data] for text, data in labelled}


async def _run_inbox(engine: SessionEngine, network: MemoryNetwork, shown: list[tuple[str, int | None]],
                     until: str, stop_after: int | None = None) -> Inbox:
    """Bob's inbox until ``until`` is shown: ``shown`` gets each text with the store's relay-time cursor as
    committed with it (one value for the texts of one transaction)."""
    transport = network.transport("bob")
    await transport.connect()
    done = asyncio.Event()

    def emit(events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                shown.append((event.message.text, engine.store.cursor(RELAY_TIME_CURSOR)))
                if event.message.text == until:
                    done.set()

    async def connected() -> None:
        return None

    inbox = Inbox(engine, transport, emit, connected)
    task = asyncio.create_task(inbox.run())
    await asyncio.wait_for(done.wait(), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await transport.close()
    return inbox


def test_an_honest_message_overtakes_a_flood_that_is_still_shown_whole_and_in_order() -> None:
    flood = 1_200  # more than a contact's burst (500)
    bob, network, relay_times = _world(flood)
    shown: list[tuple[str, int | None]] = []
    inbox = asyncio.run(_run_inbox(bob.engine, network, shown, until=f"flood {flood - 1}"))
    texts = [text for text, _ in shown]
    assert texts.count("honest") == 1
    assert [t for t in texts if t != "honest"] == [f"flood {n}" for n in range(flood)]
    behind = flood - texts.index("honest")
    print(f"\nfair inbox: honest message shown with {behind} of {flood} flood messages still to show; "
          f"{inbox._parked.parked_total} parked")
    assert behind >= flood // 2
    # the cursor never passed a flood message that was not shown yet (a restart reads those again)
    for k, (_, cursor) in enumerate(shown):
        later = [relay_times[text] for text, then in shown[k + 1:] if then != cursor]  # later transactions
        assert cursor is not None and (not later or cursor <= min(later))


def test_a_restart_with_envelopes_parked_loses_nothing_and_shows_nothing_twice() -> None:
    flood = 900
    bob, network, _ = _world(flood)
    first: list[tuple[str, int | None]] = []
    asyncio.run(_run_inbox(bob.engine, network, first, until="honest"))
    assert len(first) < flood  # stopped with flood envelopes parked
    restarted = SessionEngine(bob.store, bob.engine.entropy, bob.engine.clock)
    second: list[tuple[str, int | None]] = []
    asyncio.run(_run_inbox(restarted, network, second, until=f"flood {flood - 1}"))
    texts = [text for text, _ in first + second]
    assert sorted(texts) == sorted(["honest", *(f"flood {n}" for n in range(flood))])
    assert [t for t in texts if t != "honest"] == [f"flood {n}" for n in range(flood)]
