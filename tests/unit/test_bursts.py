"""Receiving a burst of envelopes in one store transaction (``SessionEngine.receive_many``) gives exactly what
receiving them one by one gives: the same events, the same committed state, the same rejection counts; and a
failed commit takes back the whole burst."""

from __future__ import annotations

import random

import pytest

from engine.sessions.events import EnvelopeRejected, Event, MessageReceived
from engine.store.errors import DiskFull
from tests.unit.test_session_engine import Clock, Relay, _flip, committed, talk


def _world() -> tuple[Relay, list[bytes]]:
    """Alice and Bob in conversation, and a burst for Bob: 12 messages in a shuffled order, one of them twice,
    one envelope that is not a Waku message and one tampered with (all the same in every call)."""
    relay = Relay(Clock())
    alice, bob = relay.device("alice"), relay.device("bob")
    talk(relay, alice, bob, "hello")
    talk(relay, bob, alice, "hi")
    burst = []
    for n in range(12):
        _, envelopes = relay.send(alice, bob, f"message {n}")
        burst += [data for data in envelopes if relay.subscribers(data) and bob in relay.subscribers(data)]
    random.Random(7).shuffle(burst)
    burst.insert(5, burst[2])
    burst.insert(8, b"\x0a\x03not a waku message")
    burst.insert(3, _flip(burst[0], len(burst[0]) - 40))
    return relay, burst


def _shown(events: list[Event]) -> list[str]:
    return [e.message.text for e in events if isinstance(e, MessageReceived)]


def _count_commits(relay: Relay) -> list[int]:
    commits = [0]

    def hook() -> None:
        commits[0] += 1

    relay.devices[1].store.commit_hook = hook
    return commits


def test_a_burst_in_one_transaction_is_the_same_as_one_by_one() -> None:
    one_by_one, burst = _world()
    bob = one_by_one.devices[1]
    events = [event for data in burst for event in bob.engine.receive(data)]

    together, same_burst = _world()
    assert same_burst == burst  # the same world, built twice
    bob2 = together.devices[1]
    commits = _count_commits(together)
    events2 = bob2.engine.receive_many(burst, cursor=("test", 42))

    assert commits == [1]
    assert events2 == events
    assert sorted(_shown(events)) == sorted(f"message {n}" for n in range(12))  # each once
    assert bob2.engine.rejections == bob.engine.rejections and sum(bob.engine.rejections.values()) == 2
    assert bob2.store.cursor("test") == 42
    state, state2 = committed(bob.store), committed(bob2.store)
    state2.cursors.pop("test")  # type: ignore[attr-defined]
    assert state2 == state


def test_a_failed_commit_takes_back_the_whole_burst_and_it_is_received_again() -> None:
    relay, burst = _world()
    bob = relay.devices[1]
    before = committed(bob.store)
    bob.store.fail_next_commit(DiskFull())
    with pytest.raises(DiskFull):
        bob.engine.receive_many(burst)
    assert committed(bob.store) == before
    events = bob.engine.receive_many(burst)
    assert sorted(_shown(events)) == sorted(f"message {n}" for n in range(12))
    again = bob.engine.receive_many(burst)  # all seen now; only the two bad envelopes are rejected again
    assert len(again) == 2 and all(isinstance(e, EnvelopeRejected) for e in again)


def test_a_burst_of_envelopes_that_do_not_parse_stores_nothing() -> None:
    relay, _ = _world()
    bob = relay.devices[1]
    before, commits = committed(bob.store), _count_commits(relay)
    events = bob.engine.receive_many([b"garbage", b"\x0a"])
    assert len(events) == 2 and all(isinstance(e, EnvelopeRejected) for e in events)
    assert commits == [0] and committed(bob.store) == before
