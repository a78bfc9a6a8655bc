"""The NATS JetStream transport against a real nats-server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.transport.errors import PublishRejected, RelayUnavailable, StreamConfigConflict
from engine.transport.nats import NatsTransport, subject_topic, topic_subject
from engine.transport.port import ConnectionState, ReceivedEnvelope, Transport, follow
from engine.transport.relay import (
    LOOPBACK,
    PINNED_SERVER_VERSION,
    EmbeddedRelay,
    RelayProcess,
    free_port,
    nats_server_version,
    probe,
)
from tests.integration.nats_fixtures import envelope, nats_relay, requires_nats, restart, run, start_relay

pytestmark = [requires_nats, pytest.mark.timeout(120)]
__all__ = ["nats_relay"]  # the fixture, imported for pytest

REPO = Path(__file__).resolve().parents[2]
T1 = b"\x0a\x0b\x0c\x01"
T2 = b"\x0a\x0b\x0c\x02"
T3 = b"\x0a\x0b\x0c\x03"


def transport(relay: RelayProcess, **overrides: object) -> NatsTransport:
    return NatsTransport(servers=(relay.url,), reconnect_wait_s=0.2, heartbeat_s=0.5, **overrides)  # type: ignore[arg-type]


async def take(it: object, n: int, timeout: float = 10.0) -> list[ReceivedEnvelope]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(it.__anext__(), timeout))  # type: ignore[attr-defined]
    return out


def test_version_pinned() -> None:
    assert nats_server_version() == PINNED_SERVER_VERSION


def test_subjects_carry_only_the_topic() -> None:
    assert topic_subject(T1) == "sottovoce.waku.0a0b0c01"
    assert subject_topic("sottovoce.waku.0a0b0c01") == T1


def test_publish_ack_dedup_and_history_since(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        t = transport(nats_relay)
        assert isinstance(t, Transport)
        await t.connect()
        assert t.state == ConnectionState.CONNECTED
        for n in range(3):
            await t.publish(envelope(T1, n))
        await t.publish(envelope(T1, 1))  # same msg id twice: stored once
        await t.publish(envelope(T2, 3))
        assert await t.stream_last_sequence() == 4
        everything = [e async for e in t.history([T1, T2], 0)]
        assert [e.sequence for e in everything] == [1, 2, 3, 4]
        assert [e.msg_id for e in everything] == [f"{n:064x}" for n in range(4)]
        assert everything[3].topic == T2 and everything[0].payload == b"msg-0:"

        await asyncio.sleep(0.01)
        since = time.time_ns()
        for n in range(10, 13):
            await t.publish(envelope(T1, n))
        hist = t.history([T1], since)
        later = [e async for e in hist]
        assert [e.payload for e in later] == [b"msg-10:", b"msg-11:", b"msg-12:"]
        assert hist.cursor == 7
        # nanosecond boundary: since == a message's relay time includes it, +1 ns excludes it
        t11 = later[1].relay_time_ns
        assert [e.payload async for e in t.history([T1], t11)] == [b"msg-11:", b"msg-12:"]
        assert [e.payload async for e in t.history([T1], t11 + 1)] == [b"msg-12:"]
        assert [e async for e in t.history([T3], 0)] == []
        assert [e async for e in t.history([T1], time.time_ns() + 10**9)] == []
        await t.close()
        assert t.state == ConnectionState.CLOSED

    run(main())


def test_subscribe_live(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        a, b = transport(nats_relay), transport(nats_relay)
        await a.connect()
        await b.connect()
        await a.publish(envelope(T1, 0))  # before the subscription: not delivered
        sub = await b.subscribe([T1, T2])
        await a.publish(envelope(T3, 1))  # other topic
        await a.publish(envelope(T1, 2))
        await a.publish(envelope(T2, 3))
        got = await take(sub, 2)
        assert [e.payload for e in got] == [b"msg-2:", b"msg-3:"]
        assert sub.last_sequence == got[-1].sequence
        await sub.close()
        await a.close()
        await b.close()

    run(main())


def test_take_ready_hands_out_what_already_arrived_in_order(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        a, b = transport(nats_relay), transport(nats_relay)
        await a.connect()
        await b.connect()
        sub = await b.subscribe([T1])
        assert sub.take_ready(10) == []
        for n in range(20):
            await a.publish(envelope(T1, n))
        got = await take(sub, 1)
        for _ in range(200):  # until the other 19 are buffered here
            await asyncio.sleep(0.01)
            got += sub.take_ready(50)
            if len(got) == 20:
                break
        assert [e.payload for e in got] == [b"msg-%d:" % n for n in range(20)]
        assert sub.last_sequence == got[-1].sequence
        await sub.close()

        history = b.history([T1], 0)
        assert history.take_ready(5) == []  # not started
        read = [await asyncio.wait_for(history.__anext__(), 10)]
        while len(read) < 6:
            await asyncio.sleep(0.01)
            read += history.take_ready(6 - len(read))
        read += [e async for e in history]  # __anext__ and take_ready share one queue: nothing twice
        assert [e.payload for e in read] == [b"msg-%d:" % n for n in range(20)]
        await a.close()
        await b.close()

    run(main())


def test_catch_up_then_live_loses_and_repeats_nothing(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        a, b = transport(nats_relay), transport(nats_relay)
        await a.connect()
        await b.connect()
        for n in range(300):
            await a.publish(envelope(T1 if n % 3 else T2, n))

        async def more() -> None:
            for n in range(300, 400):
                await a.publish(envelope(T1, n))
                await asyncio.sleep(0)

        hist = b.history([T1, T2], 0)
        seen: list[ReceivedEnvelope] = []
        writer: asyncio.Task[None] | None = None
        async for e in hist:
            seen.append(e)
            if writer is None:
                writer = asyncio.create_task(more())  # messages keep arriving during catch-up
                await asyncio.sleep(0.05)
        assert writer is not None
        cursor = hist.cursor
        assert cursor >= 300 and [e.sequence for e in seen] == list(range(1, cursor + 1))
        sub = await b.subscribe([T1, T2], after_sequence=cursor)
        await writer
        seen += await take(sub, 400 - cursor)
        assert [e.sequence for e in seen] == list(range(1, 401))
        assert sorted(e.msg_id for e in seen) == sorted(f"{n:064x}" for n in range(400))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(sub.__anext__(), 0.5)
        await sub.close()
        await a.close()
        await b.close()

    run(main())


def test_follow_and_early_close(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        t = transport(nats_relay)
        await t.connect()
        for n in range(5):
            await t.publish(envelope(T1, n))
        hist = t.history([T1], 0)
        assert (await hist.__anext__()).payload == b"msg-0:"
        await hist.aclose()  # stop early: the relay-side consumer goes away
        stream = follow(t, [T1], 0)
        got = [e.payload for e in await take(stream, 5)]
        await t.publish(envelope(T1, 5))
        got += [e.payload for e in await take(stream, 1)]
        await stream.aclose()
        assert got == [b"msg-%d:" % n for n in range(6)]
        assert t._js is not None
        for _ in range(50):  # consumer deletions are asynchronous
            if (await t._js.stream_info(t.settings.stream)).state.consumer_count == 0:
                break
            await asyncio.sleep(0.05)
        assert (await t._js.stream_info(t.settings.stream)).state.consumer_count == 0
        await t.close()

    run(main())


def test_relay_restart(tmp_path: Path) -> None:
    relay = start_relay(tmp_path / "relay")
    holder = [relay]

    async def main() -> None:
        a, b = transport(relay), transport(relay)
        states: list[ConnectionState] = []
        a.add_state_listener(states.append)
        await a.connect()
        await b.connect()
        sub = await b.subscribe([T1])
        await a.publish(envelope(T1, 1))
        assert (await take(sub, 1))[0].payload == b"msg-1:"

        relay.kill()
        for _ in range(100):
            if a.state != ConnectionState.CONNECTED:
                break
            await asyncio.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(RelayUnavailable):
            await a.publish(envelope(T1, 2))
        assert time.monotonic() - started < 0.5  # fails fast while down
        assert ConnectionState.RECONNECTING in states

        holder[0] = await asyncio.to_thread(restart, relay)
        deadline = time.monotonic() + 15
        while True:
            try:
                await a.publish(envelope(T1, 2))
                break
            except RelayUnavailable:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert states[-1] == ConnectionState.CONNECTED
        await a.publish(envelope(T1, 3))
        got = await take(sub, 2, timeout=15)  # the subscription resumes, no gap, no repeat
        assert [e.payload for e in got] == [b"msg-2:", b"msg-3:"]
        assert [e.sequence for e in got] == [2, 3]
        await sub.close()
        await a.close()
        await b.close()

    try:
        run(main(), timeout=60)
    finally:
        holder[0].stop()
        relay.stop()


def test_connect_to_nothing_fails_fast() -> None:
    async def main() -> None:
        t = NatsTransport(servers=(f"nats://{LOOPBACK}:{free_port()}",), connect_timeout_s=1.5)
        started = time.monotonic()
        with pytest.raises(RelayUnavailable):
            await t.connect()
        assert time.monotonic() - started < 3
        assert t.state == ConnectionState.DISCONNECTED

    run(main())


def test_existing_stream_is_left_alone_or_refused(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        t = transport(nats_relay, max_age_s=3600.0)
        await t.connect()  # creates the stream
        await t.close()
        t2 = transport(nats_relay)  # different max age: compatible, left alone
        await t2.connect()
        await t2.close()
        t3 = transport(nats_relay, subject_prefix="other.prefix")
        with pytest.raises(StreamConfigConflict):
            await t3.connect()
        assert t3.state == ConnectionState.DISCONNECTED

    run(main())


def test_oversized_message_is_rejected(nats_relay: RelayProcess) -> None:
    async def main() -> None:
        t = transport(nats_relay)
        await t.connect()
        with pytest.raises((PublishRejected, RelayUnavailable)):
            await t.publish(envelope(T1, 1, size=2 * 1024 * 1024))
        await t.close()

    run(main())


def test_publish_ack_latency(nats_relay: RelayProcess, capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> tuple[float, float]:
        t = transport(nats_relay)
        await t.connect()
        samples = []
        for n in range(1000):
            env = envelope(T1, n, size=1024)
            started = time.perf_counter()
            await t.publish(env)
            samples.append(time.perf_counter() - started)
        await t.close()
        samples.sort()
        return samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.99)] * 1000

    p50, p99 = run(main())
    with capsys.disabled():
        print(f"\npublish-ack latency, 1 KB on loopback, n=1000: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    assert p99 < 100


# --- the embedded relay ------------------------------------------------------------------------------------


def test_embedded_relay_shared_by_two_profiles(tmp_path: Path) -> None:
    data = tmp_path / "userdata"
    first, second = EmbeddedRelay(data), EmbeddedRelay(data)
    try:
        url1 = first.ensure()
        url2 = second.ensure()
        assert url1 == url2 and url1.startswith(f"nats://{LOOPBACK}:")
        assert first.started_here and not second.started_here
        assert first.version == PINNED_SERVER_VERSION

        async def exchange() -> None:
            a = NatsTransport(servers=(url1,))
            b = NatsTransport(servers=(url2,))
            await a.connect()
            await b.connect()
            sub = await b.subscribe([T1])
            await a.publish(envelope(T1, 7))
            assert (await take(sub, 1))[0].payload == b"msg-7:"
            await a.close()
            await b.close()

        run(exchange())

        # a dead server (stale port file) is replaced, on the same port
        record_pid = int(json.loads(first.port_file.read_text())["pid"])
        os.kill(record_pid, signal.SIGKILL)
        os.waitpid(record_pid, 0)  # our child (first started it): reap it
        deadline = time.monotonic() + 10
        port = int(url1.rsplit(":", 1)[1])
        while probe(LOOPBACK, port, 0.2) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        third = EmbeddedRelay(data)
        assert third.running_url() is None
        url3 = third.ensure()
        assert third.started_here and url3 == url1
        assert second.running_url() == url3
    finally:
        first.stop()
        assert EmbeddedRelay(data).running_url() is None


def test_embedded_relay_two_processes_start_one_server(tmp_path: Path) -> None:
    data = tmp_path / "userdata"
    code = "import sys; from engine.transport.relay import EmbeddedRelay; print(EmbeddedRelay(sys.argv[1]).ensure())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, text=True, cwd=REPO)
        for _ in range(2)
    ]
    try:
        urls = {p.communicate(timeout=30)[0].strip() for p in procs}
        assert len(urls) == 1 and next(iter(urls)).startswith(f"nats://{LOOPBACK}:")
    finally:
        EmbeddedRelay(data).stop()


def test_run_relay_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.transport.relay",
            "--listen",
            f"{LOOPBACK}:{port}",
            "--store",
            str(tmp_path / "store"),
            "--name",
            "node-under-test",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"relay: nats://{LOOPBACK}:{port}"
        info = probe(LOOPBACK, port)
        assert info is not None and info["server_name"] == "node-under-test" and info["jetstream"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert probe(LOOPBACK, port, 0.3) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
