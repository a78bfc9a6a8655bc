"""The seeded network simulation: fixed seeds pass, runs are reproducible, and every invariant can fail.

The invariants are only worth something if a broken engine trips them, so each sabotage test monkeypatches one
piece of the engine (or the store) the way a real bug would break it and requires the named invariant to
report it, for one of a few small seeds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from app import cli
from engine.protocol.application import messages as app
from engine.protocol.encryption import Decrypted, EncryptionProtocol
from engine.protocol.entropy import Entropy
from engine.protocol.state import MAX_ACTIVE_INSTALLATIONS, Installation, ProtocolState
from engine.sessions import engine as engine_module
from engine.sessions.core import SessionCore, Step
from engine.simulation import Simulation, parse_seeds, run_seeds, summary
from engine.simulation.network import Faults
from engine.simulation.simulation import SeedResult
from engine.store.memory_store import _MemoryReader, _MemoryWriter
from engine.store.port import StoredMessage, StoreWriter
from proto.chat_message_pb2 import ChatMessage

REPO = Path(__file__).resolve().parents[2]
SEEDS = range(1, 13)
"""3 accounts of 2 installations, 80 messages each."""
WIDE_SEEDS = range(1, 4)
"""4 accounts of 3 installations, 60 messages each."""
SABOTAGE_SEEDS = range(1, 9)
"""Seeds a sabotage test may try, in order, until its invariant reports."""
FAULT_COUNTS = ("relay_dropped", "relay_duplicated", "relay_delayed", "relay_lost_in_flight", "crash",
                "crash_in_commit", "crash_after_publish", "crash_armed", "relay_outages", "rotations", "recoveries",
                "pairings", "unpairings", "restarts")


@functools.cache
def run(seed: int, accounts: int = 3, devices: int = 2, messages: int = 80) -> SeedResult:
    """One unsabotaged run, shared by the tests that look at it (sabotage tests call Simulation directly)."""
    return Simulation(seed, accounts=accounts, devices=devices, messages=messages).run()


# --- fixed seeds pass ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_passes_with_3_accounts_of_2_installations(seed: int) -> None:
    result = run(seed)
    assert result.failure is None
    assert result.counts["sent"] == 80
    assert result.counts["shown"] >= result.counts["sent"]


@pytest.mark.parametrize("seed", WIDE_SEEDS)
def test_seed_passes_with_4_accounts_of_3_installations(seed: int) -> None:
    result = run(seed, 4, 3, 60)
    assert result.failure is None
    assert result.counts["sent"] == 60


@pytest.mark.parametrize("seed", [1, 2])
def test_seed_passes_on_a_very_unreliable_relay(seed: int) -> None:
    result = Simulation(seed, accounts=3, devices=2, messages=60, faults=Faults(0.3, 0.3, 0.6, 80)).run()
    assert result.failure is None
    assert result.counts["relay_dropped"] > 0 and result.counts["relay_duplicated"] > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_seed_passes_with_2_single_installation_accounts(seed: int) -> None:
    result = Simulation(seed, accounts=2, devices=1, messages=60).run()
    assert result.failure is None


def test_the_fixed_seeds_exercise_every_fault() -> None:
    """Passing seeds prove little if nothing went wrong in them: every kind of fault happened somewhere."""
    results = [run(seed) for seed in SEEDS] + [run(seed, 4, 3, 60) for seed in WIDE_SEEDS]
    totals = {name: sum(r.counts.get(name, 0) for r in results) for name in FAULT_COUNTS}
    assert [name for name, count in totals.items() if count == 0] == []
    assert sum(r.counts.get("sent_without_forward_secrecy", 0) for r in results) > 0
    line = summary(results)
    assert line.startswith(f"{len(results)} seeds: {sum(r.counts['sent'] for r in results)} messages sent")


def test_the_network_settles_when_a_publish_was_refused_just_before_the_end() -> None:
    """Regression: an outbox item rescheduled after a refused publish is published while the network settles.

    Found as seeds 24 and 84 (3x2, 250 messages) and 71, 86 and 150 (4x3, 150 messages), which could end with
    "delivered: the network did not settle in 60 rounds" (fixed in d21626f); reproduced here on purpose.
    """
    simulation = Simulation(1, accounts=2, devices=1, messages=0)
    setup = simulation._setup

    def setup_then_send_while_the_relay_is_down() -> None:
        setup()
        simulation.relay.up = False
        simulation._send()
        sender = next(d for d in simulation.devices.values() if d.sent)
        assert simulation._flush(sender) == 0  # refused: rescheduled RETRY_NS later
        assert simulation._engine(sender).outbox_due() == []

    simulation._setup = setup_then_send_while_the_relay_is_down  # type: ignore[method-assign]
    result = simulation.run()
    assert result.failure is None
    assert result.counts["sent"] == 1 and result.counts["relay_publish_refused"] >= 1


@pytest.mark.parametrize(("seed", "accounts", "devices", "messages"), [
    (24, 3, 2, 250), (84, 3, 2, 250), (71, 4, 3, 150), (86, 4, 3, 150), (150, 4, 3, 150)])
def test_regression_seeds_that_once_did_not_settle(seed: int, accounts: int, devices: int, messages: int) -> None:
    """The seeds where the network failed to settle (see above); they failed in some processes only."""
    result = Simulation(seed, accounts=accounts, devices=devices, messages=messages).run()
    assert result.failure is None


# --- determinism ---------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_counts_and_different_seeds_differ() -> None:
    again = Simulation(5, accounts=3, devices=2, messages=80).run()
    assert again.counts == run(5).counts
    assert again.failure == run(5).failure
    assert len({json.dumps(run(seed).counts, sort_keys=True) for seed in SEEDS}) == len(SEEDS)


_FRESH_RUN = textwrap.dedent("""
    import hashlib, json, sys
    from engine.simulation import Simulation
    out = []
    for seed in (1, 2, 3):
        simulation = Simulation(seed, accounts=3, devices=2, messages=20)
        result = simulation.run()
        log = hashlib.sha256(b"".join(entry.data for entry in simulation.relay.log)).hexdigest()
        out.append([seed, result.failure, sorted(result.counts.items()), log])
    json.dump(out, sys.stdout)
""")


def _fresh_interpreter_runs() -> Any:
    done = subprocess.run([sys.executable, "-c", _FRESH_RUN], capture_output=True, text=True, cwd=REPO, check=True,
                          timeout=120)
    return json.loads(done.stdout)


def test_the_same_seed_gives_the_same_run_in_a_fresh_interpreter() -> None:
    first, second = _fresh_interpreter_runs(), _fresh_interpreter_runs()
    assert [row[:3] for row in first] == [row[:3] for row in second]
    assert first == second


# --- the invariants can fail ---------------------------------------------------------------------------------


def first_failure(invariant: str, seeds: Iterable[int] = SABOTAGE_SEEDS, **sizes: int) -> tuple[int, str]:
    """Run sabotaged seeds until one fails on ``invariant``; every failure must name an invariant."""
    seen = []
    for seed in seeds:
        result = Simulation(seed, **({"accounts": 2, "devices": 2, "messages": 30} | sizes)).run()
        if result.failure is not None and result.failure.startswith(f"{invariant}: "):
            assert "(at event " in result.failure
            return seed, result.failure
        seen.append((seed, result.failure))
    raise AssertionError(f"no seed failed on {invariant!r}: {seen}")


def _decrypt_without_confirm() -> Callable[..., Decrypted]:
    original = EncryptionProtocol.decrypt

    def decrypt(self: EncryptionProtocol, sender: bytes, data: bytes, now_ns: int, entropy: Entropy, *,
                confirm: bool = True) -> Decrypted:
        return original(self, sender, data, now_ns, entropy, confirm=False)

    return decrypt


def test_keeping_used_message_keys_breaks_keys_erased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EncryptionProtocol, "decrypt", _decrypt_without_confirm())
    first_failure("keys erased")


def _ignore_enabled(self: ProtocolState, identity: bytes) -> list[Installation]:
    found = [i for i in self.installations.values()
             if i.identity == identity and i.installation_id != self.installation_id]
    found.sort(key=lambda i: i.timestamp, reverse=True)
    return found[:MAX_ACTIVE_INSTALLATIONS]


def test_copies_to_unpaired_siblings_break_confined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProtocolState, "active_installations", _ignore_enabled)
    first_failure("confined", devices=3, messages=60)


def test_the_ignore_enabled_sabotage_does_send_copies_to_unpaired_siblings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sabotage above is real: with it, a message's copies go to an installation that is not enabled."""
    monkeypatch.setattr(ProtocolState, "active_installations", _ignore_enabled)
    simulation = Simulation(1, accounts=2, devices=2, messages=0)
    simulation._setup()
    sender = simulation.devices["a0.d0"]
    engine = simulation._engine(sender)
    sibling = simulation.devices["a0.d1"]
    engine.unpair(sibling.installation_id)
    assert not [d for d in engine.devices() if d.enabled]
    sent = engine.send_text(simulation.identities[1], "to bob")
    assert sent.copies == (sibling.installation_id,)


def test_a_copy_filed_in_the_wrong_chat_breaks_confined(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SessionCore._chat_message

    def chat_message(self: SessionCore, step: Step, message_id: str, inner: ChatMessage, sender: bytes,
                     installation: str, forward_secret: bool, now_ns: int, entropy: Entropy) -> None:
        if sender == self.identity:  # an own copy: file it in a chat with ourselves instead of the peer's
            inner = ChatMessage(clock=inner.clock, timestamp=inner.timestamp, text=inner.text,
                                chat_id=app.key_id(self.identity))
        original(self, step, message_id, inner, sender, installation, forward_secret, now_ns, entropy)

    monkeypatch.setattr(SessionCore, "_chat_message", chat_message)
    _, failure = first_failure("confined")
    assert "showed a copy of" in failure


def test_not_saving_the_protocol_state_breaks_durable_or_in_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    def save_nothing(state: ProtocolState, writer: StoreWriter) -> int:
        state.dirty.clear()
        return 0

    monkeypatch.setattr(engine_module, "save_dirty", save_nothing)
    first_failure("durable")
    first_failure("in sync")


def test_forgetting_seen_envelopes_breaks_in_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_MemoryReader, "has_seen", lambda self, *envelope_hashes: False)
    _, failure = first_failure("in sync")
    assert "message_key_deleted" in failure  # a replay reached the ratchet


def test_forgetting_seen_envelopes_and_stored_ids_breaks_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    add_message = _MemoryWriter.add_message

    def add_message_always_new(self: _MemoryWriter, message: StoredMessage) -> bool:
        add_message(self, message)
        return True

    monkeypatch.setattr(_MemoryReader, "has_seen", lambda self, *envelope_hashes: False)
    monkeypatch.setattr(_MemoryWriter, "add_message", add_message_always_new)
    _, failure = first_failure("exactly once")
    assert "twice" in failure


def test_dropping_a_message_silently_breaks_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SessionCore._chat_message

    def chat_message(self: SessionCore, step: Step, message_id: str, inner: ChatMessage, *args: Any) -> None:
        if not inner.text.startswith("m3 "):  # the fourth message vanishes wherever it arrives
            original(self, step, message_id, inner, *args)

    monkeypatch.setattr(SessionCore, "_chat_message", chat_message)
    _, failure = first_failure("delivered")
    assert "never showed" in failure


def test_altering_a_shown_text_breaks_authentic(monkeypatch: pytest.MonkeyPatch) -> None:
    original = SessionCore._chat_message

    def chat_message(self: SessionCore, step: Step, message_id: str, inner: ChatMessage, *args: Any) -> None:
        inner = ChatMessage(clock=inner.clock, timestamp=inner.timestamp, text=inner.text + "!",
                            chat_id=inner.chat_id)
        original(self, step, message_id, inner, *args)

    monkeypatch.setattr(SessionCore, "_chat_message", chat_message)
    first_failure("authentic")


def test_a_store_that_loses_committed_messages_breaks_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash-restart must find every message it showed: a store forgetting messages on reads is caught."""
    message = _MemoryReader.message

    def forgetful(self: _MemoryReader, message_id: str) -> StoredMessage | None:
        digest = hashlib.sha256(message_id.encode()).digest()
        return None if digest[0] < 64 else message(self, message_id)

    monkeypatch.setattr(_MemoryReader, "message", forgetful)
    _, failure = first_failure("durable")
    assert "lost committed message" in failure


# --- the CLI -------------------------------------------------------------------------------------------------


def test_cli_simulate_prints_a_summary_and_the_tally(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["simulate", "--seeds", "1..2", "--messages", "40"])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    seeds = parse_seeds("1..2")
    expected = list(run_seeds(seeds, accounts=3, devices=2, messages=40))
    assert code == 0
    assert err == ""
    assert lines[-1] == f"{len(seeds)} passed, 0 failed"
    assert lines[-2].startswith(summary(expected).rsplit(";", 1)[0])  # the timing differs
    assert len(lines) == 2


def test_cli_simulate_verbose_prints_each_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "--seeds", "3", "--accounts", "2", "--devices", "1", "--messages", "10", "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok seed 3: ")
    assert lines[-1] == "1 passed, 0 failed"


@pytest.mark.parametrize("argv", [
    ["--seeds", "5..1"], ["--seeds", "one..two"], ["--seeds", ""], ["--accounts", "1"], ["--devices", "0"],
    ["--messages", "-1"],
])
def test_cli_simulate_refuses_bad_arguments_with_one_line(capsys: pytest.CaptureFixture[str],
                                                          argv: list[str]) -> None:
    code = cli.main(["simulate", *argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("sottovoce: ")


def test_cli_simulate_reports_failing_seeds_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(EncryptionProtocol, "decrypt", _decrypt_without_confirm())
    code = cli.main(["simulate", "--seeds", "1..2", "--accounts", "2", "--messages", "30"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in lines[:2]] == ["FAIL seed 1", "FAIL seed 2"]
    assert all(": keys erased: " in line for line in lines[:2])
    assert lines[-1] == "0 passed, 2 failed"
