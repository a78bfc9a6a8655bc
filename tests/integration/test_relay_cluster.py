"""A 3-node relay cluster on 127.0.0.1 with an R3 stream: killing the stream leader mid-exchange loses and
duplicates nothing; publishers retry the same message id until acknowledged."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from pathlib import Path

import pytest

from engine.transport.errors import PublishTimeout, RelayUnavailable
from engine.transport.nats import NatsTransport
from engine.transport.port import Envelope, ReceivedEnvelope
from tests.integration.nats_fixtures import envelope, requires_nats, run, start_cluster

pytestmark = [requires_nats, pytest.mark.timeout(180)]

TOPIC = b"\xc1\x05\x7e\x01"
TOTAL = 300
KILL_AT = 100


async def publish_until_acked(
    t: NatsTransport, env: Envelope, deadline: float, errors: collections.Counter[str]
) -> int:
    """Resend the same envelope (same Nats-Msg-Id) until the relay acknowledges it; returns attempts."""
    attempts = 0
    while True:
        attempts += 1
        try:
            await t.publish(env)
            return attempts
        except (RelayUnavailable, PublishTimeout) as exc:
            errors[exc.code] += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def test_leader_killed_mid_exchange(tmp_path: Path) -> None:
    nodes = start_cluster(tmp_path)
    urls = tuple(n.url for n in nodes)
    report: dict[str, float] = {}

    async def main() -> None:
        settings = {"replicas": 3, "reconnect_wait_s": 0.2, "heartbeat_s": 0.5, "publish_timeout_s": 2.0}
        pub = NatsTransport(servers=urls, connect_timeout_s=20.0, **settings)  # type: ignore[arg-type]
        rcv = NatsTransport(servers=urls, connect_timeout_s=20.0, **settings)  # type: ignore[arg-type]
        await pub.connect()  # waits for the cluster's JetStream meta leader, creates the R3 stream
        await rcv.connect()
        assert pub._js is not None
        info = await pub._js.stream_info(pub.settings.stream)
        assert info.config.num_replicas == 3
        sub = await rcv.subscribe([TOPIC], after_sequence=0)

        received: list[ReceivedEnvelope] = []

        async def reader() -> None:
            async for e in sub:
                received.append(e)
                if len(received) >= TOTAL:
                    return

        reading = asyncio.create_task(reader())
        ack_times: list[float] = []
        retried = 0
        errors: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + 90
        for n in range(TOTAL):
            if n == KILL_AT:
                info = await pub._js.stream_info(pub.settings.stream)
                assert info.cluster is not None
                leader = next(node for node in nodes if node.config.server_name == info.cluster.leader)
                killed_at = time.monotonic()
                await asyncio.to_thread(leader.kill)
                report["killed_leader"] = float(nodes.index(leader))
            attempts = await publish_until_acked(pub, envelope(TOPIC, n, size=256), deadline, errors)
            retried += attempts - 1
            ack_times.append(time.monotonic())
            if n == KILL_AT:
                report["failover_stall_s"] = ack_times[-1] - killed_at
        gaps = [b - a for a, b in itertools.pairwise(ack_times)]
        report["max_ack_gap_s"] = max(gaps)
        report["retries"] = float(retried)
        print(f"\nresend causes: {dict(errors)}")

        await asyncio.wait_for(reading, 60)
        report["receive_done_after_kill_s"] = time.monotonic() - killed_at
        await sub.close()

        # exactly once, in order, for the live reader and in the store
        assert [e.msg_id for e in received] == [f"{n:064x}" for n in range(TOTAL)]
        assert [e.sequence for e in received] == list(range(1, TOTAL + 1))
        stored = [e async for e in rcv.history([TOPIC], 0)]
        assert [e.msg_id for e in stored] == [f"{n:064x}" for n in range(TOTAL)]
        assert await pub.stream_last_sequence() == TOTAL
        await pub.close()
        await rcv.close()

    try:
        run(main(), timeout=150)
    finally:
        for node in nodes:
            node.stop()
    print(
        f"\ncluster failover: leader n{int(report['killed_leader'])} killed at message {KILL_AT}; "
        f"publish stall {report['failover_stall_s']:.2f} s (max gap between acks {report['max_ack_gap_s']:.2f} s), "
        f"{int(report['retries'])} resends with the same Nats-Msg-Id; reader complete "
        f"{report['receive_done_after_kill_s']:.2f} s after the kill; {TOTAL} messages, none lost or repeated"
    )
