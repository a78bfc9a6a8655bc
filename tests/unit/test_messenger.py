"""The Messenger facade over the in-memory transport: contacts, codes, sending, catch-up, outages, pairing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.codes import NotAContactCode, NotAPairingCode
from engine.contacts import InvalidContactName
from engine.identity import InvalidDisplayName, InvalidRecoveryPhrase
from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import (
    CannotAddSelf,
    ContactNameTaken,
    ContactNotFound,
    ContactRequestReceived,
    DeliveryChanged,
    DeliveryState,
    DevicePaired,
    Direction,
    Event,
    EventStream,
    MessageReceived,
    Messenger,
    NotStarted,
    SyncProgress,
    WrongAccount,
)
from engine.store.errors import ProfileExists
from engine.transport.memory import MemoryNetwork

R = TypeVar("R")
CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


def run(coro: Coroutine[Any, Any, R], timeout: float = 30.0) -> R:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def make(tmp: Path, net: MemoryNetwork, name: str, **kwargs: Any) -> Messenger:
    return await Messenger.create(tmp / name, display_name=kwargs.pop("display_name", name * 2),
                                  device_name=name, passphrase="pw", custody=CUSTODY,
                                  transport=net.transport(name), **kwargs)


async def reopen(tmp: Path, net: MemoryNetwork, name: str) -> Messenger:
    return await Messenger.open(tmp / name, passphrase="pw", custody=CUSTODY, transport=net.transport(name))


async def next_of(stream: EventStream, kind: type[Event], timeout: float = 5.0) -> Any:
    while True:
        event = await stream.get(timeout)
        if isinstance(event, kind):
            return event


async def messages(stream: EventStream, n: int, timeout: float = 5.0) -> list[MessageReceived]:
    return [await next_of(stream, MessageReceived, timeout) for _ in range(n)]


def test_identity_codes_and_contacts(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        assert alice.recovery_phrase is not None and len(alice.recovery_phrase.split()) == 12
        me = alice.identity
        assert me.chat_key.startswith("zQ3") and me.display_name == "alicealice"
        assert len(me.emoji_hash) == 14 and me.color_hash and me.alias.count(" ") == 2
        assert alice.contact_code_qr().startswith(b"\x89PNG")

        added = alice.add_contact(bob.contact_code(), "Bob")
        assert added.chat_key == bob.identity.chat_key and added.display_name == "bobbybobby"
        assert not added.verified
        assert alice.contact("bob") == added and alice.contact(bob.identity.chat_key) == added
        assert alice.verify_contact("BOB").verified
        assert alice.rename_contact("bob", "Robert").name == "Robert"
        assert [c.name for c in alice.contacts()] == ["Robert"]
        with pytest.raises(ContactNotFound):
            alice.contact("bob")
        with pytest.raises(CannotAddSelf):
            alice.add_contact(alice.contact_code(), "me")
        carol = await make(tmp_path, net, "carol")
        with pytest.raises(ContactNameTaken):
            alice.add_contact(carol.identity.chat_key, "robert")
        with pytest.raises(InvalidContactName):
            alice.add_contact(carol.identity.chat_key, "zQ3shfake")
        with pytest.raises(NotAContactCode):
            alice.add_contact_from_image(carol.pairing_code_qr(), "carol")
        from_qr = alice.add_contact_from_image(carol.contact_code_qr(), "Carol")
        assert from_qr.chat_key == carol.identity.chat_key
        for m in (alice, bob, carol):
            await m.close()
        again = await reopen(tmp_path, net, "alice")
        assert [c.name for c in again.contacts()] == ["Carol", "Robert"] and again.contact("robert").verified
        assert again.recovery_phrase is None and again.identity == me
        await again.close()

    run(main())


def test_create_refuses_bad_input_without_leaving_a_profile(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        with pytest.raises(InvalidDisplayName):
            await make(tmp_path, net, "bob", display_name="bob")
        with pytest.raises(InvalidRecoveryPhrase):
            await make(tmp_path, net, "carol", recovery_phrase="not a phrase")
        assert not (tmp_path / "bob").exists() and not (tmp_path / "carol").exists()
        alice = await make(tmp_path, net, "alice")
        await alice.close()
        with pytest.raises(ProfileExists):
            await make(tmp_path, net, "alice")
        with pytest.raises(NotStarted):
            again = await reopen(tmp_path, net, "alice")
            try:
                await again.wait_synced(1)
            finally:
                await again.close()

    run(main())


def test_offline_delivery_reply_and_delivery_states(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        alice.add_contact(bob.contact_code(), "bob")
        await bob.close()  # bob is offline
        alice_events = alice.events()
        await alice.start()
        sent = await alice.send_text("bob", "hello bob")
        assert sent.state == DeliveryState.QUEUED and sent.direction == Direction.OUT and sent.forward_secret
        changed = await next_of(alice_events, DeliveryChanged)
        assert changed == DeliveryChanged(sent.id, DeliveryState.SENT)

        bob = await reopen(tmp_path, net, "bobby")
        bob_events = bob.events()
        await bob.start()
        [got] = await messages(bob_events, 1)
        assert got.message.text == "hello bob" and got.message.id == sent.id and got.message.from_name is None
        assert got.message.from_key == alice.identity.chat_key and got.message.to_key == bob.identity.chat_key
        await bob.wait_synced(5)
        bob.add_contact(got.message.from_key, "alice")
        reply = await bob.send_text("alice", "hi alice", wait=True, timeout=5)
        assert reply.state == DeliveryState.SENT and reply.forward_secret
        [back] = await messages(alice_events, 1)
        assert back.message.text == "hi alice" and back.message.from_name == "bob" and back.message.forward_secret
        assert [m.text for m in alice.messages("bob")] == ["hello bob", "hi alice"]
        await alice.close()
        await bob.close()

    run(main())


def test_dh_header_first_message_heals_to_the_ratchet(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        bob_key = bob.identity.chat_key  # a chat key only: no bundle
        a_events, b_events = alice.events(), bob.events()
        await alice.start()
        await bob.start()
        await bob.wait_synced(5)
        first = await alice.send_text(bob_key, "first", wait=True, timeout=5)
        [got] = await messages(b_events, 1)
        assert not first.forward_secret and not got.message.forward_secret
        await bob.send_text(got.message.from_key, "answer", wait=True, timeout=5)
        [answer] = await messages(a_events, 1)
        assert answer.message.forward_secret
        await alice.send_text(bob_key, "second", wait=True, timeout=5)
        [second] = await messages(b_events, 1)
        assert second.message.text == "second" and second.message.forward_secret
        await alice.close()
        await bob.close()

    run(main())


def test_adding_a_contact_by_chat_key_tells_it_and_the_answer_brings_the_ratchet(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        b_events = bob.events()
        await alice.start()
        await bob.start()
        await bob.wait_synced(5)
        alice.add_contact(bob.identity.chat_key, "bob")  # a contact update on the DH path, with Alice's bundle
        request = await next_of(b_events, ContactRequestReceived)
        assert request.chat_key == alice.identity.chat_key and request.display_name == "alicealice"
        assert [r.chat_key for r in bob.contact_requests()] == [alice.identity.chat_key]
        await bob.sync(5)  # its datasync ack goes back by X3DH on Alice's bundle, carrying Bob's
        await alice.sync(5)
        sent = await alice.send_text("bob", "hello", wait=True, timeout=5)
        assert sent.forward_secret
        await alice.close()
        await bob.close()

    run(main())


def test_outage_queues_on_both_sides_and_drains_once(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        a_events, b_events = alice.events(), bob.events()
        await alice.start()
        await bob.start()
        await alice.sync(5)
        await bob.sync(5)
        net.set_online(False)
        for i in range(3):
            await alice.send_text("bob", f"a{i}")
            await bob.send_text("alice", f"b{i}")
        await asyncio.sleep(0.3)
        net.set_online(True)
        got_b = await messages(b_events, 3)
        got_a = await messages(a_events, 3)
        assert sorted(e.message.text for e in got_b) == ["a0", "a1", "a2"]
        assert sorted(e.message.text for e in got_a) == ["b0", "b1", "b2"]
        await alice.sync(5)
        await bob.sync(5)
        await asyncio.sleep(0.2)
        for stream in (a_events, b_events):
            while True:
                try:
                    event = await stream.get(0.05)
                except TimeoutError:
                    break
                assert not isinstance(event, MessageReceived), "a message was shown twice"
        await alice.close()
        await bob.close()

    run(main())


def test_queued_while_closed_is_sent_after_restart(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        alice.add_contact(bob.contact_code(), "bob")
        before = alice.queued  # the contact update that adding bob sent
        queued = await alice.send_text("bob", "written offline")  # never started: stays in the outbox
        assert alice.queued == before + 1
        await alice.close()
        alice = await reopen(tmp_path, net, "alice")
        assert alice.queued == before + 1  # kept across the restart
        await alice.start()
        await alice.wait_sent(queued.id, 5)
        await alice.sync(5)
        assert alice.queued == 0
        b_events = bob.events()
        await bob.start()
        [got] = await messages(b_events, 1)
        assert got.message.text == "written offline"
        progress = [e for e in [await next_of(b_events, SyncProgress)] if e.caught_up]
        assert progress
        await alice.close()
        await bob.close()

    run(main())


def test_pairing_copies_reach_the_other_installation(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice = await make(tmp_path, net, "alice")
        assert alice.recovery_phrase is not None
        laptop = await make(tmp_path, net, "laptop", display_name="alicealice", recovery_phrase=alice.recovery_phrase)
        bob = await make(tmp_path, net, "bobby")
        assert laptop.identity.chat_key == alice.identity.chat_key
        with pytest.raises(WrongAccount):
            alice.pair_device(bob.pairing_code())
        with pytest.raises(NotAPairingCode):
            alice.pair_device(bob.contact_code())
        l_events = laptop.events()
        paired = alice.pair_device_from_image(laptop.pairing_code_qr())
        assert paired.enabled and paired.name == "laptop" and not paired.current
        assert [d.current for d in alice.devices()] == [True, False]
        for m in (alice, laptop, bob):
            await m.start()
        assert (await next_of(l_events, DevicePaired)).installation_id == alice.identity.installation_id
        alice.add_contact(bob.contact_code(), "bob")
        b_events = bob.events()
        await alice.send_text("bob", "to bob, copy to laptop")
        [copy] = await messages(l_events, 1)
        assert copy.message.direction == Direction.OUT_COPY and copy.message.to_key == bob.identity.chat_key
        [got] = await messages(b_events, 1)
        assert got.message.id == copy.message.id
        alice.unpair_device(laptop.identity.installation_id)
        assert not alice.devices()[1].enabled
        for m in (alice, laptop, bob):
            await m.close()

    run(main())
