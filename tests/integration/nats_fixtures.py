"""Shared helpers for the NATS transport tests: real nats-server processes on 127.0.0.1 only.

Import what you need explicitly (this is not a conftest)::

    from tests.integration.nats_fixtures import nats_relay  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.keyring import KeyCustody, ScryptParams
from engine.messenger import ChatMessage, DeliveryChanged, DeliveryState, MessageReceived, Messenger
from engine.transport.port import Envelope
from engine.transport.relay import (
    CLUSTER_PORT_OFFSET,
    LEAF_PORT_OFFSET,
    LOOPBACK,
    RelayConfig,
    RelayProcess,
    find_nats_server,
    free_port,
)

R = TypeVar("R")


def have_nats_server() -> bool:
    try:
        find_nats_server()
    except Exception:
        return False
    return True


requires_nats = pytest.mark.skipif(not have_nats_server(), reason="nats-server binary not available")


def run(coro: Coroutine[Any, Any, R], timeout: float = 60.0) -> R:
    """Run a coroutine on a fresh loop with a hard time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def envelope(topic: bytes, n: int, size: int = 0) -> Envelope:
    payload = (b"msg-%d:" % n).ljust(size, b".")
    return Envelope(topic=topic, content_topic="/waku/1/test/rfc26", payload=payload, msg_id=f"{n:064x}")


def start_relay(workdir: Path, *, name: str = "t", port: int | None = None) -> RelayProcess:
    """A single JetStream server on 127.0.0.1 (free port unless given), store in ``workdir``."""
    config = RelayConfig(store_dir=workdir / "store", host=LOOPBACK, port=port or free_port(), server_name=name)
    relay = RelayProcess(config, workdir)
    relay.start()
    return relay


def restart(relay: RelayProcess) -> RelayProcess:
    """Start a new server with the same config (port, store, name) after ``relay`` died."""
    again = RelayProcess(relay.config, relay.workdir, binary=relay.binary)
    again.start()
    return again


@pytest.fixture
def nats_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A fresh single-node JetStream relay on 127.0.0.1, stopped at the end."""
    relay = start_relay(tmp_path / "relay")
    try:
        yield relay
    finally:
        relay.stop()


def start_cluster(workdir: Path, size: int = 3) -> list[RelayProcess]:
    """A ``size``-node JetStream cluster on 127.0.0.1 (routes between all nodes)."""
    client_ports = [free_port() for _ in range(size)]
    cluster_ports = [free_port() for _ in range(size)]
    routes = tuple(f"nats-route://{LOOPBACK}:{p}" for p in cluster_ports)
    nodes = []
    for i in range(size):
        config = RelayConfig(
            store_dir=workdir / f"n{i}" / "store",
            host=LOOPBACK,
            port=client_ports[i],
            server_name=f"n{i}",
            cluster_name="sottovoce-test",
            cluster_listen=f"{LOOPBACK}:{cluster_ports[i]}",
            routes=routes,
        )
        node = RelayProcess(config, workdir / f"n{i}")
        nodes.append(node)
    try:
        for node in nodes:
            node.start()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


# --- relay nodes run as ``sottovoce relay`` processes ------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def relay_ports(count: int = 1, host: str = LOOPBACK) -> list[int]:
    """``count`` consecutive client ports whose cluster (+2000) and leaf-node (+3200) ports are free too
    (the ports ``sottovoce relay`` uses)."""
    for _ in range(200):
        first = random.randrange(20000, 30000)
        ports = list(range(first, first + count))
        if all(_bindable(host, p + offset) for p in ports for offset in (0, CLUSTER_PORT_OFFSET, LEAF_PORT_OFFSET)):
            return ports
    raise RuntimeError("no free relay ports")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class CliRelay:
    """``sottovoce relay ARGS...`` as a child process; :attr:`first_line` is what it printed first."""

    def __init__(self, *args: str, data_dir: Path) -> None:
        env = {**os.environ, "SOTTOVOCE_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
        self.args = args
        self.process = subprocess.Popen([sys.executable, "-m", "app", "relay", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline().strip()
        self.second_line = self.process.stdout.readline().strip()
        if not self.first_line.startswith("relay: "):
            self.stop()
            raise AssertionError(f"sottovoce relay {' '.join(args)} printed {self.first_line!r}: "
                                 f"{self.process.stderr.read() if self.process.stderr else ''}")

    @property
    def url(self) -> str:
        return self.first_line.removeprefix("relay: ")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and return the exit code (killed after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.communicate()
        return self.process.returncode


# --- messengers ---------------------------------------------------------------------------------------------

PASSPHRASE = "correct horse"
CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})


async def create_messenger(tmp: Path, profile: str, url: str, *, display_name: str,
                           **kwargs: Any) -> Messenger:
    """A passphrase-protected profile in ``tmp/profile`` (fast scrypt, no keyring) on the relay ``url``."""
    return await Messenger.create(tmp / profile, display_name=display_name, device_name=profile,
                                  passphrase=PASSPHRASE, custody=CUSTODY, transport_url=url, **kwargs)


class Recorder:
    """Every chat message a Messenger reports (``MessageReceived``), read from a stream opened before start,
    and when (``time.monotonic()``) each message arrived and each of its own was first known to be on the relay:
    acknowledged (``SENT``), or ``DELIVERED`` when the peer's datasync ack overtook a publish acknowledgement
    that was lost (as when the stream leader dies after storing it and before answering)."""

    def __init__(self, messenger: Messenger) -> None:
        self.messenger = messenger
        self.received: list[ChatMessage] = []
        self.received_at: list[float] = []
        self.sent_at: dict[str, float] = {}
        self._stream = messenger.events()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._stream:
            if isinstance(event, MessageReceived):
                self.received.append(event.message)
                self.received_at.append(time.monotonic())
            elif isinstance(event, DeliveryChanged) and event.state in (DeliveryState.SENT, DeliveryState.DELIVERED):
                self.sent_at.setdefault(event.message_id, time.monotonic())

    async def close(self) -> None:
        self._stream.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        if loop.time() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - started
