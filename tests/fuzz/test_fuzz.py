"""CI for the fuzz targets: every target under atheris for a short fixed budget, and every regression input.

The short runs execute :attr:`Target.ci_runs` inputs per target (seeds first), about 25 s for all of them on
one core; ``python -m tests.fuzz.run`` runs them long (``tests/fuzz/README.md``). A regression input is a file
``tests/fuzz/regressions/<target>/<name>`` that once was a finding; it is replayed in-process through the same
oracle. A ``<name>.xfail`` file beside it (holding the reason) marks a finding in code this suite does not
fix as a strict xfail.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from engine.errors import MalformedMessage, SottovoceError

from .corpus import seeds
from .fixtures import T0, live_engines, live_pair, state_dump
from .run import Result, format_table, parse_output, run_target
from .targets import TARGETS, StateChanged, is_known_open, receive_path_envelope, run_one

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def _regression_inputs() -> list[object]:
    params: list[object] = []
    for path in sorted(REGRESSIONS.glob("*/*")):
        if path.suffix == ".xfail" or path.name.startswith("."):
            continue
        reason = path.with_name(path.name + ".xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason.read_text().strip())] if reason.exists() else []
        params.append(pytest.param(path, id=f"{path.parent.name}/{path.name}", marks=marks))
    return params


@pytest.mark.parametrize("path", _regression_inputs())
def test_regression_input_gives_success_or_a_typed_error(path: Path) -> None:
    assert path.parent.name in TARGETS, f"regression folder {path.parent.name!r} names no target"
    run_one(TARGETS[path.parent.name].make(), path.read_bytes())


def test_the_fuzzer_skips_exactly_the_open_findings() -> None:
    """Inputs shaped like an open (xfail) finding are skipped while fuzzing; fixed findings never are."""
    for path in sorted(REGRESSIONS.glob("*/*")):
        if path.suffix == ".xfail":
            continue
        is_open = path.with_name(path.name + ".xfail").exists()
        assert is_known_open(path.parent.name, path.read_bytes()) == is_open, path


@pytest.mark.parametrize("name", list(TARGETS))
def test_target_runs_its_ci_budget_under_atheris_without_findings(name: str) -> None:
    target = TARGETS[name]
    result = run_target(name, runs=target.ci_runs, seconds=None, findings_dir=None, nice=False)
    assert result.ok, f"{name}: findings {[p.name for p in result.findings]}\n{result.log_tail}"
    assert result.inputs >= target.ci_runs, result.log_tail
    assert result.cov > 0, result.log_tail
    print(format_table([result]))


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_has_seeds_and_accepts_them(name: str) -> None:
    found = seeds(name)
    assert found, f"{name} has no seeds: are the vectors in /work/shared/vectors?"
    one_input = TARGETS[name].make()
    for data in found:
        run_one(one_input, data)


# --- the oracle itself can fail ------------------------------------------------------------------------------


def test_the_oracle_passes_typed_errors_and_propagates_anything_else() -> None:
    def typed(data: bytes) -> None:
        raise MalformedMessage()

    def stray(data: bytes) -> None:
        raise IndexError(data)

    run_one(typed, b"x")
    with pytest.raises(IndexError):
        run_one(stray, b"x")
    assert not issubclass(StateChanged, SottovoceError)


def test_the_live_session_reads_a_genuine_message_and_rejects_its_replay_without_changing_state() -> None:
    from engine.protocol.encryption import EncryptionProtocol
    from engine.simulation.entropy import SeededEntropy

    pair = live_pair()
    protocol = EncryptionProtocol(copy.deepcopy(pair.bob_state))
    decrypted = protocol.decrypt(pair.alice, pair.messages[0], T0, SeededEntropy(b"t"))
    assert decrypted.plaintext == b"pending one" and decrypted.forward_secret
    after = state_dump(protocol.state)
    assert after != state_dump(pair.bob_state)  # the dump sees a ratchet step
    with pytest.raises(SottovoceError):
        protocol.decrypt(pair.alice, pair.messages[0], T0, SeededEntropy(b"t"))
    assert state_dump(protocol.state) == after


def test_the_receive_path_fixture_shows_alices_pending_envelope_to_bob() -> None:
    from engine.sessions.engine import SessionEngine
    from engine.sessions.events import MessageReceived
    from engine.simulation.entropy import SeededEntropy

    live = live_engines()
    pristine = copy.deepcopy(live.bob_tables)
    store = copy.copy(live.bob_store)
    store._committed = live.bob_tables
    engine = SessionEngine(store, SeededEntropy(b"t"), live.clock)
    events = [e for data in live.envelopes for e in engine.receive(data)]
    assert [e.message.text for e in events if isinstance(e, MessageReceived)] == ["unread " * 40]
    assert live.bob_tables == pristine  # the memory store copies on write: the fixture's tables stay pristine


def test_runner_reads_libfuzzer_figures() -> None:
    result = Result("x")
    parse_output(result, "#2\tINITED cov: 5 ft: 6 corp: 1\n#900\tDONE   cov: 12 ft: 34 corp: 3\n"
                         "stat::number_of_executed_units: 900\nstat::average_exec_per_sec:     450\n")
    assert (result.inputs, result.exec_per_s, result.cov, result.ft) == (900, 450, 12, 34)
    assert "TOTAL 1 targets, 900 inputs executed, 0 findings" in format_table([result])


def test_receive_path_seeds_reach_bobs_state_machine() -> None:
    """The deep modes are real: an inner chat message Alice signs is shown to Bob, a mutated envelope is not."""
    from engine.sessions.events import EnvelopeRejected, MessageReceived

    one_input = TARGETS["receive_path"].make()
    signed = [s for s in seeds("receive_path") if s[0] == 3]
    events = one_input(signed[0])
    assert isinstance(events, list)
    assert [e.message.text for e in events if isinstance(e, MessageReceived)] == ["fuzz text"]
    genuine = live_engines().envelopes[-1]
    mutated = genuine[:-40] + bytes([genuine[-40] ^ 1]) + genuine[-39:]
    events = one_input(b"\x00" + mutated)
    assert isinstance(events, list) and any(isinstance(e, EnvelopeRejected) for e in events)


def test_a_chat_timestamp_beyond_sqlite_integer_is_rejected_on_the_real_store(tmp_path: Path) -> None:
    """Finding (receive_path): a peer's ChatMessage with timestamp 2^64-1 passed validation and the SQLCipher
    store raised OverflowError inside the receive step, on every redelivery of the envelope."""
    from engine.sessions.engine import SessionEngine
    from engine.sessions.events import EnvelopeRejected, MessageReceived
    from engine.simulation.entropy import SeededEntropy
    from engine.store.database import Database
    from engine.store.sqlcipher_store import SqlCipherSessionStore

    live = live_engines()
    store = SqlCipherSessionStore(Database.open(tmp_path / "bob.db", key=bytes(range(32)), create=True))
    with store.transaction() as writer:  # Bob's committed state, moved to the real store
        for kind, rows in live.bob_tables.records.items():
            for key, value in rows.items():
                writer.put_record(kind, key, value)
        for name, data in live.bob_tables.meta.items():
            writer.put_meta(name, data)
    engine = SessionEngine(store, SeededEntropy(b"t"), live.clock)
    envelope = receive_path_envelope()((REGRESSIONS / "receive_path" / "chat-timestamp-2p64-1").read_bytes())
    assert envelope is not None
    events = engine.receive(envelope)
    assert [e.code for e in events if isinstance(e, EnvelopeRejected)] == ["timestamp_too_high"]
    events = engine.receive(live.envelopes[-1])  # the store still works
    assert [e.message.text for e in events if isinstance(e, MessageReceived)] == ["unread " * 40]
    store.close()


def test_acknowledging_the_messages_of_one_envelope_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing the receive-path target with large inputs (libFuzzer's -max_len keeps inputs small).

    Counted, not timed: the ids copied into pending-ack records while one envelope of n messages is received
    must stay within a constant times n.
    """
    from engine.sessions import datasync_state
    from proto.datasync_pb2 import Payload

    copied = [0]
    original = datasync_state.PendingAcks.__init__

    def counting(self: datasync_state.PendingAcks, ids: tuple[bytes, ...], since_ns: int) -> None:
        copied[0] += len(ids)
        original(self, ids, since_ns)

    monkeypatch.setattr(datasync_state.PendingAcks, "__init__", counting)
    n = 2000
    payload = Payload()
    for i in range(n):
        payload.messages.add(timestamp=i + 1)
    TARGETS["receive_path"].make()(b"\x02" + payload.SerializeToString())
    assert copied[0] >= n  # every message was acknowledged
    assert copied[0] <= 4 * n, f"{copied[0]} ids copied for {n} messages"
