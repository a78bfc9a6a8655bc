"""One Sottovoce installation as its own process, driven by the reliability harness.

    python -m tests.reliability.peer PROFILE --relay URL --peer NAME --name LABEL --messages N --log FILE
        [--status FILE] [--seed S] [--burst B] [--pause SECONDS]

Opens the profile (passphrase from ``SOTTOVOCE_PASSPHRASE``), starts the Messenger on the relay and sends
``LABEL#k`` to the contact ``NAME`` until ``N`` messages to it are committed (``k`` continues from what the store
already holds, so a restarted process resumes where the killed one stopped), in seeded bursts. It appends to
``FILE`` one line per fact, written (unbuffered) before the next step::

    start PID                   the process opened its profile
    sending TEXT                about to call send_text
    committed ID TEXT           send_text returned: the message is committed as sent (queued)
    acked ID                    the relay acknowledged it (DeliveryChanged SENT)
    recv ID DIRECTION TEXT      a MessageReceived event (shown to the user)
    rejections JSON             Messenger.rejections whenever it changed
    done                        all N sent

and rewrites ``--status`` (atomically, every 0.2 s) with counts read from its store. SIGTERM closes it cleanly.

``SOTTOVOCE_TEST_CRASH=commit:K`` makes the process SIGKILL itself inside its K-th store transaction, after
the writes and before ``COMMIT``; ``publish:K`` right after the relay acknowledged its K-th publish and before
the engine records it. The hook lives here, in the test driver: the engine never reads that variable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

CRASH_ENV = "SOTTOVOCE_TEST_CRASH"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_crash_point(spec: str) -> None:
    """Patch the store or the transport of this process so that it kills itself at one exact point."""
    kind, _, count = spec.partition(":")
    remaining = int(count)
    if kind == "commit":
        from engine.store.database import Database

        original = Database.transaction

        @contextlib.contextmanager
        def transaction(self: Database) -> Iterator[Any]:
            nonlocal remaining
            with original(self) as tx:
                yield tx
                remaining -= 1
                if remaining == 0:
                    _die()  # the writes are done, COMMIT has not run

        Database.transaction = transaction  # type: ignore[method-assign]
    elif kind == "publish":
        from engine.transport.nats import NatsTransport

        publish = NatsTransport.publish

        async def publish_then_die(self: NatsTransport, envelope: Any) -> None:
            nonlocal remaining
            await publish(self, envelope)
            remaining -= 1
            if remaining == 0:
                _die()  # the relay has it, the outbox still holds it

        NatsTransport.publish = publish_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown crash point {spec!r}")


class Log:
    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", buffering=1, encoding="utf-8")

    def note(self, *parts: str) -> None:
        self._file.write(" ".join(parts) + "\n")  # line-buffered: in the kernel before the next step


async def run(args: argparse.Namespace) -> int:
    from engine.messenger import DeliveryChanged, DeliveryState, Direction, MessageReceived, Messenger

    log = Log(Path(args.log))
    rng = random.Random(f"{args.seed}/{os.getpid()}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    messenger = await Messenger.open(args.profile, transport_url=args.relay)
    log.note("start", str(os.getpid()))
    last_rejections: dict[str, int] = {}

    def status() -> None:
        nonlocal last_rejections
        stored = [m for m in messenger.messages(args.peer, limit=None) if "#" in m.text]  # the harness's texts
        counts = {d.name: 0 for d in Direction}
        for m in stored:
            counts[m.direction.name] += 1
        queued = sum(1 for m in stored if m.direction == Direction.OUT and m.state == DeliveryState.QUEUED)
        rejections = messenger.rejections
        if rejections != last_rejections:
            log.note("rejections", json.dumps(rejections, sort_keys=True))
            last_rejections = rejections
        if args.status:
            tmp = Path(args.status + ".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "counts": counts, "queued": queued,
                                       "connection": messenger.connection_state.name, "rejections": rejections}))
            tmp.replace(args.status)

    async with messenger, messenger.events() as events:
        async def read() -> None:
            async for event in events:
                if isinstance(event, MessageReceived):
                    m = event.message
                    log.note("recv", m.id, m.direction.name, m.text)
                elif isinstance(event, DeliveryChanged) and event.state == DeliveryState.SENT:
                    log.note("acked", event.message_id)

        async def report() -> None:
            while True:
                status()
                await asyncio.sleep(0.2)

        reader = asyncio.create_task(read())
        reporter = asyncio.create_task(report())
        await messenger.start()
        sent = sum(1 for m in messenger.messages(args.peer, limit=None)
                   if m.direction == Direction.OUT and m.text.startswith(f"{args.name}#"))
        while sent < args.messages and not stop.is_set():
            for _ in range(rng.randint(1, args.burst)):
                if sent >= args.messages:
                    break
                text = f"{args.name}#{sent}"
                log.note("sending", text)
                message = await messenger.send_text(args.peer, text)
                log.note("committed", message.id, text)
                sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0, args.pause))
        if sent >= args.messages:
            log.note("done")
        await stop.wait()
        reporter.cancel()
        status()
        reader.cancel()
    log.note("stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--relay", required=True)
    parser.add_argument("--peer", required=True, help="the contact to write to")
    parser.add_argument("--name", required=True, help="label of the texts sent")
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--status")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.3)
    args = parser.parse_args()
    crash = os.environ.get(CRASH_ENV)
    if crash:
        install_crash_point(crash)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
