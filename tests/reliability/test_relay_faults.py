"""Relay faults on real nats-servers (127.0.0.1): the relay SIGKILLed and restarted under running installation
processes; the relay unreachable for a long while (the outbox grows, then drains in order, and
``Messenger.connection_state`` / ``ConnectionChanged`` and the CLI say so); a slow, throttled relay link that
also stalls longer than the publish timeout. Nothing is lost, nothing is shown twice, every sender's order holds.

The 3-node cluster losing its stream leader is ``tests/integration/test_messenger_cluster.py``.
Long versions: ``SOTTOVOCE_LONG=1`` (outage 150 s, 10 relay kills, 1000 messages over the slow link).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.messenger import ConnectionChanged, ConnectionState, DeliveryState, Direction, Messenger
from engine.simulation.simulation import EXPECTED_REJECTIONS
from engine.transport.relay import LOOPBACK, RelayProcess
from tests.integration.nats_fixtures import (
    PASSPHRASE,
    Recorder,
    create_messenger,
    nats_relay,
    requires_nats,
    restart,
    run,
    until,
)
from tests.reliability.harness import REPO, PeerProcess, complete, env_int, long_run, make_accounts, run_async, verify
from tests.reliability.slow_proxy import SlowProxy

__all__ = ["nats_relay"]
pytestmark = [requires_nats, pytest.mark.timeout(3600 if long_run() else 180)]


async def pair_of(tmp: Path, url: str) -> tuple[Messenger, Messenger]:
    """Alice and Bob, contacts of each other, on the relay ``url`` (not started)."""
    alice = await create_messenger(tmp, "alice", url, display_name="alice")
    bob = await create_messenger(tmp, "bob", url, display_name="bobby")
    alice.add_contact(bob.contact_code(), "bob")
    bob.add_contact(alice.contact_code(), "alice")
    return alice, bob


def assert_once_in_order(recorder: Recorder, sent: list[str], who: str) -> None:
    shown = [m.text for m in recorder.received if m.direction == Direction.IN]
    twice = [t for t, n in collections.Counter(shown).items() if n > 1]
    assert twice == [], f"{who} was shown messages twice: {twice[:5]}"
    assert shown == sent, f"{who}: not every message, or not in order"


def test_relay_killed_and_restarted_under_running_installations(tmp_path: Path, nats_relay: RelayProcess) -> None:
    messages = env_int("SOTTOVOCE_RELAY_MESSAGES", 1000 if long_run() else 200)
    kills = env_int("SOTTOVOCE_RELAY_KILLS", 10 if long_run() else 2)
    rng = random.Random(11)
    run_async(make_accounts(tmp_path, nats_relay.url), 90)
    peers = {name: PeerProcess(name, tmp_path, nats_relay.url, messages, seed=11, burst=6, pause=0.3)
             for name in ("a1", "a2", "bob")}
    relay = nats_relay
    states_seen: set[str] = set()
    downtimes = []
    try:
        for p in peers.values():
            p.start()
        for _ in range(kills):
            time.sleep(rng.uniform(1.0, 3.0))
            relay.kill()
            down = rng.uniform(1.0, 4.0)
            downtimes.append(round(down, 1))
            end = time.monotonic() + down
            while time.monotonic() < end:
                states_seen |= {s["connection"] for p in peers.values() if (s := p.status())}
                time.sleep(0.1)
            relay = restart(relay)
        deadline = time.monotonic() + (1800 if long_run() else 120)
        while not complete(peers, dict.fromkeys(peers, messages)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        codes = {name: p.stop() for name, p in peers.items()}
        if relay is not nats_relay:
            relay.stop()
    assert codes == dict.fromkeys(peers, 0), {n: p.stderr_text()[-2000:] for n, p in peers.items()}
    fig = run_async(verify(tmp_path, peers), 120)
    print(f"\nrelay SIGKILLed {kills} times (down {downtimes} s) under 3 installation processes: "
          f"{sum(fig.sent.values())} messages, lost {fig.lost}, stored twice {fig.duplicates_stored}, shown twice "
          f"{fig.duplicates_shown}, out of order {fig.out_of_order}, states reported while down {sorted(states_seen)}, "
          f"rejections {dict(fig.rejections)}")
    assert fig.problems == []
    assert fig.sent == dict.fromkeys(peers, messages)
    assert (fig.lost, fig.duplicates_stored, fig.duplicates_shown, fig.out_of_order) == (0, 0, 0, 0)
    assert {c for c in fig.rejections if c not in EXPECTED_REJECTIONS} == set()
    assert states_seen - {"CONNECTED"}, "no installation reported the relay as gone"


def test_relay_unreachable_for_a_long_while_then_the_outbox_drains_in_order(tmp_path: Path,
                                                                           nats_relay: RelayProcess) -> None:
    outage_s = float(env_int("SOTTOVOCE_OUTAGE_S", 150 if long_run() else 12))
    report: dict[str, object] = {}

    async def main() -> None:
        alice, bob = await pair_of(tmp_path, nats_relay.url)
        rec_a, rec_b = Recorder(alice), Recorder(bob)
        states: list[ConnectionState] = []
        stream = alice.events()

        async def watch() -> None:
            async for event in stream:
                if isinstance(event, ConnectionChanged):
                    states.append(event.state)

        watcher = asyncio.create_task(watch())
        await alice.start()
        await bob.start()
        await alice.sync(15)
        await bob.sync(15)
        nats_relay.kill()
        await until(lambda: alice.connection_state != ConnectionState.CONNECTED, 15, "alice notices")
        report["state_while_down"] = alice.connection_state.name
        sent = []
        loop = asyncio.get_running_loop()
        end = loop.time() + outage_s
        i = 0
        while loop.time() < end:  # a message every 0.1 s, all of them queued
            sent.append((await alice.send_text("bob", f"offline {i}")).id)
            i += 1
            await asyncio.sleep(0.1)
        queued = [m for m in alice.messages("bob", limit=None) if m.state == DeliveryState.QUEUED]
        report["queued"] = len(queued)
        assert len(queued) == len(sent)
        assert alice.connection_state != ConnectionState.CONNECTED
        relay = restart(nats_relay)
        try:
            started = loop.time()
            await until(lambda: len(rec_b.received) >= len(sent), 120, "the outbox drained to Bob")
            report["drain_s"] = loop.time() - started
            await alice.sync(30)
            await bob.sync(30)
            await asyncio.sleep(0.5)
            assert_once_in_order(rec_b, [f"offline {k}" for k in range(len(sent))], "bob")
            assert all(m.state != DeliveryState.QUEUED for m in alice.messages("bob", limit=None))
            assert alice.connection_state.name == "CONNECTED"
            report["states"] = [s.name for s in states]
        finally:
            stream.close()
            watcher.cancel()
            for r in (rec_a, rec_b):
                await r.close()
            await alice.close()
            await bob.close()
            relay.stop()

    run(main(), timeout=outage_s + 200)
    print(f"\nrelay unreachable {outage_s:g} s: {report['queued']} messages queued (state "
          f"{report['state_while_down']}), drained to Bob in {report['drain_s']:.2f} s, in order, once each; "
          f"connection events {report['states']}")


def test_cli_send_with_the_relay_down_is_one_line_and_the_next_send_works(tmp_path: Path,
                                                                         nats_relay: RelayProcess) -> None:
    env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "SOTTOVOCE_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", "--transport", nats_relay.url, *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    alice, bob = str(tmp_path / "alice"), str(tmp_path / "bob")
    assert cli("--profile", bob, "init", "--name", "bobby").returncode == 0
    assert cli("--profile", alice, "init", "--name", "alice").returncode == 0
    code = cli("--profile", bob, "code").stdout.strip()
    assert cli("--profile", alice, "contacts", "add", "--code", code, "--name", "bob").returncode == 0
    nats_relay.kill()
    down = cli("--profile", alice, "send", "bob", "while down", "--timeout", "3")
    assert down.returncode == 1 and down.stderr.splitlines() == [
        f"sottovoce: the relay at {nats_relay.url} did not answer within 3 s"], down.stderr
    print(f"\n  {down.stderr.strip()}")
    relay = restart(nats_relay)
    try:
        assert cli("--profile", alice, "send", "bob", "after").returncode == 0
        got = cli("--profile", bob, "listen", "--count", "1", "--timeout", "20", "--json")
        assert got.returncode == 0 and '"text": "after"' in got.stdout
    finally:
        relay.stop()


def test_slow_throttled_relay_that_stalls_loses_and_repeats_nothing(tmp_path: Path,
                                                                   nats_relay: RelayProcess) -> None:
    count = env_int("SOTTOVOCE_SLOW_MESSAGES", 1000 if long_run() else 120)
    report: dict[str, float] = {}

    async def main() -> None:
        proxy = SlowProxy(LOOPBACK, nats_relay.config.port, delay=0.15, rate=200_000)
        await proxy.start()
        alice, bob = await pair_of(tmp_path, proxy.url)
        rec_a, rec_b = Recorder(alice), Recorder(bob)
        try:
            await alice.start()
            await bob.start()
            await alice.sync(60)
            await bob.sync(60)
            loop = asyncio.get_running_loop()
            started = loop.time()
            stall = None
            for i in range(count):
                await alice.send_text("bob", f"a{i}")
                await bob.send_text("alice", f"b{i}")
                if i == count // 2:
                    stall = asyncio.create_task(proxy.stall(7.0))  # longer than the 5 s publish timeout
                await asyncio.sleep(0.02)
            await until(lambda: len(rec_b.received) >= count and len(rec_a.received) >= count, 240,
                        "everything over the slow link")
            report["seconds"] = loop.time() - started
            if stall is not None:
                await stall
            await alice.sync(60)
            await bob.sync(60)
            await asyncio.sleep(1.0)
            assert_once_in_order(rec_b, [f"a{i}" for i in range(count)], "bob")
            assert_once_in_order(rec_a, [f"b{i}" for i in range(count)], "alice")
            for m, peer in ((alice, "bob"), (bob, "alice")):
                stored = m.messages(peer, limit=None)
                assert len(stored) == len({x.id for x in stored}) == 2 * count
                assert all(x.state != DeliveryState.QUEUED for x in stored if x.direction == Direction.OUT)
            report["forwarded"] = proxy.forwarded
        finally:
            for r in (rec_a, rec_b):
                await r.close()
            await alice.close()
            await bob.close()
            await proxy.close()

    run(main(), timeout=400 if not long_run() else 3000)
    print(f"\nslow relay (+150 ms per chunk, 200 kB/s, one 7 s stall): {count} messages each way in "
          f"{report['seconds']:.1f} s, once each and in order; {report['forwarded'] / 1e6:.1f} MB through the proxy")
