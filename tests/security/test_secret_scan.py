"""No secret outside the encrypted database: a whole CLI scenario, then a scan of everything it left behind.

The scenario (the ``sottovoce`` CLI as separate processes, each logging at DEBUG to its own file, stderr and
stdout captured, ``TMPDIR`` pointed at a folder of the test, the embedded relay in a private data folder):
two accounts from known recovery phrases (alice recovers hers, bob's is printed by ``init``), a contact
request by QR code and its acceptance, messages both ways, a second installation of alice recovered from
the phrase and paired by QR, a wrong passphrase, and a malformed contact code. Then in this process,
with logging at DEBUG to a file: typed errors for a wrong passphrase, an almost-right phrase, bad codes.

Secrets looked for, as text, raw bytes, hex and base64: both recovery phrases and their BIP39 seeds, the
identity private keys, every signed prekey, X3DH shared key, negotiated-topic secret and ratchet key (root,
chains, ratchet private keys, skipped message keys) read back from the three stores, the three database keys,
the passphrase, and the message texts. Where: every log file, every stderr, every stdout except the one
place each secret is meant for (the phrase on ``init``'s stdout, texts on ``listen``/``history``'s), the
typed errors' ``str``/``repr``/traceback, the temporary folder, every file of the profile folders (database,
WAL and SHM included), the embedded relay's folder, and the QR images.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mnemonic import Mnemonic

from engine.errors import SottovoceError
from engine.identity import identity_from_phrase
from engine.identity.mnemonic import phrase_seed
from engine.keyring import KeyCustody
from engine.sessions.records import load_account, load_state
from engine.store.sqlcipher_store import SqlCipherSessionStore
from engine.transport.relay import EmbeddedRelay
from tests.integration.nats_fixtures import requires_nats

pytestmark = [requires_nats, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "Tweedledum and Tweedledee 1871"
WRONG_PASSPHRASE = "Tweedledee and Tweedledum 1872"
TEXTS = {
    "request": "Bob here: the one with the tea tray",
    "a->b": "The password is not swordfish, it is jabberwock",
    "b->a": "Off with their heads, said the Queen of Hearts",
    "b->a2": "Curiouser and curiouser cried Alice to her twin",
    "crash": "Down the rabbit hole the process went, mid-sentence",
}
LOGGED_CLI = ("import logging, sys; logging.basicConfig(level=logging.DEBUG, filename=sys.argv.pop(1), "
              "format='%(asctime)s %(name)s %(levelname)s %(message)s'); "
              "from app.cli import main; sys.exit(main(sys.argv[1:]))")


@dataclass
class Run:
    """One CLI process: its arguments, output, and which secrets its stdout may show."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    may_show: frozenset[str] = frozenset()


@dataclass
class Scenario:
    root: Path
    runs: list[Run] = field(default_factory=list, repr=False)
    errors: list[BaseException] = field(default_factory=list, repr=False)
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    """name -> secret; ``phrase:*`` and ``text:*`` names are the ones a stdout may be allowed to show."""

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def snapshot(self) -> Path:
        """The profile folders as the CLI left them, before this test opened them (WAL of a killed process)."""
        return self.root / "snapshot"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def out(self) -> Path:
        return self.root / "out"


class Cli:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.env = {**os.environ, "SOTTOVOCE_PASSPHRASE": PASSPHRASE, "SOTTOVOCE_DATA_DIR": str(scenario.data),
                    "TMPDIR": str(scenario.tmp), "PYTHONPATH": str(REPO)}
        self.env.pop("SOTTOVOCE_TRANSPORT", None)

    def argv(self, profile: str, *args: str) -> list[str]:
        log = self.scenario.logs / f"{len(self.scenario.runs):02d}-{profile}-{args[0]}.log"
        return [sys.executable, "-c", LOGGED_CLI, str(log), "--profile", str(self.scenario.profiles / profile),
                *args]

    def __call__(self, profile: str, *args: str, stdin: str | None = None, ok: bool = True,
                 may_show: frozenset[str] = frozenset(), env: dict[str, str] | None = None) -> Run:
        done = subprocess.run(self.argv(profile, *args), input=stdin, capture_output=True, text=True, timeout=90,
                              check=False, env={**self.env, **(env or {})})
        run = Run([profile, *args], done.returncode, done.stdout, done.stderr, may_show)
        self.scenario.runs.append(run)
        if ok:
            assert done.returncode == 0, f"{run.args}: {done.stderr}"
        return run


def broken(phrase: str) -> str:
    """``phrase`` with its last word replaced so that the checksum fails (words of the list, wrong phrase)."""
    words = Mnemonic("english")
    head = phrase.rsplit(" ", 1)[0]
    return next(f"{head} {w}" for w in words.wordlist if not words.check(f"{head} {w}"))


def _texts(*keys: str) -> frozenset[str]:
    return frozenset(f"text:{k}" for k in keys)


def _play(scenario: Scenario) -> None:
    for folder in (scenario.profiles, scenario.tmp, scenario.logs, scenario.out):
        folder.mkdir(parents=True)
    cli = Cli(scenario)
    words = Mnemonic("english")
    alice_phrase = words.generate(128)
    scenario.secrets["phrase:alice"] = alice_phrase.encode()

    alice_key = cli("alice", "init", "--name", "Alice Liddell", "--device-name", "rabbit-hole", "--recover",
                    stdin=alice_phrase + "\n").stdout.split()[2]
    bob_init = cli("bob", "init", "--name", "Bobby Tables", "--device-name", "drop-table", may_show=frozenset(
        {"phrase:bob"}))
    bob_phrase = bob_init.stdout.splitlines()[1].removeprefix("recovery phrase: ")
    assert words.check(bob_phrase)
    scenario.secrets["phrase:bob"] = bob_phrase.encode()
    bob_key = bob_init.stdout.split()[2]

    cli("alice", "code", "--qr", str(scenario.out / "alice-code.png"))
    cli("bob", "contacts", "add", "--qr", str(scenario.out / "alice-code.png"), "--name", "alice")
    cli("bob", "contacts", "request", "alice", TEXTS["request"])
    assert TEXTS["request"] in cli("alice", "contacts", "requests", may_show=_texts("request")).stdout
    cli("alice", "contacts", "accept", bob_key, "--name", "bob")
    cli("alice", "send", "bob", TEXTS["a->b"])
    assert TEXTS["a->b"] in cli("bob", "listen", "--count", "1", "--timeout", "60", may_show=_texts("a->b")).stdout
    cli("bob", "send", "alice", TEXTS["b->a"])
    heard = cli("alice", "listen", "--json", "--count", "1", "--timeout", "60", may_show=_texts("b->a")).stdout
    assert json.loads(heard)["text"] == TEXTS["b->a"]

    cli("alice2", "init", "--name", "Alice Liddell", "--device-name", "looking-glass", "--recover",
        stdin=alice_phrase + "\n")
    cli("alice2", "devices", "code", "--qr", str(scenario.out / "alice2-pairing.png"))
    cli("alice", "devices", "pair", "--qr", str(scenario.out / "alice2-pairing.png"))
    cli("alice2", "sync")
    cli("bob", "send", "alice", TEXTS["b->a2"])
    cli("alice2", "sync")
    history = cli("alice2", "history", "bob", "--json", may_show=_texts("b->a2")).stdout
    assert TEXTS["b->a2"] in [json.loads(line)["text"] for line in history.splitlines()]

    wrong = cli("alice", "whoami", ok=False, env={"SOTTOVOCE_PASSPHRASE": WRONG_PASSPHRASE})
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1
    code = cli("bob", "code").stdout.strip()
    tampered = code[:-12] + ("A" if code[-12] != "A" else "B") + code[-11:]
    for bad in (tampered, "SOTTOVOCE:CONTACT:V1:" + "Zm9v" * 20, alice_phrase):
        refused = cli("bob", "contacts", "add", "--code", bad, "--name", "mallory", ok=False)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    refused = cli("bob", "init", "--name", "Bobby Again", "--recover", stdin=broken(alice_phrase) + "\n", ok=False)
    assert refused.returncode == 1
    _killed_listen(scenario, cli)
    _in_process_errors(scenario, alice_phrase)
    _collect_secrets(scenario, {"alice": alice_phrase, "bob": bob_phrase}, alice_key)


def _killed_listen(scenario: Scenario, cli: Cli) -> None:
    """bob's ``listen`` is SIGKILLed after a message: its WAL and SHM stay on disk as after a crash. The
    profile folders are copied (modes kept) before anything here opens them again and checkpoints the WAL."""
    listen = subprocess.Popen(cli.argv("bob", "listen", "--json", "--timeout", "90"), env=cli.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # never hangs the test
    try:
        cli("alice", "send", "bob", TEXTS["crash"])
        assert listen.stdout is not None
        assert json.loads(listen.stdout.readline())["text"] == TEXTS["crash"]
        listen.send_signal(signal.SIGKILL)
        listen.wait(10)
        scenario.runs.append(Run(["bob", "listen", "(killed)"], listen.returncode, listen.stdout.read(),
                                 listen.stderr.read() if listen.stderr else "", _texts("crash")))
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()
    shutil.copytree(scenario.profiles, scenario.snapshot)
    assert (scenario.snapshot / "bob" / "sottovoce.db-wal").is_file()


def _in_process_errors(scenario: Scenario, phrase: str) -> None:
    """Typed errors raised here with logging at DEBUG into a file of the scenario."""
    from engine.codes import parse_contact_code
    from engine.messenger import Messenger

    handler = logging.FileHandler(scenario.logs / "in-process.log")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        attempts = [
            lambda: Messenger.open(scenario.profiles / "alice", passphrase=WRONG_PASSPHRASE),
            lambda: Messenger.create(scenario.profiles / "eve", display_name="Eve Online",
                                     recovery_phrase=broken(phrase), passphrase=PASSPHRASE),
            lambda: Messenger.create(scenario.profiles / "eve", display_name="Eve Online",
                                     recovery_phrase=phrase + " extra", passphrase=PASSPHRASE),
        ]
        import asyncio

        for attempt in attempts:
            try:
                asyncio.run(attempt())
            except SottovoceError as exc:
                scenario.errors.append(exc)
            else:
                raise AssertionError("a bad input was accepted")
        for text in ("SOTTOVOCE:CONTACT:V1:" + "Zm9v" * 20, phrase, "SOTTOVOCE:CONTACT:V1:!!"):
            try:
                parse_contact_code(text, 0)
            except SottovoceError as exc:
                scenario.errors.append(exc)
        assert len(scenario.errors) == 6
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _collect_secrets(scenario: Scenario, phrases: dict[str, str], alice_key: str) -> None:
    secrets = scenario.secrets
    secrets["passphrase"] = PASSPHRASE.encode()
    for key, text in TEXTS.items():
        secrets[f"text:{key}"] = text.encode()
    for name, phrase in phrases.items():
        seed = phrase_seed(phrase)
        secrets[f"seed:{name}"] = seed
        secrets[f"identity:{name}"] = identity_from_phrase(phrase).chat_key.private
    custody = KeyCustody()
    for name in ("alice", "alice2", "bob"):
        folder = scenario.profiles / name
        secrets[f"database key:{name}"] = custody.load_key(folder, PASSPHRASE).key
        store = SqlCipherSessionStore.open_profile(folder, PASSPHRASE)
        try:
            account = load_account(store)
            assert account is not None
            state = load_state(store, account)
        finally:
            store.close()
        assert account.identity.private == secrets[f"identity:{name.rstrip('2')}"]
        for i, prekey in enumerate(state.own_prekeys):
            secrets[f"prekey:{name}:{i}"] = prekey.key.private
        for i, (peer, secret) in enumerate(state.shared_secrets.items()):
            secrets[f"negotiated secret:{name}:{i}"] = secret
            assert peer
        for i, session in enumerate(state.sessions.values()):
            ratchet = session.ratchet
            secrets[f"x3dh shared key:{name}:{i}"] = session.shared_key
            secrets[f"root key:{name}:{i}"] = ratchet.root_key
            secrets[f"ratchet private key:{name}:{i}"] = ratchet.sending_key.private
            for chain in ("sending_chain", "receiving_chain"):
                value = getattr(ratchet, chain)
                if value:
                    secrets[f"{chain}:{name}:{i}"] = value
            for j, (message_key, _) in enumerate(ratchet.skipped.values()):
                secrets[f"skipped key:{name}:{i}:{j}"] = message_key
    kinds = {name.split(":")[0] for name in secrets}
    assert {"prekey", "x3dh shared key", "root key", "ratchet private key", "sending_chain", "receiving_chain",
            "database key", "negotiated secret"} <= kinds, kinds  # the scan is not vacuous
    assert alice_key.startswith("zQ3")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    played = Scenario(tmp_path_factory.mktemp("secret-scan"))
    umask = os.umask(0o022)  # the usual one, inherited by the CLI processes
    try:
        _play(played)
        yield played
    finally:
        os.umask(umask)
        EmbeddedRelay(played.data).stop()


def forms(secret: bytes) -> list[bytes]:
    """A secret as it could leak: as is, hex (either case), base64 (standard and URL-safe), and repr."""
    found = [secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret),
             base64.urlsafe_b64encode(secret).rstrip(b"=")]
    with contextlib.suppress(UnicodeDecodeError):
        if secret.decode().isprintable():
            return [secret]
    found.append(repr(secret).encode()[2:-1])
    return found


def leaks(blob: bytes, secrets: dict[str, bytes], allowed: frozenset[str] = frozenset()) -> list[str]:
    return [name for name, secret in secrets.items() if name not in allowed
            and any(form in blob for form in forms(secret))]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_no_secret_on_any_stderr_or_stdout_but_where_it_is_meant_to_be(scenario: Scenario) -> None:
    assert len(scenario.runs) >= 20
    found = []
    for run in scenario.runs:
        found += [f"{run.args[:3]} stderr: {n}" for n in leaks(run.stderr.encode(), scenario.secrets)]
        found += [f"{run.args[:3]} stdout: {n}" for n in leaks(run.stdout.encode(), scenario.secrets, run.may_show)]
    assert found == []
    shown = [run for run in scenario.runs if scenario.secrets["phrase:bob"].decode() in run.stdout]
    assert [run.args[:2] for run in shown] == [["bob", "init"]]  # the phrase is shown once, by init


def test_no_secret_in_any_log_at_debug(scenario: Scenario) -> None:
    logs = files_under(scenario.logs)
    assert len(logs) >= len(scenario.runs)
    assert sum(p.stat().st_size for p in logs) > 0  # DEBUG logging did record something
    assert {str(p.name): leaks(p.read_bytes(), scenario.secrets) for p in logs} == {p.name: [] for p in logs}


def test_typed_errors_name_no_secret(scenario: Scenario) -> None:
    found = {}
    for exc in scenario.errors:
        text = "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])
        found[repr(type(exc))] = leaks(text.encode(), scenario.secrets)
        assert len(str(exc).splitlines()) == 1
    assert all(not names for names in found.values()), found


def test_no_secret_in_temporary_files_profile_folders_relay_folder_or_qr_images(scenario: Scenario) -> None:
    places = [*files_under(scenario.tmp), *files_under(scenario.snapshot), *files_under(scenario.profiles),
              *files_under(scenario.data), *files_under(scenario.out)]
    names = {p.name for p in places}
    assert {"profile.json", "sottovoce.db", "sottovoce.db-wal", "sottovoce.db-shm", "alice-code.png"} <= names
    assert any(p.is_relative_to(scenario.data) for p in places)  # the embedded relay's store and log
    assert {str(p.relative_to(scenario.root)): leaks(p.read_bytes(), scenario.secrets) for p in places} == {
        str(p.relative_to(scenario.root)): [] for p in places}


def test_profile_folders_are_0700_and_every_file_in_them_0600(scenario: Scenario) -> None:
    for name in ("alice", "alice2", "bob"):
        folder = scenario.snapshot / name
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.rglob("*")}
        assert modes and modes == dict.fromkeys(modes, "0o600")
    left = {p.name for p in (scenario.snapshot / "bob").iterdir()}
    assert {"sottovoce.db", "sottovoce.db-wal", "sottovoce.db-shm"} <= left  # as a crash leaves them


def test_qr_images_written_on_request_keep_the_users_umask(scenario: Scenario) -> None:
    """``code --qr FILE``/``devices code --qr FILE`` write where the user asked, like any file they save:
    the mode follows their umask (022 here). The codes are public (a bundle, a chat key, an installation
    id and name), so nothing private is widened."""
    for png in ("alice-code.png", "alice2-pairing.png"):
        assert stat.S_IMODE((scenario.out / png).stat().st_mode) == 0o644


def test_the_embedded_relays_folder_is_private(scenario: Scenario) -> None:
    """The embedded relay's folders (data folder, JetStream store of every envelope) and files (log, config,
    lock, port file, nats-server's own store files) are the user's only, whatever the umask (022 here)."""
    entries = [scenario.data, *scenario.data.rglob("*")]
    loose = {str(p.relative_to(scenario.root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in entries
             if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}
    assert any(p.is_file() for p in entries) and any(p.is_dir() for p in entries[1:])
