"""``sottovoce bench engine --two-processes``: the one-way scenario with Bob's profile in a process of his own.

:mod:`engine.bench.engine` runs Alice and Bob in one interpreter, so their engines take turns on one core: the
sender's and the receiver's work add up in every message's time. Two users' apps never share an interpreter;
here Bob's :class:`~engine.messenger.Messenger` runs in a child process (``spawn``) on the same profile and
relay, after the main rounds, and reports each ``MessageReceived`` with the time it saw it
(``time.perf_counter``, the system-wide monotonic clock). Alice sends exactly as in the one-way scenario. This
is an extra figure beside the issue's; its floors are not re-measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from ..messenger import MessageReceived, Messenger
from ..store.sqlcipher_store import SqlCipherSessionStore
from ..transport.nats import NatsSettings, NatsTransport
from .engine import _CUSTODY, PASSPHRASE, Timing, _Arrivals, _best, send_one_way
from .store import _text

_READY = ""
"""Sent by the child, instead of a message id, once Bob is caught up and listening."""
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0


def _open(profile: Path, url: str, name: str) -> Messenger:
    store = SqlCipherSessionStore.open_profile(profile, PASSPHRASE, custody=_CUSTODY)
    return Messenger(store, transport=NatsTransport(NatsSettings(servers=(url,), client_name=f"bench-{name}")))


def _receiver(profile: str, url: str, arrivals: Connection, stop: Connection) -> None:
    """The child process: Bob on the relay until ``stop`` is written to or closed."""
    asyncio.run(_receive(Path(profile), url, arrivals, stop))


async def _receive(profile: Path, url: str, arrivals: Connection, stop: Connection) -> None:
    import time

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def wait_for_stop() -> None:
        with contextlib.suppress(EOFError):
            stop.recv()
        loop.call_soon_threadsafe(stopping.set)

    threading.Thread(target=wait_for_stop, name="bench-stop", daemon=True).start()
    bob = _open(profile, url, "bob")

    async def forward() -> None:
        async with bob.events() as events:
            async for event in events:
                if isinstance(event, MessageReceived):
                    arrivals.send((event.message.id, time.perf_counter()))

    task = asyncio.create_task(forward())
    try:
        await bob.start()
        await bob.sync(timeout=30)
        arrivals.send((_READY, 0.0))
        await stopping.wait()
    finally:
        task.cancel()
        await bob.close()
        await asyncio.gather(task, return_exceptions=True)
        arrivals.close()


async def one_way_two_processes(directory: Path, url: str, messages: int, repeat: int,
                                progress: Callable[[str], None]) -> Timing:
    """Best of ``repeat`` one-way rounds of ``messages`` from Alice (here) to Bob (a child process).

    ``directory`` holds the profiles ``alice`` and ``bob`` that :func:`engine.bench.engine.run` made and closed.
    """
    import random

    context = multiprocessing.get_context("spawn")
    arrivals_in, arrivals_out = context.Pipe(duplex=False)
    stop_in, stop_out = context.Pipe(duplex=False)
    child = context.Process(target=_receiver, name="sottovoce-bench-bob", daemon=True,
                            args=(str(directory / "bob"), url, arrivals_out, stop_in))
    child.start()
    arrivals_out.close()
    stop_in.close()
    loop = asyncio.get_running_loop()
    arrivals = _Arrivals()
    ready: asyncio.Future[None] = loop.create_future()

    def became_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    def ended() -> None:
        if not ready.done():
            ready.set_exception(RuntimeError("the receiving process ended before it was ready"))

    def read_arrivals() -> None:
        while True:
            try:
                message_id, at = arrivals_in.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(ended)
                return
            if message_id == _READY:
                loop.call_soon_threadsafe(became_ready)
            else:
                loop.call_soon_threadsafe(arrivals.arrived, message_id, at)

    reader = threading.Thread(target=read_arrivals, name="bench-arrivals", daemon=True)
    reader.start()
    alice = _open(directory / "alice", url, "alice")
    rng = random.Random("sottovoce-bench-engine-two-processes")
    try:
        await alice.start()
        await alice.sync(timeout=30)
        await asyncio.wait_for(ready, _START_TIMEOUT_S)
        await send_one_way(alice, "bob", arrivals, [_text(rng) for _ in range(min(messages, 100))])  # warm-up
        rounds = []
        for round_ in range(repeat):
            progress(f"round {round_ + 1}/{repeat}: one way, two processes")
            rounds.append(await send_one_way(alice, "bob", arrivals, [_text(rng) for _ in range(messages)]))
        return _best(rounds)
    finally:
        await alice.close()
        stop_out.close()
        await loop.run_in_executor(None, child.join, _STOP_TIMEOUT_S)
        if child.is_alive():
            child.terminate()
            await loop.run_in_executor(None, child.join, _STOP_TIMEOUT_S)
        await loop.run_in_executor(None, reader.join, _STOP_TIMEOUT_S)
        arrivals_in.close()
