"""kill -9 during device pairing, on the real stack: the CLI as separate processes, a real nats-server, real
SQLCipher stores. Alice's first installation (a1) pairs her new one (a2, recovered from the phrase) with
``devices pair --code``; one of them is SIGKILLed at an exact point (inside a store transaction after its
writes and before COMMIT, or right after the relay acknowledged a publish and before the outbox recorded it),
then the user simply runs the same command again. Afterwards the pairing is complete: a2 is paired on a1,
a2 knows Bob (contacts synced), a message from Bob reaches both installations once, a message a1 sends appears
on a2 as a sent copy, and both databases pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.store.sqlcipher_store import SqlCipherSessionStore
from engine.transport.relay import RelayProcess
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, create_messenger, nats_relay, requires_nats

__all__ = ["nats_relay"]
pytestmark = [requires_nats, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
CRASHING_CLI = ("import sys; from tests.reliability.peer import install_crash_point; "
                "install_crash_point(sys.argv[1]); from app.cli import main; sys.exit(main(sys.argv[2:]))")
"""The real CLI, with one crash point installed by the test driver (the engine never reads it)."""
CASES = [("a1", "commit:1"), ("a1", "commit:3"), ("a1", "publish:1"), ("a1", "publish:2"),
         ("a2", "commit:1"), ("a2", "commit:2")]
"""(who is killed, where). a1's ``devices pair`` commits the bundle, the device name and the pairing (with
its outbox), then publishes the pairing message and the contacts; a2's ``sync`` commits what it receives."""


async def _accounts(tmp: Path, url: str) -> str:
    """Alice (a1) and Bob know each other; a2 is Alice recovered on a new installation. a2's pairing code."""
    a1 = await create_messenger(tmp, "a1", url, display_name="alice")
    assert a1.recovery_phrase is not None
    bob = await create_messenger(tmp, "bob", url, display_name="bobby")
    a2 = await create_messenger(tmp, "a2", url, display_name="alice", recovery_phrase=a1.recovery_phrase)
    async with a1, bob, a2:
        a1.add_contact(bob.contact_code(), "bob")
        bob.add_contact(a1.contact_code(), "alice")
        for m in (a1, bob, a2):
            await m.start()
            await m.sync(20)
        return a2.pairing_code()


class Cli:
    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp, self.url = tmp, url
        self.env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "SOTTOVOCE_DATA_DIR": str(tmp / "data"),
                    "PYTHONPATH": str(REPO)}

    def __call__(self, who: str, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
        verb = ["--profile", str(self.tmp / who), "--transport", self.url, *args]
        argv = [sys.executable, "-c", CRASHING_CLI, crash, *verb] if crash else \
            [sys.executable, "-m", "app", *verb]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=90, check=False)
        if crash:
            assert result.returncode == -9, f"the crash point {crash} did not fire: {result.stderr}"
        else:
            assert result.returncode == 0, f"{who} {args}: {result.stderr}"
        return result

    def history(self, who: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self(who, "history", "bob", "--json").stdout.splitlines()]


@pytest.mark.parametrize(("victim", "crash"), CASES)
def test_a_pairing_killed_at_any_point_completes_when_run_again(tmp_path: Path, nats_relay: RelayProcess,
                                                                 victim: str, crash: str) -> None:
    code = asyncio.run(asyncio.wait_for(_accounts(tmp_path, nats_relay.url), 60))
    cli = Cli(tmp_path, nats_relay.url)
    if victim == "a1":
        cli("a1", "devices", "pair", "--code", code, crash=crash)
    cli("a1", "devices", "pair", "--code", code)  # the user runs it again
    if victim == "a2":
        cli("a2", "sync", crash=crash)
    cli("a2", "sync")

    devices = json.loads(cli("a1", "devices", "--json").stdout)
    a2_id = json.loads(cli("a2", "devices", "--json").stdout)
    assert [d["paired"] for d in devices if not d["current"]] == [True], devices
    assert {d["installation_id"] for d in a2_id if d["current"]} <= {d["installation_id"] for d in devices}
    assert cli.history("a2") == []  # a2 knows the contact "bob" (synced), with nothing said yet

    cli("bob", "send", "alice", "after the pairing")
    cli("a1", "send", "bob", "from a1")
    for who in ("a1", "a2"):
        cli(who, "sync")
    for who in ("a1", "a2"):
        texts = [(m["direction"], m["text"]) for m in cli.history(who)]
        assert sorted(texts) == [("in", "after the pairing"), ("out", "from a1")], (who, texts)
    for who in ("a1", "a2", "bob"):
        store = SqlCipherSessionStore.open_profile(tmp_path / who, PASSPHRASE, False, custody=CUSTODY)
        try:
            assert [tuple(r) for r in store.database.query("PRAGMA integrity_check")] == [("ok",)]
        finally:
            store.close()
