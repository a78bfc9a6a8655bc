"""One account on three installations over a real nats-server on 127.0.0.1: A1 creates it, A2 and A3 recover it
from the phrase, the three pair by QR (an existing installation reading a new one's code, a new one reading an
existing one's, and the two new ones), Bob adds Alice from her contact-code QR. Every Bob->Alice message reaches
all three installations exactly once; every message Alice sends from one installation shows on the other two as
a sent copy and on Bob exactly once; after the first exchange everything is forward secret."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest

from engine.messenger import ChatMessage, DeliveryState, Direction, Messenger
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import Recorder, create_messenger, nats_relay, requires_nats, run, until

pytestmark = [requires_nats, pytest.mark.timeout(120)]
__all__ = ["nats_relay"]  # the fixture, imported for pytest

ROUNDS = 20
SENT_STATES = (DeliveryState.SENT, DeliveryState.DELIVERED)


def paired_with(m: Messenger) -> set[str]:
    return {d.installation_id for d in m.devices() if not d.current and d.enabled}


def texts(messages: list[ChatMessage], direction: Direction) -> list[str]:
    return sorted(m.text for m in messages if m.direction == direction)


def test_three_installations_paired_by_qr_see_everything_once(tmp_path: Path, nats_relay: RelayProcess) -> None:
    report: dict[str, float] = {}

    async def main() -> None:
        url = nats_relay.url
        a1 = await create_messenger(tmp_path, "a1", url, display_name="alice")
        phrase = a1.recovery_phrase
        assert phrase is not None
        a2 = await create_messenger(tmp_path, "a2", url, display_name="alice", recovery_phrase=phrase)
        a3 = await create_messenger(tmp_path, "a3", url, display_name="alice", recovery_phrase=phrase)
        bob = await create_messenger(tmp_path, "bob", url, display_name="bobby")
        alices = [a1, a2, a3]
        everyone = [*alices, bob]
        alice_key, bob_key = a1.identity.chat_key, bob.identity.chat_key
        assert {a.identity.chat_key for a in alices} == {alice_key}
        ids = {a: a.identity.installation_id for a in alices}
        assert len(set(ids.values())) == 3
        recorders = {m: Recorder(m) for m in everyone}
        for m in everyone:
            await m.start()
        for m in everyone:
            await m.wait_synced(15)

        # pairing by QR: existing reads new, new reads existing, and the two new ones
        started = time.monotonic()
        a1.pair_device_from_image(a2.pairing_code_qr())
        a3.pair_device_from_image(a1.pairing_code_qr())
        a2.pair_device_from_image(a3.pairing_code_qr())
        for a in alices:
            others = {ids[o] for o in alices if o is not a}
            await until(lambda a=a, others=others: paired_with(a) == others, 20,  # type: ignore[misc]
                        f"{a.identity.device_name} paired with the two others")
        report["pairing_s"] = time.monotonic() - started

        # Bob adds Alice from the QR shown on A1; Alice's installations address Bob by chat key only
        contact = bob.add_contact_from_image(a1.contact_code_qr(), "alice")
        assert contact.chat_key == alice_key

        # the first exchange: Bob writes, each Alice installation answers
        first = await bob.send_text("alice", "hello alice")
        for a in alices:
            await until(lambda a=a: any(m.id == first.id for m in recorders[a].received), 20,  # type: ignore[misc]
                        f"Bob's first message on {a.identity.device_name}")
        replies = [await a.send_text(bob_key, f"hi from {a.identity.device_name}") for a in alices]
        await until(lambda: {r.id for r in replies} <= {m.id for m in recorders[bob].received}, 20,
                    "the three first replies on Bob")

        # the conversation: 20 each way, interleaved, Alice writing from A1, A2, A3 in turn
        started = time.monotonic()
        bob_sent: list[ChatMessage] = []
        alice_sent: dict[Messenger, list[ChatMessage]] = {a: [] for a in alices}
        for i in range(ROUNDS):
            bob_sent.append(await bob.send_text("alice", f"b{i}"))
            writer = alices[i % 3]
            alice_sent[writer].append(await writer.send_text(bob_key, f"a{i}"))
        all_alice = [*replies, *(m for a in alices for m in alice_sent[a])]
        want_on_bob = {m.id for m in all_alice}
        want_on_alice = {m.id for m in [first, *bob_sent]}
        await until(lambda: want_on_bob <= {m.id for m in recorders[bob].received}, 30, "Alice's messages on Bob")
        for a in alices:
            copies = {m.id for m in all_alice if m.installation_id != ids[a]}
            await until(lambda a=a, copies=copies: want_on_alice | copies  # type: ignore[misc]
                        <= {m.id for m in recorders[a].received}, 30,
                        f"Bob's messages and the sent copies on {a.identity.device_name}")
        report["conversation_s"] = time.monotonic() - started
        for m in everyone:
            await m.sync(15)

        # exactly once: the events and the stored conversation
        for a in alices:
            name = a.identity.device_name
            events = recorders[a].received
            counts = collections.Counter(m.id for m in events)
            assert max(counts.values()) == 1, f"{name} was shown a message twice: {counts.most_common(3)}"
            own = [r for r in all_alice if r.installation_id == ids[a]]
            siblings = [r for r in all_alice if r.installation_id != ids[a]]
            assert set(counts) == want_on_alice | {m.id for m in siblings}, name
            stored = a.messages(bob_key, limit=None)
            assert len({m.id for m in stored}) == len(stored) == 1 + ROUNDS + len(all_alice), name
            assert texts(stored, Direction.IN) == sorted(["hello alice", *(f"b{i}" for i in range(ROUNDS))]), name
            assert {m.id for m in stored if m.direction == Direction.OUT} == {m.id for m in own}, name
            assert {m.id for m in stored if m.direction == Direction.OUT_COPY} == {m.id for m in siblings}, name
            for msg in stored:
                assert msg.chat_key == bob_key
                if msg.direction == Direction.IN:
                    assert msg.from_key == bob_key and msg.to_key == alice_key
                else:
                    assert msg.from_key == alice_key and msg.to_key == bob_key
                if msg.direction == Direction.OUT:
                    assert msg.state in SENT_STATES, (name, msg.text, msg.state)
            by_id = {m.id: m for m in stored}
            for sent in siblings:  # a copy is the very message its sibling sent
                copy = by_id[sent.id]
                assert (copy.text, copy.installation_id) == (sent.text, sent.installation_id)

        bob_events = collections.Counter(m.id for m in recorders[bob].received)
        assert max(bob_events.values()) == 1, f"Bob was shown a message twice: {bob_events.most_common(3)}"
        assert set(bob_events) == want_on_bob
        stored = bob.messages("alice", limit=None)
        assert len({m.id for m in stored}) == len(stored) == 1 + ROUNDS + len(all_alice)
        by_id = {m.id: m for m in stored}
        for sent in all_alice:
            got = by_id[sent.id]
            assert (got.direction, got.text, got.installation_id) == (Direction.IN, sent.text, sent.installation_id)
        assert all(m.state in SENT_STATES for m in stored if m.direction == Direction.OUT)

        # forward secrecy after the first exchange, on every side
        late = {m.id for m in [*bob_sent, *(m for a in alices for m in alice_sent[a])]}
        for m in everyone:
            peer = bob_key if m is not bob else "alice"
            not_fs = [(x.text, x.direction) for x in m.messages(peer, limit=None) if x.id in late and
                      not x.forward_secret]
            assert not_fs == [], f"{m.identity.device_name}: not forward secret after the first exchange: {not_fs}"

        for r in recorders.values():
            await r.close()
        for m in everyone:
            await m.close()

    run(main(), timeout=110)
    print(f"\nthree installations: paired in {report['pairing_s']:.2f} s; {ROUNDS} messages each way delivered "
          f"everywhere in {report['conversation_s']:.2f} s")
