"""What the desktop app adds to the Messenger facade: read markers and unread counts that survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import EventStream, MessageReceived, Messenger
from engine.transport.memory import MemoryNetwork

R = TypeVar("R")
CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


def run(coro: Coroutine[Any, Any, R], timeout: float = 30.0) -> R:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def make(tmp: Path, net: MemoryNetwork, name: str) -> Messenger:
    return await Messenger.create(tmp / name, display_name=name * 2, device_name=name, passphrase="pw",
                                  custody=CUSTODY, transport=net.transport(name))


async def received(stream: EventStream, n: int) -> None:
    got = 0
    while got < n:
        if isinstance(await stream.get(5.0), MessageReceived):
            got += 1


def test_unread_counts_follow_the_read_marker_and_survive_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        assert bob.unread_counts() == {} and bob.unread_count("alice") == 0
        stream = bob.events()
        await alice.start()
        await bob.start()
        for i in range(3):
            await alice.send_text("bob", f"m{i}")
        await received(stream, 3)
        await bob.send_text("alice", "my own message is never unread")
        assert bob.unread_count("alice") == 3
        assert bob.unread_counts() == {alice.identity.chat_key: 3}
        bob.mark_read("alice")
        assert bob.unread_counts() == {} and bob.unread_count(alice.identity.chat_key) == 0
        await alice.send_text("bob", "after the marker")
        await received(stream, 1)
        assert bob.unread_count("alice") == 1
        stream.close()
        await alice.close()
        await bob.close()

        again = await Messenger.open(tmp_path / "bobby", passphrase="pw", custody=CUSTODY,
                                     transport=net.transport("bobby2"))
        async with again:
            assert again.unread_counts() == {alice.identity.chat_key: 1}
            again.mark_read("alice")
            again.mark_read("alice")  # idempotent
            assert again.unread_counts() == {}

    run(main())


def test_unread_count_pages_past_the_first_page(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        stream = bob.events()
        await alice.start()
        await bob.start()
        await alice.send_text("bob", "read")
        await received(stream, 1)
        bob.mark_read("alice")
        for i in range(150):  # more than the first page of 64
            await alice.send_text("bob", f"unread {i}")
        await received(stream, 150)
        assert bob.unread_count("alice") == 150
        stream.close()
        await alice.close()
        await bob.close()

    run(main(), 60)


def test_mark_read_on_an_empty_chat_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        alice, bob = await make(tmp_path, net, "alice"), await make(tmp_path, net, "bobby")
        async with alice, bob:
            alice.add_contact(bob.contact_code(), "bob")
            alice.mark_read("bob")
            assert alice.unread_count("bob") == 0 and alice.unread_counts() == {}

    run(main())
