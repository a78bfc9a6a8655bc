"""Hostile peers on the real stack: Alice and Bob are honest Messengers on a real nats-server; Mallory is a contact
of Alice whose envelopes are made by the engine's own pieces (her SessionEngine, never started: what it queues is
taken out of her outbox) and then published straight to the relay with nats-py, replayed, reordered, flooded,
with absurd ratchet message numbers, oversized, with forged bundles and with AMMs signed by someone else.

Every test checks that nothing crashes, that what Bob (the honest peer) sends is shown exactly once and in order,
and measures growth (the test process's RSS, Alice's database size, seen-envelope marks, skipped message keys)
against the bounds the engine has: ``MAX_SKIP`` / ``MAX_MESSAGE_KEYS_PER_SESSION`` in
``engine/protocol/ratchet.py`` and the relay consumer's flow control in ``engine/transport/nats.py``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

import engine.protocol.application.messages as app_messages
from engine.codes import parse_contact_code
from engine.crypto.kdf import kdf_ck
from engine.crypto.keys import KeyPair
from engine.messenger import Direction, Messenger
from engine.protocol.bundle import Bundle, SignedPreKey
from engine.protocol.ratchet import MAX_MESSAGE_KEYS_PER_SESSION, MAX_SKIP
from engine.protocol.state import MAX_KNOWN_INSTALLATIONS
from engine.protocol.waku import MAX_MESSAGE_SIZE, WakuMessage, build_message
from engine.store.sqlcipher_store import SqlCipherSessionStore
from engine.transport.nats import topic_subject
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import Recorder, create_messenger, nats_relay, requires_nats, run, until
from tests.reliability.harness import env_int, long_run

__all__ = ["nats_relay"]
pytestmark = [requires_nats, pytest.mark.timeout(1800 if long_run() else 120)]

Forged = list[tuple[str, bytes]]
"""(NATS subject, serialized WakuMessage) as they would leave Mallory."""


def rss_bytes() -> int:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def store_bytes(profile: Path) -> int:
    return sum(p.stat().st_size for p in profile.iterdir() if p.name.startswith("sottovoce.db"))


@dataclass
class World:
    tmp: Path
    alice: Messenger
    bob: Messenger
    mallory: Messenger
    on_alice: Recorder
    nc: Any

    @property
    def alice_id(self) -> bytes:
        return self.alice._engine.identity

    def forge(self, action: Callable[[], object]) -> Forged:
        """Run ``action`` on Mallory's engine and take what it queued out of her outbox."""
        store = self.mallory._store
        before = {item.envelope_hash for item in store.outbox()}
        action()
        new = [item for item in store.outbox() if item.envelope_hash not in before]
        for item in new:
            self.mallory._engine.published(item)
        return [(topic_subject(item.topic), item.waku_message) for item in new]

    def mallory_says(self, text: str) -> Forged:
        return self.forge(lambda: self.mallory._engine.send_text(self.alice_id, text))

    async def publish(self, envelopes: Forged) -> None:
        """Straight to the relay, without a Nats-Msg-Id (so JetStream does not drop a replay)."""
        for subject, payload in envelopes:
            await self.nc.publish(subject, payload)
        await self.nc.flush()

    def shown(self, sender: str) -> list[str]:
        return [m.text for m in self.on_alice.received if m.direction == Direction.IN and m.from_name == sender]

    def skipped_keys(self) -> int:
        return sum(len(s.ratchet.skipped) for s in self.alice._engine.core.state.sessions.values())

    def seen_marks(self) -> int:
        store = self.alice._store
        assert isinstance(store, SqlCipherSessionStore)
        row = store.database.query_one("SELECT count(*) FROM seen_envelopes")
        return int(row[0]) if row else 0

    async def bob_sends(self, texts: list[str]) -> None:
        for text in texts:
            await self.bob.send_text("alice", text)

    async def shown_once_in_order(self, sender: str, texts: list[str], timeout: float = 30) -> None:
        await until(lambda: len(self.shown(sender)) >= len(texts), timeout, f"{sender}'s messages on Alice")
        await asyncio.sleep(0.3)
        assert self.shown(sender) == texts, f"{sender}: not once each in order"


@asynccontextmanager
async def world(tmp: Path, url: str) -> AsyncIterator[World]:
    alice = await create_messenger(tmp, "alice", url, display_name="alice")
    bob = await create_messenger(tmp, "bob", url, display_name="bobby")
    mallory = await create_messenger(tmp, "mallory", url, display_name="mallory")
    for a, b, name in ((alice, bob, "bob"), (bob, alice, "alice"), (alice, mallory, "mallory"),
                       (mallory, alice, "alice")):
        a.add_contact(b.contact_code(), name)
    nc = await nats.connect(url)
    w = World(tmp, alice, bob, mallory, Recorder(alice), nc)
    try:
        await alice.start()
        await bob.start()
        await alice.sync(20)
        await bob.sync(20)
        yield w
    finally:
        await w.on_alice.close()
        await nc.close()
        for m in (alice, bob, mallory):
            await m.close()


def test_replayed_and_reordered_envelopes_are_shown_once(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            wire: Forged = []  # everything honest on the relay, captured to replay it

            async def capture(msg: Any) -> None:
                wire.append((msg.subject, msg.data))

            sub = await w.nc.subscribe("sottovoce.waku.>", cb=capture)
            first = w.mallory_says("m-first")  # X3DH: a session exists before the reordering
            await w.publish(first)
            await w.shown_once_in_order("mallory", ["m-first"])
            forged = [env for i in range(30) for env in w.mallory_says(f"m{i}")]
            shuffled = forged * 3
            random.Random(5).shuffle(shuffled)
            await w.publish(shuffled)
            await w.bob_sends([f"b{i}" for i in range(20)])
            await w.shown_once_in_order("bob", [f"b{i}" for i in range(20)])
            await until(lambda: len(w.shown("mallory")) >= 31, 30, "Mallory's reordered messages")
            await w.publish(wire * 2)  # every honest envelope seen so far, twice more
            await w.publish(first + forged)
            await asyncio.sleep(2.0)
            await w.alice.sync(20)
            mallory = collections.Counter(w.shown("mallory"))
            assert mallory == collections.Counter(["m-first", *(f"m{i}" for i in range(30))])
            assert w.shown("bob") == [f"b{i}" for i in range(20)]
            stored = w.alice.messages("mallory", limit=None)
            assert len(stored) == len({m.id for m in stored}) == 31
            await sub.unsubscribe()
            print(f"\nreplays: {len(shuffled)} forged + {2 * len(wire)} captured envelopes replayed, 30 reordered: "
                  f"each shown once; rejections {w.alice.rejections}")

    run(main(), 100)


def test_flood_of_junk_and_oversized_envelopes(tmp_path: Path, nats_relay: RelayProcess) -> None:
    junk = env_int("SOTTOVOCE_FLOOD", 50_000 if long_run() else 5_000)

    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            first = w.mallory_says("hello")
            await w.publish(first)
            await w.shown_once_in_order("mallory", ["hello"])
            subject = first[0][0]  # Alice's topic
            rng = random.Random(3)
            before = (rss_bytes(), store_bytes(tmp_path / "alice"), w.seen_marks(), sum(w.alice.rejections.values()))
            loop = asyncio.get_running_loop()
            started = loop.time()
            for i in range(junk):
                await w.nc.publish(subject, rng.randbytes(rng.randint(1, 2048)))
                if i % 1000 == 0:
                    await w.bob.send_text("alice", f"b{i // 1000}")
            # well-formed Waku messages on Alice's content topic whose payload opens for nobody
            content_topic = WakuMessage.from_bytes(first[0][1]).content_topic
            sealed = [build_message(rng.randbytes(rng.randint(64, 1024)), content_topic, time.time_ns()).to_bytes()
                      for _ in range(junk // 5)]
            await w.publish([(subject, data) for data in sealed])
            big = [(subject, rng.randbytes(MAX_MESSAGE_SIZE - 4096)) for _ in range(5)]
            await w.publish(big)
            with pytest.raises(nats.errors.MaxPayloadError):
                await w.nc.publish(subject, b"\0" * (2 * MAX_MESSAGE_SIZE))  # the relay's own limit
            await w.nc.flush()
            bob_texts = [f"b{k}" for k in range((junk - 1) // 1000 + 1)]
            await until(lambda: sum(w.alice.rejections.values()) - before[3] >= junk + len(sealed) + len(big), 300,
                        "Alice went through the flood")
            seconds = loop.time() - started
            await w.shown_once_in_order("bob", bob_texts)
            after = (rss_bytes(), store_bytes(tmp_path / "alice"), w.seen_marks())
            # an honest message after the flood still goes through at once
            await w.bob.send_text("alice", "after the flood")
            await w.shown_once_in_order("bob", [*bob_texts, "after the flood"], timeout=15)
            print(f"\nflood: {junk} junk envelopes (1-2048 random bytes), {len(sealed)} well-formed Waku messages "
                  f"that open for nobody, 5 of {MAX_MESSAGE_SIZE - 4096} bytes "
                  f"processed in {seconds:.1f} s ({(junk + len(sealed)) / seconds:.0f}/s), 2 MiB refused by the relay; "
                  f"RSS "
                  f"{(after[0] - before[0]) / 1e6:+.1f} MB, store {(after[1] - before[1]) / 1e3:+.0f} kB, seen marks "
                  f"{after[2] - before[2]:+d}; rejections {w.alice.rejections}")
            # unparseable bytes leave no mark; a well-formed envelope that opens for nobody is remembered by its
            # hash (so a replay costs nothing) until the relay's 30-day retention: one row each, no more
            assert after[2] - before[2] <= len(sealed) + 4 * len(bob_texts) + 4
            assert after[0] - before[0] < 64e6, "the flood grew memory"

    run(main(), 600 if long_run() else 110)


def test_absurd_message_numbers_are_bounded(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            await w.publish(w.mallory_says("hello"))
            await w.shown_once_in_order("mallory", ["hello"])
            def sessions() -> list[Any]:  # the live ones: the engine replaces them as it commits
                found = [s for s in w.mallory._engine.core.state.sessions.values() if s.peer_identity == w.alice_id]
                assert found
                return found

            def claim(by: int) -> None:
                """Move the header's message number only (the chain stays: MAX_SKIP must stop it before the MAC)."""
                for s in sessions():
                    s.ratchet.sent += by

            def skip(count: int) -> None:
                """Really skip ``count`` message keys of the sending chain (a valid message far ahead)."""
                for s in sessions():
                    for _ in range(count):
                        s.ratchet.sending_chain, _ = kdf_ck(s.ratchet.sending_chain)
                    s.ratchet.sent += count

            claim(10**6)  # one message claiming a million skipped keys
            await w.publish(w.mallory_says("far ahead"))
            await until(lambda: w.alice.rejections.get("too_many_skipped", 0) >= 1, 20, "rejected")
            claim(-(10**6))
            texts = []
            for i in range(8):  # then a staircase: each message skips just under MAX_SKIP keys
                skip(MAX_SKIP - 1)
                texts.append(f"step {i}")
                await w.publish(w.mallory_says(texts[-1]))
            await w.shown_once_in_order("mallory", ["hello", *texts])
            kept = w.skipped_keys()
            await w.bob_sends(["still here"])
            await w.shown_once_in_order("bob", ["still here"])
            print(f"\nmessage numbers: +10^6 rejected ({w.alice.rejections}); 8 x {MAX_SKIP - 1} skipped: "
                  f"{kept} skipped keys kept (bound {MAX_MESSAGE_KEYS_PER_SESSION} per session)")
            assert 0 < kept <= MAX_MESSAGE_KEYS_PER_SESSION * len(w.alice._engine.core.state.sessions)

    run(main(), 100)


def test_forged_bundles_authors_and_chats_change_nothing_for_honest_peers(tmp_path: Path,
                                                                    nats_relay: RelayProcess) -> None:
    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            await w.publish(w.mallory_says("hello"))
            await w.shown_once_in_order("mallory", ["hello"])
            protocol = w.mallory._engine.core.protocol
            state = w.alice._engine.core.state
            bob_id = w.bob._engine.identity
            bob_installations = {k for k in state.installations if k[0] == bob_id}
            genuine = Bundle.parse(parse_contact_code(w.bob.contact_code(), time.time_ns()).bundle or b"")
            fake = KeyPair.from_private(os.urandom(32))
            forged_for_bob = dataclasses.replace(Bundle.create(fake, {"evil": SignedPreKey(fake.public, 1)},
                                                               genuine.timestamp), identity=bob_id)
            envelopes: Forged = []
            for bundle in (genuine, forged_for_bob):  # Bob's real bundle, and one for Bob signed by someone else
                protocol.own_bundle = lambda *_, b=bundle: b  # type: ignore[method-assign]
                envelopes += w.mallory_says(f"with a bundle of {len(envelopes)}")
            del protocol.own_bundle
            # an AMM signed by another key (X) inside Mallory's envelope (ratchet and Waku signature by Mallory)
            x = KeyPair.from_private(os.urandom(32))
            real_sign = app_messages.sign
            app_messages.sign = lambda message, identity_private, author=None: real_sign(message, x.private, x.public)
            try:
                envelopes += w.mallory_says("signed by someone else")
            finally:
                app_messages.sign = real_sign
            # a chat message to Alice whose chat id names Bob's chat (status-go's "from" of a 1:1 message)
            real_key_id = app_messages.key_id
            app_messages.key_id = lambda public_key: real_key_id(bob_id)
            try:
                envelopes += w.mallory_says("in Bob's chat")
            finally:
                app_messages.key_id = real_key_id
            await w.publish(envelopes)
            await w.bob_sends(["b1", "b2"])
            await w.shown_once_in_order("bob", ["b1", "b2"])
            await asyncio.sleep(1.0)
            assert {k for k in state.installations if k[0] == bob_id} == bob_installations
            assert "signed by someone else" not in w.shown("mallory")
            assert [m.text for m in w.alice.messages("bob", limit=None)] == ["b1", "b2"]
            assert all(m.from_name in ("bob", "mallory") for m in w.on_alice.received)
            print(f"\nforged bundles and authors: Bob's installations unchanged, shown from Mallory "
                  f"{w.shown('mallory')}; rejections {w.alice.rejections}")
            assert w.alice.rejections.get("forged_author", 0) >= 1
            assert w.alice.rejections.get("misdirected", 0) >= 1

    run(main(), 100)


def test_fake_installations_in_bundles_are_bounded(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            await w.publish(w.mallory_says("hello"))
            await w.shown_once_in_order("mallory", ["hello"])
            protocol = w.mallory._engine.core.protocol
            mallory_keys = w.mallory._engine.account.identity
            mallory_id = w.mallory._engine.identity
            state = w.alice._engine.core.state
            size_before = store_bytes(tmp_path / "alice")
            for round_ in range(3):
                spk = KeyPair.from_private(os.urandom(32)).public
                genuine = protocol.own_bundle(w.mallory._engine.clock(), w.mallory._engine.entropy)
                prekeys = {**genuine.signed_prekeys, **{f"fake-{round_}-{i}": SignedPreKey(spk, 1) for i in range(300)}}
                bundle = Bundle.create(mallory_keys, prekeys, w.mallory._engine.clock())
                protocol.own_bundle = lambda *_, b=bundle: b  # type: ignore[method-assign]
                await w.publish(w.mallory_says(f"round {round_}"))
                del protocol.own_bundle
            await w.shown_once_in_order("mallory", ["hello", "round 0", "round 1", "round 2"])
            known = sum(1 for k in state.installations if k[0] == mallory_id)
            print(f"\nfake installations: Mallory announced 900, Alice keeps {known}; store "
                  f"{(store_bytes(tmp_path / 'alice') - size_before) / 1e3:+.0f} kB")
            assert known <= MAX_KNOWN_INSTALLATIONS

    run(main(), 100)


def test_flood_of_valid_messages_from_a_contact(tmp_path: Path, nats_relay: RelayProcess) -> None:
    """A contact that floods valid messages is over its receive budget (engine.sessions.fairness): an honest
    message published after the flood is shown before the flood is, every flood message is still stored and
    shown once and in Mallory's order, and the cost per message is measured."""
    count = env_int("SOTTOVOCE_VALID_FLOOD", 20_000 if long_run() else 1_500)

    async def main() -> None:
        async with world(tmp_path, nats_relay.url) as w:
            await w.publish(w.mallory_says("hello"))
            await w.shown_once_in_order("mallory", ["hello"])
            forged = [env for i in range(count) for env in w.mallory_says(f"flood {i}")]
            before = (rss_bytes(), store_bytes(tmp_path / "alice"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            await w.publish(forged)
            await w.bob_sends(["during the flood"])
            bob_sent = loop.time()
            await until(lambda: len(w.shown("mallory")) >= count + 1, 600, "the flood on Alice")
            seconds = loop.time() - started
            await w.shown_once_in_order("bob", ["during the flood"])
            bob_at = next(t for m, t in zip(w.on_alice.received, w.on_alice.received_at, strict=True)
                          if m.text == "during the flood")
            after = (rss_bytes(), store_bytes(tmp_path / "alice"))
            assert w.shown("mallory") == ["hello", *(f"flood {i}" for i in range(count))]
            texts = [m.text for m in w.on_alice.received]
            behind = len(texts) - 1 - texts.index("during the flood")  # flood messages shown after Bob's
            print(f"\nvalid flood: {count} messages from one contact stored and shown in {seconds:.1f} s "
                  f"({count / seconds:.0f}/s); RSS {(after[0] - before[0]) / 1e6:+.1f} MB, store "
                  f"{(after[1] - before[1]) / count:+.0f} bytes per message; Bob's message, published after "
                  f"the flood, was shown {bob_at - bob_sent:.1f} s later, before {behind} of the flood's "
                  f"{count} messages")
            assert behind > 0, "Bob's message waited behind the whole flood"

    run(main(), 1500 if long_run() else 110)
