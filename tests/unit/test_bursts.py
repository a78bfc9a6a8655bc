"""Receiving a burst of envelopes in one store transaction (``SessionEngine.receive_many``) gives exactly what
receiving them one by one gives: the same events, the same committed state, the same rejection counts; and a
failed commit takes back the whole burst. Sends committed together (``send_texts``) are the same as sent one by one."""

from __future__ import annotations

import random

import pytest

from engine.sessions.events import EnvelopeRejected, Event, MessageReceived
from engine.store.errors import DiskFull
from tests.unit.test_session_engine import Clock, Device, Relay, _flip, committed, talk


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


# --- sends committed together (SessionEngine.send_texts) -------------------------------------------------------


def _conversation() -> tuple[Relay, Device, Device]:
    relay = Relay(Clock())
    alice, bob = relay.device("alice"), relay.device("bob")
    talk(relay, alice, bob, "hello")
    talk(relay, bob, alice, "hi")
    return relay, alice, bob


def test_sends_in_one_transaction_are_the_same_as_one_by_one() -> None:
    _, alice, bob = _conversation()
    sent = [alice.engine.send_text(bob.identity, f"message {n}") for n in range(5)]

    relay2, alice2, bob2 = _conversation()
    commits = [0]
    alice2.store.commit_hook = lambda: commits.__setitem__(0, commits[0] + 1)
    sent2 = alice2.engine.send_texts([(bob2.identity, f"message {n}") for n in range(5)])

    assert commits == [1]
    assert sent2 == sent
    assert committed(alice2.store) == committed(alice.store)
    for data in relay2.flush(alice2):
        relay2.deliver(data)
    assert bob2.texts()[-5:] == [f"message {n}" for n in range(5)]


def test_a_refused_send_gets_its_error_and_the_others_are_sent() -> None:
    _, alice, bob = _conversation()
    results = alice.engine.send_texts([(bob.identity, "first"), (bob.identity, ""), (alice.identity, "to me"),
                                       (bob.identity, "last")])
    assert [type(r).__name__ for r in results] == ["SentMessage", "EmptyText", "UnusableRecipient", "SentMessage"]
    texts = [m.text for m in alice.store.messages(bob.identity)]
    assert texts[-2:] == ["first", "last"]


def test_a_failed_commit_sends_none_of_the_batch() -> None:
    _, alice, bob = _conversation()
    before = committed(alice.store)
    alice.store.fail_next_commit(DiskFull())
    with pytest.raises(DiskFull):
        alice.engine.send_texts([(bob.identity, "one"), (bob.identity, "two")])
    assert committed(alice.store) == before
    [sent] = alice.engine.send_texts([(bob.identity, "three")])
    assert not isinstance(sent, Exception)
    assert [m.text for m in alice.store.messages(bob.identity)][-1] == "three"


def test_a_fault_inside_a_send_undoes_the_sends_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _, alice, bob = _conversation()
    before = committed(alice.store)
    clock_before = dict(alice.engine.core.chat_clocks)
    real = alice.engine.core.send_text
    calls = [0]

    def faulty(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(alice.engine.core, "send_text", faulty)
    with pytest.raises(RuntimeError):
        alice.engine.send_texts([(bob.identity, "one"), (bob.identity, "two")])
    assert committed(alice.store) == before
    assert alice.engine.core.chat_clocks == clock_before  # the in-memory core is the committed one again


def test_an_arrival_processed_meanwhile_is_not_processed_again() -> None:
    """``arrive`` checks the seen marks once; ``receive_arrivals`` asks the store again only if something was
    committed since, and the same envelope twice in one burst is processed once."""
    relay, alice, bob = _conversation()
    _, envelopes = relay.send(alice, bob, "once")
    [data] = [d for d in envelopes if bob in relay.subscribers(d)]
    early, late = bob.engine.arrive(data), bob.engine.arrive(data)  # e.g. one parked by fairness, one live
    shown = _shown(bob.engine.receive_arrivals([early, early]))
    assert shown == ["once"]
    assert _shown(bob.engine.receive_arrivals([late])) == []
    assert bob.engine.arrive(data).opening is None  # seen now: not even opened
