"""Shared helpers for the NATS transport tests: real nats-server processes on 127.0.0.1 only.

Import what you need explicitly (this is not a conftest)::

    from tests.integration.nats_fixtures import nats_relay  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.transport.port import Envelope
from engine.transport.relay import LOOPBACK, RelayConfig, RelayProcess, find_nats_server, free_port

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
