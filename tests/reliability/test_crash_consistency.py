"""Crash consistency on the real stack: three installations (Alice on a1 and a2, paired; Bob) as separate processes
on a real nats-server and real SQLCipher stores, sending to each other in bursts while they are SIGKILLed at seeded
random moments: at a random time, right after a process logged "sending" (inside send_text), inside a store
transaction after its writes and before COMMIT, and right after the relay acknowledged a publish but before the
outbox recorded it. Each is restarted at once. Afterwards every message committed as sent is stored exactly once
by the peer and, as a sent copy, by the sender's sibling; nothing committed or acknowledged is lost; no message
was shown twice across all lifetimes; no envelope was rejected (no session ever needed healing); every database
passes ``PRAGMA integrity_check``. Rejections are counted over every lifetime: only those the simulation expects
(``not_paired_device``: a sibling's message to Bob seen on the shared topic) may occur; any other
(``session_not_found``, ``decryption_failed``...) would mean a session needed healing.

CI: 3 x 350 messages, 12 kills. Long: ``SOTTOVOCE_LONG=1`` (defaults 3 x 3000 messages, 150 kills), or set
``SOTTOVOCE_CRASH_MESSAGES``, ``SOTTOVOCE_CRASH_KILLS`` and ``SOTTOVOCE_CRASH_SEED``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from engine.simulation.simulation import EXPECTED_REJECTIONS
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import nats_relay, requires_nats
from tests.reliability.harness import PeerProcess, complete, env_int, long_run, make_accounts, run_async, verify

__all__ = ["nats_relay"]
pytestmark = [requires_nats, pytest.mark.timeout(3 * 3600 if long_run() else 240)]

MODES = ("random", "sending", "commit", "publish")


def test_kill_9_at_random_moments_loses_and_repeats_nothing(tmp_path: Path, nats_relay: RelayProcess) -> None:
    messages = env_int("SOTTOVOCE_CRASH_MESSAGES", 3000 if long_run() else 350)
    kills = env_int("SOTTOVOCE_CRASH_KILLS", 150 if long_run() else 12)
    seed = env_int("SOTTOVOCE_CRASH_SEED", 7)
    rng = random.Random(seed)
    run_async(make_accounts(tmp_path, nats_relay.url), 90)
    peers = {name: PeerProcess(name, tmp_path, nats_relay.url, messages, seed=seed, burst=10, pause=0.35)
             for name in ("a1", "a2", "bob")}
    modes: dict[str, int] = dict.fromkeys(MODES, 0)
    started = time.monotonic()
    try:
        for p in peers.values():
            p.start()
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 1.2))
            for p in peers.values():  # a crash point that fired: restart plainly
                if not p.alive and p.reap() is not None:
                    p.start()
            victim = peers[rng.choice(sorted(peers))]
            mode = rng.choice(MODES)
            modes[mode] += 1
            if not victim.alive:
                victim.reap()
                victim.start()
            if mode == "sending":
                victim.wait_for_line("sending", victim.log_size(), timeout=3)
            if victim.alive:
                victim.kill()
            crash = f"{mode}:{rng.randint(1, 40)}" if mode in ("commit", "publish") else None
            time.sleep(rng.uniform(0, 0.5))
            victim.start(crash)
        killing_s = time.monotonic() - started
        deadline = time.monotonic() + (3600 if long_run() else 120)
        while not complete(peers, dict.fromkeys(peers, messages)) and time.monotonic() < deadline:
            for p in peers.values():
                if not p.alive:
                    p.reap()
                    p.start()
            time.sleep(0.2)
        settle_s = time.monotonic() - started - killing_s
        statuses = {name: p.status() for name, p in peers.items()}
    finally:
        codes = {name: p.stop() for name, p in peers.items()}
    assert codes == dict.fromkeys(peers, 0), (codes, {n: p.stderr_text()[-2000:] for n, p in peers.items()})
    fig = run_async(verify(tmp_path, peers), 120)
    total_kills = sum(p.killed + p.self_killed for p in peers.values())
    print(f"\ncrash consistency (seed {seed}): {sum(fig.sent.values())} messages sent {fig.sent}, "
          f"{total_kills} kills (by the harness {sum(p.killed for p in peers.values())}: {modes}; "
          f"crash points that fired {sum(p.self_killed for p in peers.values())}), "
          f"{sum(p.lifetimes for p in peers.values())} process lifetimes; lost {fig.lost}, stored twice "
          f"{fig.duplicates_stored}, shown twice {fig.duplicates_shown}, committed lost {fig.committed_lost}, "
          f"acknowledged lost {fig.acked_lost}, out of order {fig.out_of_order}, rejections "
          f"{dict(fig.rejections)} (expected: {sorted(EXPECTED_REJECTIONS)}), integrity {fig.integrity}; "
          f"killing {killing_s:.1f} s, settling {settle_s:.1f} s")
    assert fig.problems == [], (fig.problems, statuses)
    assert fig.sent == dict.fromkeys(peers, messages), statuses
    assert (fig.lost, fig.duplicates_stored, fig.duplicates_shown) == (0, 0, 0)
    assert (fig.committed_lost, fig.acked_lost) == (0, 0)
    healing = {code: n for code, n in fig.rejections.items() if code not in EXPECTED_REJECTIONS}
    assert healing == {}, "a session needed healing"
    assert fig.integrity == dict.fromkeys(peers, "ok")
    assert total_kills >= kills
