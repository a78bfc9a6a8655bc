"""``sottovoce history`` and what ``listen`` promises: each message printed at most once, after its commit.

The CLI runs as separate processes against a nats-server on 127.0.0.1; the peer writing to it is a Messenger
in this process (faster than one ``send`` process per message). Profiles use a passphrase with cheap scrypt
(the cost is stored in ``profile.json``, so the CLI opens them as fast).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from engine.messenger import Messenger
from engine.transport.relay import EmbeddedRelay, RelayProcess
from tests.integration.nats_fixtures import PASSPHRASE, create_messenger, requires_nats, run, start_relay

pytestmark = [requires_nats, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
SOTTOVOCE = [sys.executable, "-m", "app"]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    server = start_relay(tmp_path / "relay")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    data = tmp_path / "data"
    yield {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "SOTTOVOCE_DATA_DIR": str(data),
           "PYTHONPATH": str(REPO)}
    EmbeddedRelay(data).stop()  # none should have started; stop it if one did


def cli(env: dict[str, str], profile: Path, url: str, *args: str, ok: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SOTTOVOCE, "--profile", str(profile), "--transport", url, *args], env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if ok:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def _pair_of_contacts(tmp: Path, url: str) -> tuple[str, str]:
    """alice and bobby know each other (by contact code, so alice's first message is forward secret)."""
    alice = await create_messenger(tmp, "alice", url, display_name="alice")
    bob = await create_messenger(tmp, "bobby", url, display_name="bobby")
    async with alice, bob:
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        return alice.identity.chat_key, bob.identity.chat_key


async def _alice_sends(tmp: Path, url: str, texts: list[str]) -> list[str]:
    """alice sends ``texts`` in order and returns once the relay holds all of them; their ids."""
    alice = await Messenger.open(tmp / "alice", passphrase=PASSPHRASE, transport_url=url)
    async with alice:
        await alice.start()
        sent = [await alice.send_text("bob", text) for text in texts]
        for message in sent:
            await alice.wait_sent(message.id, 30)
        return [m.id for m in sent]


def test_history_prints_the_conversation_oldest_first_in_the_formats_of_listen(
        tmp_path: Path, relay: RelayProcess, env: dict[str, str]) -> None:
    url = relay.url
    alice_key, bob_key = run(_pair_of_contacts(tmp_path, url))
    ids = run(_alice_sends(tmp_path, url, ["one", "two\nlines", "three"]))
    bob = tmp_path / "bobby"
    listened = json_lines(cli(env, bob, url, "listen", "--json", "--count", "3", "--timeout", "40").stdout)
    cli(env, bob, url, "send", "alice", "four")

    history = json_lines(cli(env, bob, url, "history", "alice", "--json").stdout)
    assert [m["text"] for m in history] == ["one", "two\nlines", "three", "four"]
    assert history[:3] == listened  # the same fields and values as listen --json
    assert [m["id"] for m in history[:3]] == ids
    assert [m["direction"] for m in history] == ["in", "in", "in", "out"]
    assert history[3]["from_key"] == bob_key and history[3]["to_key"] == alice_key
    assert [m["timestamp"] for m in history] == sorted(m["timestamp"] for m in history)

    by_key = json_lines(cli(env, bob, url, "history", alice_key, "--json", "--limit", "2").stdout)
    assert by_key == history[2:]  # the newest two, still oldest first
    text = cli(env, bob, url, "history", "alice").stdout.splitlines()
    assert len(text) == 4  # one line per message: the newline inside a text is escaped
    assert text[1].endswith("alice: two\\nlines") and text[3].endswith(f"me -> {alice_key}: four")

    assert cli(env, tmp_path / "alice", url, "history", "bob", "--limit", "1").stdout.splitlines()[0].endswith(
        f"me -> {bob_key}: three")
    for bad in (["nobody"], ["alice", "--limit", "0"]):
        refused = cli(env, bob, url, "history", *bad, ok=False)
        assert refused.returncode == 1 and refused.stdout == ""
        assert len(refused.stderr.splitlines()) == 1 and refused.stderr.startswith("sottovoce: ")


def test_a_later_listen_prints_only_what_came_while_it_was_stopped(
        tmp_path: Path, relay: RelayProcess, env: dict[str, str]) -> None:
    url = relay.url
    run(_pair_of_contacts(tmp_path, url))
    bob = tmp_path / "bobby"
    first = run(_alice_sends(tmp_path, url, ["m1", "m2"]))
    assert [m["id"] for m in json_lines(cli(env, bob, url, "listen", "--json", "--count", "2",
                                           "--timeout", "40").stdout)] == first
    later = run(_alice_sends(tmp_path, url, ["m3", "m4", "m5"]))  # bob's listen is not running
    # The restart catches up from the relay two minutes before its last position, so m1 and m2 come again
    # from the relay; were they printed again, they would be the first lines.
    again = json_lines(cli(env, bob, url, "listen", "--json", "--count", "3", "--timeout", "40").stdout)
    assert [m["id"] for m in again] == later and [m["text"] for m in again] == ["m3", "m4", "m5"]


def test_listen_killed_mid_stream_never_prints_a_committed_message_later(
        tmp_path: Path, relay: RelayProcess, env: dict[str, str]) -> None:
    """At most once: a message committed but not printed when ``listen`` is SIGKILLed is only in history."""
    url = relay.url
    run(_pair_of_contacts(tmp_path, url))
    bob = tmp_path / "bobby"
    texts = [f"burst {i}" for i in range(40)]
    listen = subprocess.Popen([*SOTTOVOCE, "--profile", str(bob), "--transport", url, "listen", "--json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(run, _alice_sends(tmp_path, url, texts))
            assert listen.stdout is not None
            printed = [json.loads(listen.stdout.readline()) for _ in range(5)]
            os.kill(listen.pid, signal.SIGKILL)  # mid-stream: alice is still sending, bob still committing
            listen.wait(10)
            printed += json_lines(listen.stdout.read())  # lines already in the pipe
            ids = sending.result(60)
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()
    committed = json_lines(cli(env, bob, url, "history", "alice", "--json").stdout)
    assert [m["id"] for m in printed] == [m["id"] for m in committed[:len(printed)]]  # printed only once committed
    assert [m["id"] for m in committed] == ids[:len(committed)]

    tail = run(_alice_sends(tmp_path, url, ["after the crash"]))
    missing = ids[len(committed):]
    again = json_lines(cli(env, bob, url, "listen", "--json", "--count", str(len(missing) + 1),
                           "--timeout", "60").stdout)
    assert [m["id"] for m in again] == missing + tail  # nothing committed before the kill is printed again
    assert [m["id"] for m in json_lines(cli(env, bob, url, "history", "alice", "--json").stdout)] == ids + tail
    unprinted = len(committed) - len(printed)
    print(f"\nlisten SIGKILLed after {len(printed)} printed lines: {len(committed)} of {len(ids)} committed, "
          f"{unprinted} committed but never printed by listen (history shows them)")
