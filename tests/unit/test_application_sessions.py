"""The application layer over real sessions (status-application.md §4-§8): datasync acks and retransmission,
contact requests and updates, display names, blocking, contact sync to paired devices, segmentation.

Installations run the real :class:`~engine.sessions.engine.SessionEngine` on memory stores, with the hand-driven
relay of ``test_session_engine``.
"""

from __future__ import annotations

import dataclasses

import pytest

from engine.contacts import Contact, load_contact, save_contact
from engine.protocol.application import datasync, segmentation
from engine.protocol.application import messages as app
from engine.protocol.application.metadata import parse
from engine.sessions import core as core_module
from engine.sessions.core import Step
from engine.sessions.datasync_state import TICK_NS
from engine.sessions.engine import SessionEngine
from engine.sessions.errors import NoContactRequest
from engine.sessions.events import (
    ContactChanged,
    ContactRequestReceived,
    DeliveryChanged,
    ProfileChanged,
)
from engine.store.port import DeliveryState
from tests.unit.test_session_engine import SECOND, Clock, Device, Relay, talk


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def relay(clock: Clock) -> Relay:
    return Relay(clock)


def _pair_of(relay: Relay) -> tuple[Device, Device]:
    alice = relay.device("alice", display_name="alice_one")
    bob = relay.device("bob", display_name="bob_two")
    return alice, bob


def _acks_flow(relay: Relay, clock: Clock) -> None:
    """Let one datasync tick pass everywhere and deliver what it sent."""
    clock.advance(TICK_NS)
    relay.settle()


def _events(device: Device, kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in device.inbox if isinstance(e, kind)]


# --- datasync -----------------------------------------------------------------------------------------------


def test_a_chat_message_travels_in_datasync_and_the_peers_ack_marks_it_delivered(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    sent = talk(relay, alice, bob, "hello")
    [outgoing] = alice.engine.core.outgoing.values()
    assert outgoing.message.group_id == datasync.group_id(alice.identity, bob.identity)
    assert outgoing.message.timestamp == clock() // SECOND and outgoing.send_count == 1
    assert parse(outgoing.message.body).message_id == sent.message_id
    assert alice.engine.store.message(sent.message_id).state == DeliveryState.SENT  # type: ignore[union-attr]
    assert bob.engine.owes_acks
    _acks_flow(relay, clock)
    assert not bob.engine.owes_acks and not alice.engine.core.outgoing
    assert alice.engine.store.message(sent.message_id).state == DeliveryState.DELIVERED  # type: ignore[union-attr]
    assert DeliveryChanged(sent.message_id, DeliveryState.DELIVERED) in alice.inbox


def test_an_unacknowledged_message_is_resent_on_status_gos_schedule_and_shown_once(relay: Relay,
                                                                                   clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "first")  # a session both ways, then bob goes deaf
    _acks_flow(relay, clock)
    sent, [original] = relay.send(alice, bob, "lost in transit")
    [outgoing] = alice.engine.core.outgoing.values()
    first_gap = outgoing.next_due_ns - clock()
    assert 27 * SECOND <= first_gap < 36 * SECOND  # 90 ticks of 300 ms, plus up to 30 ticks of jitter
    clock.advance(first_gap - 1)
    assert relay.flush(alice) == []
    clock.advance(1)
    [again] = relay.flush(alice)
    assert again != original
    [resent] = alice.engine.core.outgoing.values()
    assert resent.mvds_id == outgoing.mvds_id and resent.send_count == 2
    assert 54 * SECOND <= resent.next_due_ns - clock() < 63 * SECOND
    relay.deliver(again)
    relay.deliver(original)
    assert bob.texts().count("lost in transit") == 1
    _acks_flow(relay, clock)
    assert alice.engine.store.message(sent.message_id).state == DeliveryState.DELIVERED  # type: ignore[union-attr]


def test_a_message_nobody_acknowledges_is_sent_16_times_then_given_up(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    relay.send(alice, bob, "into the void")
    transmissions = 1
    for _ in range(40):
        clock.advance(3 * 86_400 * SECOND)
        transmissions += len(relay.flush(alice))
    assert transmissions == 16 and not alice.engine.core.outgoing


def test_a_payload_with_several_messages_and_acks_and_a_bare_amm_are_all_accepted(relay: Relay,
                                                                                   clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "hi")
    _acks_flow(relay, clock)
    core = alice.engine.core
    group = datasync.group_id(alice.identity, bob.identity)
    bodies = [core._sign(app.chat_message(clock=clock() // 10**6 + i, timestamp=clock() // 10**6, text=f"batch {i}",
                                          chat_id=app.key_id(bob.identity))) for i in range(3)]
    bare = core._sign(app.chat_message(clock=clock() // 10**6 + 9, timestamp=clock() // 10**6, text="bare",
                                       chat_id=app.key_id(bob.identity)))
    for plaintext in (datasync.wrap([datasync.DatasyncMessage(group, clock() // SECOND, b) for b in bodies]), bare):
        step = Step()
        message = core.protocol.encrypt(bob.identity, plaintext, clock(), alice.engine.entropy)
        step.outbox.extend(core._envelope(bob.identity, message, clock(), alice.engine.entropy, None))
        alice.engine._commit(step)
    relay.settle()
    assert bob.texts()[-4:] == ["batch 0", "batch 1", "batch 2", "bare"]
    assert len(bob.engine.core.acks[alice.identity].ids) == 3  # the three datasync messages; the bare one has none


# --- contact requests ---------------------------------------------------------------------------------------


def test_a_contact_request_accepted_makes_both_sides_mutual(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    sent = alice.engine.send_contact_request(bob.identity, "it's alice from the choir")
    relay.settle()
    [request] = _events(bob, ContactRequestReceived)
    assert (request.identity, request.request_id, request.text) == (alice.identity, sent.message_id,
                                                                    "it's alice from the choir")
    assert request.display_name == "alice_one"
    assert bob.engine.peer(alice.identity).pending_request and alice.engine.peer(bob.identity).added
    clock.advance(SECOND)
    bob.engine.accept_contact_request(alice.identity)
    relay.settle()
    assert alice.engine.peer(bob.identity).mutual and bob.engine.peer(alice.identity).mutual
    assert ContactChanged(bob.identity, True, True, False) in alice.inbox


def test_adding_a_contact_sends_a_contact_update_with_the_display_name(relay: Relay) -> None:
    alice, bob = _pair_of(relay)
    alice.engine.add_contact(bob.identity)
    assert alice.engine.add_contact(bob.identity) == []  # already added: nothing more is sent
    relay.settle()
    [request] = _events(bob, ContactRequestReceived)
    assert request.request_id == app.default_contact_request_id(alice.identity)
    assert bob.engine.peer(alice.identity).display_name == "alice_one"
    assert ProfileChanged(alice.identity, "alice_one") in bob.inbox
    bob.engine.add_contact(alice.identity)  # adding back is accepting: mutual without an accept message
    relay.settle()
    assert alice.engine.peer(bob.identity).mutual and bob.engine.peer(alice.identity).mutual


def test_a_declined_request_is_never_told_to_the_requester(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    alice.engine.send_contact_request(bob.identity, "hello?")
    relay.settle()
    clock.advance(SECOND)
    bob.engine.decline_contact_request(alice.identity)
    assert bob.engine.peer(alice.identity).dismissed and not bob.engine.peer(alice.identity).pending_request
    talk(relay, bob, alice, "a message after declining")
    relay.settle()
    assert alice.engine.peer(bob.identity).added and not alice.engine.peer(bob.identity).has_added_us
    assert not _events(alice, ContactRequestReceived)


def test_removing_a_contact_retracts_both_requests_on_both_sides(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    alice.engine.add_contact(bob.identity)
    relay.settle()
    bob.engine.add_contact(alice.identity)
    relay.settle()
    clock.advance(SECOND)
    alice.engine.remove_contact(bob.identity)
    relay.settle()
    assert not alice.engine.peer(bob.identity).added and not bob.engine.peer(alice.identity).has_added_us


def test_a_blocked_account_is_dropped_unread_and_never_acknowledged(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "before")
    _acks_flow(relay, clock)
    bob.engine.set_blocked(alice.identity, True)
    _, envelopes = relay.send(alice, bob, "after")
    for data in envelopes:
        relay.deliver(data)
    assert "after" not in bob.texts() and "blocked" in bob.rejected()
    assert not bob.engine.owes_acks
    bob.engine.set_blocked(alice.identity, False)
    talk(relay, alice, bob, "unblocked")


def test_a_chat_message_names_its_sender_and_a_newer_name_replaces_an_older_one(relay: Relay,
                                                                                clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "hi")
    assert bob.engine.peer(alice.identity).display_name == "alice_one"
    core = alice.engine.core
    core.account = dataclasses.replace(core.account, display_name="alice_renamed")  # as a profile edit would
    clock.advance(SECOND)
    talk(relay, alice, bob, "new name")
    assert bob.engine.peer(alice.identity).display_name == "alice_renamed"


# --- own devices ----------------------------------------------------------------------------------------------


def test_pairing_sends_every_contact_with_its_nickname_to_the_new_installation(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    with alice.store.transaction() as writer:
        save_contact(writer, Contact(bob.identity, "Bobby", verified=True))
    alice.engine.add_contact(bob.identity)
    relay.settle()
    bob.engine.add_contact(alice.identity)
    relay.settle()
    laptop = relay.device("alice-laptop", phrase=alice.phrase)
    alice.engine.learn_bundle(laptop.engine.own_bundle())
    alice.engine.pair(laptop.installation_id)
    relay.settle()
    synced = load_contact(laptop.store, bob.identity)
    assert synced is not None and (synced.name, synced.verified) == ("Bobby", True)
    assert laptop.engine.peer(bob.identity).mutual
    with pytest.raises(NoContactRequest):  # mutual already: there is no request to decline
        laptop.engine.decline_contact_request(bob.identity)


# --- segmentation ---------------------------------------------------------------------------------------------


def test_a_message_larger_than_a_segment_is_reassembled_once_even_across_a_restart(
        relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "hi")
    monkeypatch.setattr(core_module, "segment_message",
                        lambda data: segmentation.segment_message(data, segment_size=600))
    text = "sotto voce " * 300
    _, envelopes = relay.send(alice, bob, text)
    assert 4 <= len(envelopes) < 8  # data segments only: from 8 on, a parity segment could stand in for one
    for data in reversed(envelopes[1:]):
        relay.deliver(data, to=[bob])
        bob.engine = SessionEngine(bob.store, bob.engine.entropy, bob.engine.clock)  # a restart between segments
    assert text not in bob.texts()
    relay.deliver(envelopes[0], to=[bob])
    relay.deliver(envelopes[0], to=[bob])
    assert bob.texts().count(text) == 1
    assert not list(bob.store.records(core_module.SEGMENTS))


def test_the_own_copy_of_a_contact_request_is_filed_in_the_peers_chat(relay: Relay) -> None:
    alice, bob = _pair_of(relay)
    laptop = relay.device("alice-laptop", phrase=alice.phrase)
    alice.engine.learn_bundle(laptop.engine.own_bundle())
    alice.engine.pair(laptop.installation_id)
    relay.settle()
    alice.engine.send_contact_request(bob.identity, "hello from the phone")
    relay.settle()
    [copy] = [m for m in laptop.received() if m.text == "hello from the phone"]
    assert copy.chat == bob.identity


def test_marks_older_than_the_relays_retention_are_forgotten(relay: Relay, clock: Clock) -> None:
    alice, bob = _pair_of(relay)
    talk(relay, alice, bob, "remembered for a while")
    assert bob.engine.expire() == 0
    clock.advance(31 * 86_400 * SECOND)
    assert bob.engine.expire() > 0
