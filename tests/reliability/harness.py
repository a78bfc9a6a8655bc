"""The crash harness: real installations as separate processes (``tests/reliability/peer.py``) on a real relay.

:func:`make_accounts` creates Alice on two paired installations (``a1``, ``a2``) and Bob (``bob``), all
passphrase-protected, and has them exchange a first message each way. :class:`PeerProcess` runs one of them as a
child process that can be SIGKILLed and restarted; :func:`verify` opens every store afterwards and checks what
the crash-consistency claim says, returning the figures.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.messenger import Direction, Messenger
from engine.store.sqlcipher_store import SqlCipherSessionStore
from tests.integration.nats_fixtures import CUSTODY, PASSPHRASE, create_messenger, until

REPO = Path(__file__).resolve().parents[2]
ALICE = ("a1", "a2")
PEER_OF = {"a1": "bob", "a2": "bob", "bob": "alice"}
STOP_TIMED_OUT = -1000
"""What :meth:`PeerProcess.stop` returns for a process that did not stop on SIGTERM in time."""


def long_run() -> bool:
    return os.environ.get("SOTTOVOCE_LONG", "") not in ("", "0")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


async def make_accounts(tmp: Path, url: str) -> None:
    """Alice on ``a1`` and ``a2`` (paired both ways), Bob on ``bob``; contacts both ways; one message each way."""
    a1 = await create_messenger(tmp, "a1", url, display_name="alice")
    assert a1.recovery_phrase is not None
    a2 = await create_messenger(tmp, "a2", url, display_name="alice", recovery_phrase=a1.recovery_phrase)
    bob = await create_messenger(tmp, "bob", url, display_name="bobby")
    everyone = (a1, a2, bob)
    try:
        for m in everyone:
            await m.start()
            await m.wait_synced(20)
        a1.pair_device(a2.pairing_code())
        a2.pair_device(a1.pairing_code())
        for me, other in ((a1, a2), (a2, a1)):
            wanted = other.identity.installation_id
            await until(lambda me=me, wanted=wanted: any(d.installation_id == wanted and d.enabled  # type: ignore[misc]
                                                         for d in me.devices()), 20, "a1 and a2 paired")
        bob.add_contact(a1.contact_code(), "alice")  # after pairing: a1's bundle names a2 too
        a1.add_contact(bob.contact_code(), "bob")
        a2.add_contact(bob.contact_code(), "bob")
        await bob.send_text("alice", "hello alice")
        for a in (a1, a2):
            await until(lambda a=a: bool(a.messages("bob")), 20, "Bob's first message on Alice")  # type: ignore[misc]
        await a1.send_text("bob", "hi from a1")
        await a2.send_text("bob", "hi from a2")
        await until(lambda: len(bob.messages("alice")) == 3, 20, "both answers on Bob")
        for m in everyone:
            await m.sync(20)
    finally:
        for m in everyone:
            await m.close()


class PeerProcess:
    """One installation run by ``tests/reliability/peer.py``; every lifetime appends to the same log."""

    def __init__(self, name: str, tmp: Path, url: str, messages: int, *, seed: int, burst: int = 8,
                 pause: float = 0.3) -> None:
        self.name = name
        self.profile = tmp / name
        self.url = url
        self.log = tmp / f"{name}.log"
        self.status_file = tmp / f"{name}.status"
        self.stderr = tmp / f"{name}.stderr"
        self.messages = messages
        self.seed = seed
        self.burst = burst
        self.pause = pause
        self.process: subprocess.Popen[bytes] | None = None
        self.lifetimes = 0
        self.killed = 0
        self.self_killed = 0
        self.armed = False
        """The running process has a crash point that may still fire (even while it stops)."""

    def start(self, crash: str | None = None) -> None:
        env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "PYTHONPATH": str(REPO),
               "SOTTOVOCE_DATA_DIR": str(self.profile.parent / "data")}
        env.pop("SOTTOVOCE_TEST_CRASH", None)
        if crash:
            env["SOTTOVOCE_TEST_CRASH"] = crash
        self.armed = bool(crash)
        with self.stderr.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.peer", str(self.profile), "--relay", self.url,
                 "--peer", PEER_OF[self.name], "--name", self.name, "--messages", str(self.messages),
                 "--log", str(self.log), "--status", str(self.status_file), "--seed", f"{self.seed}/{self.name}",
                 "--burst", str(self.burst), "--pause", str(self.pause)],
                cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.lifetimes += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> int | None:
        """The exit code of a process that ended by itself (counted when it was its own SIGKILL)."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.process = None
        if code == -signal.SIGKILL:
            self.self_killed += 1
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None
        self.killed += 1

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, and wait for a clean exit (SIGKILL after ``timeout``); 0 also when an armed crash point fired."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.process = None
            return STOP_TIMED_OUT
        self.process = None
        return 0 if code == -signal.SIGKILL and self.armed else code

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.status_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_lines(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split(" ", 3) for line in self.log.read_text(encoding="utf-8").splitlines() if line]

    def wait_for_line(self, word: str, after: int, timeout: float) -> bool:
        """Poll the log (every millisecond) until a line starting with ``word`` is appended after ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive:
            if not self.log.exists():
                time.sleep(0.001)
                continue
            with self.log.open("rb") as f:
                f.seek(after)
                if any(line.startswith(word.encode()) for line in f.read().splitlines()):
                    return True
            time.sleep(0.001)
        return False

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""


def complete(peers: dict[str, PeerProcess], sent: dict[str, int]) -> bool:
    """Every installation's status shows everything sent, received and copied, with an empty queue."""
    want = {"a1": {"OUT": sent["a1"], "IN": sent["bob"], "OUT_COPY": sent["a2"]},
            "a2": {"OUT": sent["a2"], "IN": sent["bob"], "OUT_COPY": sent["a1"]},
            "bob": {"OUT": sent["bob"], "IN": sent["a1"] + sent["a2"], "OUT_COPY": 0}}
    for name, p in peers.items():
        s = p.status()
        if s is None or not p.alive or p.process is None or s["pid"] != p.process.pid:
            return False  # not written by the running process (a restarted one may still be starting)
        if s["queued"] or any(s["counts"][k] != v for k, v in want[name].items()):
            return False
    return True


@dataclass
class Figures:
    """What :func:`verify` found (asserted on by the tests, printed for the README)."""

    sent: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicates_stored: int = 0
    duplicates_shown: int = 0
    committed_lost: int = 0
    acked_lost: int = 0
    out_of_order: int = 0
    rejections: collections.Counter[str] = field(default_factory=collections.Counter)
    integrity: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _index(text: str) -> int:
    return int(text.rsplit("#", 1)[1])


def _inversions(indices: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(indices) if b < a)


async def verify(tmp: Path, peers: dict[str, PeerProcess]) -> Figures:
    """Open every store (processes stopped) and check: exactly once everywhere, nothing committed or acknowledged
    lost, ``PRAGMA integrity_check`` ok; count what was shown twice and the rejections of every lifetime."""
    fig = Figures()
    stored: dict[str, list[Any]] = {}
    for name in peers:
        store = SqlCipherSessionStore.open_profile(tmp / name, PASSPHRASE, False, custody=CUSTODY)
        try:
            rows = store.database.query("PRAGMA integrity_check")
            fig.integrity[name] = ",".join(str(r[0]) for r in rows)
        finally:
            store.close()
        m = await Messenger.open(tmp / name, passphrase=PASSPHRASE, custody=CUSTODY)
        try:
            stored[name] = m.messages(PEER_OF[name], limit=None)
        finally:
            await m.close()
    warmup = {"hello alice", "hi from a1", "hi from a2"}
    sent_by: dict[str, dict[str, str]] = {}
    for name in peers:
        own = {m.id: m.text for m in stored[name] if m.direction == Direction.OUT and m.text not in warmup}
        sent_by[name] = own
        fig.sent[name] = len(own)
        indices = sorted(_index(t) for t in own.values())
        if indices != list(range(len(indices))):
            fig.problems.append(f"{name}: sent texts are not {name}#0..{len(indices) - 1} once each")
    expect = {"a1": ({**sent_by["bob"]}, {**sent_by["a2"]}), "a2": ({**sent_by["bob"]}, {**sent_by["a1"]}),
              "bob": ({**sent_by["a1"], **sent_by["a2"]}, {})}
    for name, peer in peers.items():
        want_in, want_copy = expect[name]
        got = collections.Counter((m.id, m.direction) for m in stored[name] if m.text not in warmup)
        fig.duplicates_stored += sum(n - 1 for n in got.values())
        for wanted, direction in ((want_in, Direction.IN), (want_copy, Direction.OUT_COPY)):
            missing = [i for i in wanted if got[(i, direction)] == 0]
            fig.lost += len(missing)
            if missing:
                fig.problems.append(f"{name}: {len(missing)} {direction.name} missing, e.g. {wanted[missing[0]]}")
            texts = {m.id: m.text for m in stored[name] if m.direction == direction}
            wrong = [i for i in wanted if i in texts and texts[i] != wanted[i]]
            if wrong:
                fig.problems.append(f"{name}: {len(wrong)} messages with altered text")
        for sender in ("a1", "a2", "bob"):
            order = [_index(m.text) for m in stored[name]
                     if m.text not in warmup and m.text.startswith(sender + "#") and m.direction != Direction.OUT]
            fig.out_of_order += _inversions(order)
        # the logs of every lifetime: what was shown, committed, acknowledged
        shown = collections.Counter(line[1] for line in peer.log_lines() if line[0] == "recv")
        fig.duplicates_shown += sum(n - 1 for n in shown.values())
        ids = {m.id: m for m in stored[name]}
        unknown = [i for i in shown if i not in ids]
        if unknown:
            fig.problems.append(f"{name}: showed {len(unknown)} messages that are not stored")
        lines = peer.log_lines()
        fig.committed_lost += sum(1 for line in lines if line[0] == "committed" and line[1] not in ids)
        acked = {line[1] for line in lines if line[0] == "acked"}
        fig.acked_lost += sum(1 for i in acked if i not in ids or ids[i].state.name == "QUEUED")
        lifetime: dict[str, int] = {}
        for line in [*lines, ["start"]]:
            if line[0] == "start":
                fig.rejections.update(lifetime)
                lifetime = {}
            elif line[0] == "rejections":
                lifetime = json.loads(" ".join(line[1:]))
    return fig


def run_async(coro: Any, timeout: float) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))
