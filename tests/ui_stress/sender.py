"""Fills the relay for the stress test: a sender profile writes N messages to a receiver that is offline.

The receiver profile is made here too, and both add each other's contact code first (so the messages are
a contact's, with forward secrecy, as in a real long absence). The sender's messages go through the whole
engine (``send_text``: encrypt, Waku envelope, outbox item in one transaction) and its outbox pump publishes
them to the relay; this returns once the relay acknowledged every one of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from engine.messenger import Messenger
from tests.integration.nats_fixtures import create_messenger

RECEIVER = "receiver"
SENDER = "sender"


@dataclass(frozen=True)
class Prepared:
    receiver_dir: Path
    sender_key: str
    """The sender's chat key (``zQ3…``), as the receiver's contact."""
    texts: int
    send_s: float
    """Seconds from the first ``send_text`` to the relay's acknowledgement of the last message."""


def text_of(index: int) -> str:
    return f"stress message {index:05d}"


async def _wait_all_sent(sender: Messenger, ids: list[str], timeout: float) -> None:
    await asyncio.wait_for(asyncio.gather(*(sender.wait_sent(i) for i in ids)), timeout)


async def prepare(workdir: Path, url: str, count: int, *, chunk: int = 200, timeout: float = 300.0) -> Prepared:
    """Make both profiles, exchange contact codes, then send ``count`` messages while the receiver is offline."""
    receiver = await create_messenger(workdir, RECEIVER, url, display_name="Stress Receiver")
    sender = await create_messenger(workdir, SENDER, url, display_name="Stress Sender")
    try:
        receiver.add_contact(sender.contact_code(), "sender")
        sender.add_contact(receiver.contact_code(), "receiver")
        await receiver.start()
        await receiver.sync(timeout=60)  # its contact update and bundle are on the relay
        await receiver.close()
        await sender.start()
        await sender.sync(timeout=60)
        started = time.perf_counter()
        for first in range(0, count, chunk):
            ids = [(await sender.send_text("receiver", text_of(i))).id for i in range(first, min(count, first + chunk))]
            await _wait_all_sent(sender, ids, timeout)
        send_s = time.perf_counter() - started
        await sender.sync(timeout=60)
        return Prepared(workdir / RECEIVER, sender.identity.chat_key, count, send_s)
    finally:
        await sender.close()
        await receiver.close()
