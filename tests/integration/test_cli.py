"""The ``sottovoce`` command line end to end, as separate processes, over ``sottovoce relay`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.transport.relay import EmbeddedRelay, free_port
from tests.integration.nats_fixtures import requires_nats

pytestmark = [requires_nats, pytest.mark.timeout(60)]

SOTTOVOCE = [sys.executable, "-m", "app"]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A passphrase instead of the keyring, and a private data folder (no user config, no shared relay).

    An embedded relay a command may have started there is stopped at the end.
    """
    data = tmp_path / "data"
    yield {**os.environ, "SOTTOVOCE_PASSPHRASE": "cli test passphrase", "SOTTOVOCE_DATA_DIR": str(data),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    EmbeddedRelay(data).stop()


@pytest.fixture
def relay(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``sottovoce relay`` on a free loopback port; checks its first line and its clean stop on SIGTERM."""
    listen = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen([*SOTTOVOCE, "relay", "--listen", listen, "--store", str(tmp_path / "relay")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"relay: nats://{listen}"
        yield f"nats://{listen}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def sottovoce(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool = True,
              timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*SOTTOVOCE, *args], input=stdin, capture_output=True, text=True, env=env,
                            timeout=timeout, check=False)
    if ok:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def test_cli_round_trip(tmp_path: Path, env: dict[str, str], relay: str) -> None:
    a = ["--profile", str(tmp_path / "a"), "--transport", relay]
    b = ["--profile", str(tmp_path / "b"), "--transport", relay]
    init = sottovoce(env, *a, "init", "--name", "alice").stdout.splitlines()
    assert init[0].startswith("chat key: zQ3") and init[1].startswith("recovery phrase: ")
    assert len(init[1].removeprefix("recovery phrase: ").split()) == 12
    alice_key = init[0].removeprefix("chat key: ")
    sottovoce(env, *b, "init", "--name", "bobby")
    bob = json.loads(sottovoce(env, *b, "whoami", "--json").stdout)
    assert bob["chat_key"].startswith("zQ3") and bob["display_name"] == "bobby"

    code = sottovoce(env, *b, "code", "--qr", str(tmp_path / "bob.png")).stdout.strip()
    assert code.startswith("SOTTOVOCE:CONTACT:V1:") and (tmp_path / "bob.png").stat().st_size > 0
    sottovoce(env, *a, "contacts", "add", "--code", code, "--name", "bob")
    sottovoce(env, *b, "contacts", "add", alice_key, "--name", "alice")
    contacts = json.loads(sottovoce(env, *a, "contacts", "--json").stdout)
    assert contacts == [{"name": "bob", "chat_key": bob["chat_key"], "display_name": "bobby", "verified": False,
                         "added": True, "has_added_us": False, "mutual": False, "blocked": False}]
    assert "verified bob" in sottovoce(env, *a, "contacts", "verify", "bob").stdout

    sent = sottovoce(env, *a, "send", "bob", "hello from the CLI").stdout
    assert sent.startswith("sent 0x")
    listened = sottovoce(env, *b, "listen", "--json", "--count", "1", "--timeout", "20")
    [line] = listened.stdout.splitlines()
    message = json.loads(line)
    assert message["id"] == sent.split()[1]
    assert message["from"] == "alice" and message["from_key"] == alice_key and message["direction"] == "in"
    assert message["to_key"] == bob["chat_key"] and message["text"] == "hello from the CLI"
    assert message["pfs"] is True and message["installation_id"] and message["timestamp"] > 0

    nothing = sottovoce(env, *b, "listen", "--count", "1", "--timeout", "1", ok=False)
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert sottovoce(env, *b, "sync", "--timeout", "20").stdout.strip() == "synced"
    devices = json.loads(sottovoce(env, *b, "devices", "--json").stdout)
    assert [d["current"] for d in devices] == [True]


def test_cli_recover_and_pair_a_second_installation(tmp_path: Path, env: dict[str, str], relay: str) -> None:
    a = ["--profile", str(tmp_path / "a"), "--transport", relay]
    a2 = ["--profile", str(tmp_path / "a2"), "--transport", relay]
    init = sottovoce(env, *a, "init", "--name", "alice").stdout.splitlines()
    phrase = init[1].removeprefix("recovery phrase: ")
    carol_key = sottovoce(env, "--profile", str(tmp_path / "c"), "init", "--name", "carol").stdout.split()[2]
    sottovoce(env, *a, "contacts", "add", carol_key, "--name", "Carol from work")
    recovered = sottovoce(env, *a2, "init", "--name", "alice", "--recover", stdin=phrase + "\n").stdout
    assert recovered.splitlines()[0] == init[0] and "recovery phrase" not in recovered
    pairing = sottovoce(env, *a2, "devices", "code", "--qr", str(tmp_path / "pair.png")).stdout.strip()
    assert pairing.startswith("SOTTOVOCE:PAIRING:V1:")
    assert "paired" in sottovoce(env, *a, "devices", "pair", "--qr", str(tmp_path / "pair.png")).stdout
    sottovoce(env, *a2, "sync", "--timeout", "20")
    mine = json.loads(sottovoce(env, *a2, "devices", "--json").stdout)
    assert [(d["current"], d["paired"]) for d in mine] == [(True, True), (False, True)]
    [synced] = json.loads(sottovoce(env, *a2, "contacts", "--json").stdout)  # contacts came with the pairing
    assert (synced["name"], synced["chat_key"], synced["added"]) == ("Carol from work", carol_key, True)


def test_cli_contact_request_accepted(tmp_path: Path, env: dict[str, str], relay: str) -> None:
    a = ["--profile", str(tmp_path / "a"), "--transport", relay]
    b = ["--profile", str(tmp_path / "b"), "--transport", relay]
    alice_key = sottovoce(env, *a, "init", "--name", "alice").stdout.split()[2]
    bob_key = sottovoce(env, *b, "init", "--name", "bobby").stdout.split()[2]
    sottovoce(env, *a, "contacts", "add", bob_key, "--name", "bob")
    assert "contact request sent" in sottovoce(env, *a, "contacts", "request", "bob", "hi, it's alice").stdout
    sottovoce(env, *b, "sync", "--timeout", "20")
    [request] = json.loads(sottovoce(env, *b, "contacts", "requests", "--json").stdout)
    assert (request["chat_key"], request["display_name"], request["text"]) == (alice_key, "alice", "hi, it's alice")
    assert "accepted Alice" in sottovoce(env, *b, "contacts", "accept", alice_key, "--name", "Alice").stdout
    assert json.loads(sottovoce(env, *b, "contacts", "requests", "--json").stdout) == []
    [alice] = json.loads(sottovoce(env, *b, "contacts", "--json").stdout)
    assert (alice["name"], alice["mutual"]) == ("Alice", True)
    sottovoce(env, *a, "sync", "--timeout", "20")
    [bob] = json.loads(sottovoce(env, *a, "contacts", "--json").stdout)
    assert (bob["name"], bob["mutual"]) == ("bob", True)


def test_cli_user_errors_are_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    missing = sottovoce(env, "--profile", str(tmp_path / "nowhere"), "whoami", ok=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    profile = ["--profile", str(tmp_path / "p")]
    bad_name = sottovoce(env, *profile, "init", "--name", "bo", ok=False)
    assert bad_name.returncode == 1 and "display name" in bad_name.stderr and "Traceback" not in bad_name.stderr
    sottovoce(env, *profile, "init", "--name", "carol")
    again = sottovoce(env, *profile, "init", "--name", "carol", ok=False)
    assert again.returncode == 1 and "already" in again.stderr
    for args in (["send", "nobody", "hi"], ["contacts", "add", "--code", "garbage", "--name", "x"],
                 ["contacts", "add", "--qr", str(tmp_path / "missing.png"), "--name", "x"],
                 ["contacts", "verify", "nobody"], ["devices", "unpair", "no-such-id"],
                 ["devices", "pair", "--code", "SOTTOVOCE:PAIRING:V1:AAAA"]):
        result = sottovoce(env, *profile, *args, ok=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith("sottovoce: ") and result.stderr.count("\n") == 1, (args, result.stderr)
    wrong = sottovoce({**env, "SOTTOVOCE_PASSPHRASE": "wrong"}, *profile, "whoami", ok=False)
    assert wrong.returncode == 1 and wrong.stderr.strip() == "sottovoce: wrong passphrase"


def test_cli_status_shows_the_connection_and_the_queue(tmp_path: Path, env: dict[str, str], relay: str) -> None:
    gone = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    a = ["--profile", str(tmp_path / "a"), "--transport", relay]
    a_down = ["--profile", str(tmp_path / "a"), "--transport", gone]
    b = ["--profile", str(tmp_path / "b"), "--transport", relay]
    sottovoce(env, *a, "init", "--name", "alice")
    sottovoce(env, *b, "init", "--name", "bobby")
    sottovoce(env, *a, "contacts", "add", "--code", sottovoce(env, *b, "code").stdout.strip(), "--name", "bob")
    assert sottovoce(env, *a, "sync", "--timeout", "20").stdout.strip() == "synced"

    up = json.loads(sottovoce(env, *a, "status", "--json").stdout)
    assert up == {"relay": relay, "state": "connected", "queued": 0}

    sent = sottovoce(env, *a_down, "send", "bob", "not while the relay is away", "--timeout", "2", ok=False)
    assert sent.returncode == 1 and len(sent.stderr.splitlines()) == 1  # refused before anything is queued
    down = sottovoce(env, *a_down, "status", "--timeout", "1", ok=False)
    assert down.returncode == 1 and down.stderr == ""
    assert down.stdout.splitlines() in (
        [f"relay: {gone} ({state})", "queued: 0 envelope(s) waiting for the relay"]
        for state in ("connecting", "reconnecting"))
