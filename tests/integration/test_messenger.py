"""The Messenger over a real nats-server on 127.0.0.1: first contact, offline delivery, forward secrecy,
the DH-header path healing to the ratchet, a relay restart with queues on both sides, the embedded relay,
and the echo bot example."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import (
    ConnectionChanged,
    ConnectionState,
    DeliveryState,
    Direction,
    Event,
    EventStream,
    MessageReceived,
    Messenger,
)
from engine.transport.relay import EmbeddedRelay, RelayProcess
from tests.integration.nats_fixtures import nats_relay, requires_nats, restart, run

pytestmark = [requires_nats, pytest.mark.timeout(60)]
__all__ = ["nats_relay"]  # the fixture, imported for pytest

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse"
CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


async def create(tmp: Path, name: str, url: str | None, **kwargs: Any) -> Messenger:
    return await Messenger.create(tmp / name, display_name=name, device_name=name, passphrase=PASSPHRASE,
                                  custody=CUSTODY, transport_url=url, **kwargs)


async def reopen(tmp: Path, name: str, url: str | None, **kwargs: Any) -> Messenger:
    return await Messenger.open(tmp / name, passphrase=PASSPHRASE, custody=CUSTODY, transport_url=url, **kwargs)


async def next_of(stream: EventStream, kind: type[Event], timeout: float = 10.0) -> Any:
    while True:
        event = await stream.get(timeout)
        if isinstance(event, kind):
            return event


async def received(stream: EventStream, n: int = 1, timeout: float = 10.0) -> list[MessageReceived]:
    return [await next_of(stream, MessageReceived, timeout) for _ in range(n)]


async def quiet(stream: EventStream, seconds: float = 0.5) -> list[MessageReceived]:
    """Chat messages that still arrive within ``seconds`` (there should be none)."""
    extra = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            event = await stream.get(left)
        except TimeoutError:
            break
        if isinstance(event, MessageReceived):
            extra.append(event)
    return extra


def test_first_contact_by_qr_offline_delivery_and_forward_secret_reply(tmp_path: Path,
                                                                        nats_relay: RelayProcess) -> None:
    async def main() -> None:
        url = nats_relay.url
        alice, bob = await create(tmp_path, "alice", url), await create(tmp_path, "bobby", url)
        bob_qr = bob.contact_code_qr()
        bob_key = bob.identity.chat_key
        await bob.close()  # bob is not running while alice writes

        contact = alice.add_contact_from_image(bob_qr, "Bob")
        assert contact.chat_key == bob_key and contact.display_name == "bobby"
        a_events = alice.events()
        await alice.start()
        sent = await alice.send_text("bob", "hello bob", wait=True, timeout=10)
        assert sent.state == DeliveryState.SENT and sent.forward_secret and sent.to_key == bob_key

        bob = await reopen(tmp_path, "bobby", url)
        b_events = bob.events()
        await bob.start()
        [got] = await received(b_events)
        message = got.message
        assert (message.id, message.text, message.direction) == (sent.id, "hello bob", Direction.IN)
        assert message.from_key == alice.identity.chat_key and message.forward_secret
        await bob.wait_synced(10)

        bob.add_contact(message.from_key, "Alice")
        reply = await bob.send_text("alice", "hello alice", wait=True, timeout=10)
        [back] = await received(a_events)
        assert back.message.id == reply.id and back.message.from_name == "Bob"
        assert back.message.forward_secret and back.message.text == "hello alice"
        assert await quiet(a_events) == [] and await quiet(b_events, 0.1) == []
        assert [m.text for m in alice.messages("bob")] == ["hello bob", "hello alice"]
        await alice.close()
        await bob.close()

    run(main(), timeout=45)


def test_dh_header_first_message_by_chat_key_then_the_ratchet(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        url = nats_relay.url
        alice, bob = await create(tmp_path, "alice", url), await create(tmp_path, "bobby", url)
        a_events, b_events = alice.events(), bob.events()
        await alice.start()
        await bob.start()
        await bob.wait_synced(10)
        first = await alice.send_text(bob.identity.chat_key, "by chat key only", wait=True, timeout=10)
        assert not first.forward_secret
        [got] = await received(b_events)
        assert got.message.text == "by chat key only" and not got.message.forward_secret
        await bob.send_text(got.message.from_key, "answer", wait=True, timeout=10)
        [answer] = await received(a_events)
        assert answer.message.forward_secret
        second = await alice.send_text(bob.identity.chat_key, "now with the ratchet", wait=True, timeout=10)
        assert second.forward_secret
        [healed] = await received(b_events)
        assert healed.message.text == "now with the ratchet" and healed.message.forward_secret
        await alice.close()
        await bob.close()

    run(main(), timeout=45)


def test_relay_restart_with_messages_queued_on_both_sides(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        url = nats_relay.url
        alice, bob = await create(tmp_path, "alice", url), await create(tmp_path, "bobby", url)
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        b_events = bob.events()
        await alice.start()
        await bob.start()
        await alice.sync(10)
        await bob.sync(10)

        nats_relay.stop()
        await next_of(b_events, ConnectionChanged)
        queued = [await alice.send_text("bob", f"a{i}") for i in range(3)]
        queued += [await bob.send_text("alice", f"b{i}") for i in range(3)]
        assert {m.state for m in queued} == {DeliveryState.QUEUED}
        await asyncio.sleep(1.0)  # publishes fail meanwhile and back off
        await alice.close()  # alice quits with her queue: it is in her store

        relay = restart(nats_relay)
        try:
            while (await next_of(b_events, ConnectionChanged, 15)).state != ConnectionState.CONNECTED:
                pass
            for message in queued[3:]:
                await bob.wait_sent(message.id, 15)
            alice = await reopen(tmp_path, "alice", url)
            a_events = alice.events()
            await alice.start()
            for message in queued[:3]:
                await alice.wait_sent(message.id, 15)
            got_b = await received(b_events, 3, 15)
            got_a = await received(a_events, 3, 15)
            assert sorted(e.message.text for e in got_b) == ["a0", "a1", "a2"]
            assert sorted(e.message.text for e in got_a) == ["b0", "b1", "b2"]
            await alice.sync(10)
            await bob.sync(10)
            assert await quiet(a_events) == [] and await quiet(b_events, 0.1) == [], "a message was shown twice"
            assert len(alice.messages("bob")) == 6 and len(bob.messages("alice")) == 6
            await alice.close()
            await bob.close()
        finally:
            relay.stop()

    run(main(), timeout=55)


def test_embedded_relay_shared_by_two_profiles(tmp_path: Path) -> None:
    relay_dir = tmp_path / "data"

    async def main() -> None:
        alice = await create(tmp_path, "alice", None, relay_dir=relay_dir)
        bob = await create(tmp_path, "bobby", None, relay_dir=relay_dir)
        alice.add_contact(bob.contact_code(), "bob")
        b_events = bob.events()
        await alice.start()
        await bob.start()
        assert alice.transport_url is not None and alice.transport_url == bob.transport_url
        assert alice.transport_url.startswith("nats://127.0.0.1:")
        await alice.send_text("bob", "zero set-up", wait=True, timeout=10)
        [got] = await received(b_events)
        assert got.message.text == "zero set-up"
        await alice.close()
        await bob.close()

    try:
        run(main(), timeout=45)
    finally:
        EmbeddedRelay(relay_dir).stop()


def test_echo_bot_answers_with_the_text_reversed(tmp_path: Path, nats_relay: RelayProcess) -> None:
    async def main() -> None:
        url = nats_relay.url
        bot = await create(tmp_path, "echobot", url)
        bot_code = bot.contact_code()
        await bot.close()
        env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(REPO)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "examples" / "echo_bot.py"), str(tmp_path / "echobot"), url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(tmp_path))
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 15)
            assert b"listening" in line, line
            alice = await create(tmp_path, "alice", url)
            alice.add_contact(bot_code, "bot")
            events = alice.events()
            await alice.start()
            await alice.send_text("bot", "sottovoce", wait=True, timeout=10)
            [answer] = await received(events, 1, 15)
            assert answer.message.text == "ecovottos" and answer.message.from_name == "bot"
            await alice.close()
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        _, stderr = await process.communicate()
        assert b"Traceback" not in stderr or b"KeyboardInterrupt" in stderr, stderr.decode()

    run(main(), timeout=50)
