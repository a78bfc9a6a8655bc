"""``sottovoce simulate``: seeded network simulations of whole accounts, checked against invariants.

For one seed, :class:`Simulation` builds N accounts of M installations (the first created, the others
recovered from the same phrase, then paired), lets them exchange K text messages in random 1:1
conversations through a :class:`~engine.simulation.network.SimulatedRelay` that drops, duplicates, delays and
reorders live deliveries, and meanwhile injects faults: installations crash (at once, at their next commit, or
between publishing and recording the acknowledgement) and restart from their store, the relay goes down,
time jumps past the 24 h prekey rotation, installations are wiped and the account recovered on a new one,
own installations are paired and unpaired. Every installation runs the real
:class:`~engine.sessions.engine.SessionEngine` on a :class:`~engine.store.memory_store.MemorySessionStore`.

Invariants, checked as events happen and once the network has settled:

* **delivered**: every message reaches every installation it was encrypted to (or, on the DH-header path,
  every installation of the peer account that existed when it was sent), unless that installation was wiped
  or the sender was wiped before publishing;
* **exactly once**: no installation shows a message twice, across duplicates, replays and restarts;
* **authentic**: a shown message is one that was sent, with its text, author and chat;
* **confined**: no installation outside the fan-out the sender chose (its enabled installations for own
  copies) ever shows the plaintext;
* **durable**: after a crash everything committed is still there, and every shown message is stored;
* **in sync**: no decryption ever fails for a reason other than a device the peer did not know yet
  (``device_not_found``), a sibling's message to a peer (``not_paired_device``) or another account's
  envelope: no session is ever desynchronized, let alone for more than one round trip;
* **keys erased**: once a Double Ratchet message is shown, its message key is no longer in the store.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from proto import encryption_pb2 as pb

from ..errors import SottovoceError
from ..identity import new_recovery_phrase
from ..protocol.bundle import NO_INSTALLATION_ID
from ..protocol.entropy import BytesPurpose
from ..protocol.state import Table
from ..protocol.waku import WakuMessage
from ..sessions.accounts import create_account
from ..sessions.engine import SessionEngine
from ..sessions.events import DeliveryChanged, EnvelopeRejected, Event, InstallationPaired, MessageReceived
from ..sessions.records import session_from_bytes, session_key
from ..store.memory_store import MemorySessionStore
from ..store.port import DeliveryState, Direction, OutboxItem, StoredMessage
from .entropy import SeededEntropy
from .network import Faults, LogEntry, SimulatedRelay

EPOCH_NS = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z: where simulated time starts."""
DAY_NS = 86_400 * 10**9
RETRY_NS = 2 * 10**9
EXPECTED_REJECTIONS = frozenset({"device_not_found", "not_paired_device", "not_for_us", "not_subscribed"})
"""Rejections a healthy network produces (see the module docstring); any other one is a desync."""
SETTLE_ROUNDS = 60
WORDS = ("ciao", "sotto", "voce", "piano", "forte", "lento", "presto", "dolce", "vivace", "largo")

_ACTIONS: tuple[tuple[str, int], ...] = (
    ("send", 30), ("deliver", 45), ("flush", 20), ("crash", 2), ("relay", 1), ("rotate", 1), ("recover", 1),
    ("pair", 2), ("unpair", 1), ("advertise", 1),
)


class SimulatedCrash(Exception):
    """The installation's process died (raised from inside a store commit, or just after a publish)."""


class InvariantViolation(Exception):
    """An invariant failed; ``str()`` names it and the event that revealed it."""


@dataclass
class Device:
    """One installation in the simulation; ``engine`` is None while it is down."""

    name: str
    account: int
    store: MemorySessionStore
    entropy: SeededEntropy
    engine: SessionEngine | None
    installation_id: str
    wiped: bool = False
    shown: Counter[str] = field(default_factory=Counter)
    sent: set[str] = field(default_factory=set)
    rejections: Counter[str] = field(default_factory=Counter)

    @property
    def up(self) -> bool:
        return self.engine is not None and not self.wiped


@dataclass
class Expectation:
    """What a sent message must do: who must see it, who may."""

    message_id: str
    text: str
    sender: str
    author: int
    peer: int
    recipients: set[str]
    copies: set[str]
    dh_path: bool
    envelope: bytes
    copy_envelope: bytes | None
    event: str
    paired: set[str] = field(default_factory=set)
    """The sender's siblings the simulation saw paired with it when it sent (kept apart from the engine)."""
    peer_lost: bool = False
    copy_lost: bool = False


@dataclass(frozen=True)
class SeedResult:
    """The outcome and figures of one seed."""

    seed: int
    failure: str | None
    counts: dict[str, int]
    seconds: float


class Simulation:
    """One seeded run; :meth:`run` returns its :class:`SeedResult`."""

    def __init__(self, seed: int, *, accounts: int = 3, devices: int = 2, messages: int = 200,
                 faults: Faults | None = None) -> None:
        if accounts < 2 or devices < 1 or messages < 0:
            raise ValueError("a simulation needs at least 2 accounts, 1 device each and no negative count")
        self.seed = seed
        self.n_accounts, self.n_devices, self.n_messages = accounts, devices, messages
        self.rng = random.Random(f"sottovoce-sim-{seed}")
        self.relay = SimulatedRelay(random.Random(f"sottovoce-relay-{seed}"), faults or Faults())
        self.now = EPOCH_NS
        self.devices: dict[str, Device] = {}
        self.by_installation: dict[str, Device] = {}
        self.identities: list[bytes] = []
        self.phrases: list[str] = []
        self.generation: Counter[int] = Counter()
        self.expectations: dict[str, Expectation] = {}
        self.paired: dict[str, set[str]] = {}
        """Device name -> the siblings it enabled, as the simulation saw pairing happen (its own model)."""
        self.ever_paired: dict[str, set[str]] = {}
        """Device name -> every sibling it ever enabled (a re-sent copy goes to the siblings paired then)."""
        self.counts: Counter[str] = Counter()
        self.event = "setup"

    def clock(self) -> int:
        return self.now

    # --- devices ----------------------------------------------------------------------------------------

    def _new_device(self, account: int) -> Device:
        number = self.generation[account]
        self.generation[account] += 1
        name = f"a{account}.d{number}"
        store = MemorySessionStore()
        entropy = SeededEntropy(f"sim-{self.seed}-{name}")
        created = create_account(store, entropy, self.now, recovery_phrase=self.phrases[account],
                                 display_name=f"simuser{account}", device_name=name)
        engine = SessionEngine(store, entropy, self.clock)
        device = Device(name, account, store, entropy, engine, created.account.installation_id)
        self.devices[name] = device
        self.by_installation[device.installation_id] = device
        return device

    def _account_devices(self, account: int) -> list[Device]:
        return [d for d in self.devices.values() if d.account == account and not d.wiped]

    def _up(self) -> list[Device]:
        return [d for d in self.devices.values() if d.up]

    def _crash(self, device: Device) -> None:
        device.engine = None
        self.relay.disconnect(device.name)

    def _restart(self, device: Device) -> None:
        device.engine = SessionEngine(device.store, device.entropy, self.clock)
        self.counts["restarts"] += 1
        self._check_durable(device)
        self._catch_up(device)

    def _engine(self, device: Device) -> SessionEngine:
        assert device.engine is not None
        return device.engine

    # --- network ----------------------------------------------------------------------------------------

    def _subscribers(self, content_topic: str) -> list[str]:
        return [d.name for d in self._up() if content_topic in self._engine(d).core.subscriptions()]

    def _flush(self, device: Device, *, crash_chance: float = 0.0) -> int:
        published = 0
        try:
            self._engine(device).tick()  # datasync: acks and retransmissions that fell due
            for item in self._engine(device).outbox_due():
                if not self._publish(device, item):
                    self._engine(device).publish_failed(item, RETRY_NS)
                    return published
                published += 1
                if self.rng.random() < crash_chance:
                    self.counts["crash_after_publish"] += 1
                    self._crash(device)  # published, but the acknowledgement was never recorded
                    return published
                self._engine(device).published(item)
        except SimulatedCrash:
            self._crashed_in_commit(device)
        return published

    def _publish(self, device: Device, item: OutboxItem) -> bool:
        envelope = WakuMessage.from_bytes(item.waku_message)
        return self.relay.publish(envelope.content_topic, item.waku_message, self._subscribers)

    def _deliver(self, device: Device, entry: LogEntry) -> None:
        """Hand ``entry`` to a running device, if it listens on its topic (as a relay subscription would)."""
        if not device.up:
            return
        engine = self._engine(device)
        if entry.content_topic not in engine.core.subscriptions():
            return
        try:
            events = engine.receive(entry.data)
        except SimulatedCrash:
            self._crashed_in_commit(device)
            return
        self._observe(device, events, entry)

    def _crashed_in_commit(self, device: Device) -> None:
        self.counts["crash_in_commit"] += 1
        self._crash(device)

    def _catch_up(self, device: Device) -> None:
        """Read the relay's whole log on the device's topics (a store query since its creation)."""
        seen_topics: set[str] = set()
        while device.up:
            topics = set(self._engine(device).core.subscriptions())
            if topics <= seen_topics:
                return
            fresh = topics - seen_topics
            seen_topics |= topics
            for entry in list(self.relay.log):
                if entry.content_topic in fresh:
                    self._deliver(device, entry)

    # --- invariants -------------------------------------------------------------------------------------

    def _fail(self, invariant: str, detail: str) -> InvariantViolation:
        return InvariantViolation(f"{invariant}: {detail} (at event {self.event})")

    def _observe(self, device: Device, events: list[Event], entry: LogEntry) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                self._check_received(device, event.message, entry)
            elif isinstance(event, DeliveryChanged) and event.state == DeliveryState.DELIVERED:
                self.counts["acknowledged"] += 1
            elif isinstance(event, InstallationPaired):
                self._paired(device.name, self.by_installation[event.installation_id].name)
            elif isinstance(event, EnvelopeRejected):
                device.rejections[event.code] += 1
                if event.code not in EXPECTED_REJECTIONS:
                    raise self._fail("in sync", f"{device.name} rejected an envelope: {event.code} ({event.reason})")

    def _check_received(self, device: Device, message: StoredMessage, entry: LogEntry) -> None:
        expected = self.expectations.get(message.message_id)
        if expected is None:
            raise self._fail("authentic", f"{device.name} showed a message nobody sent: {message.message_id}")
        device.shown[message.message_id] += 1
        self.counts["shown"] += 1
        if device.shown[message.message_id] > 1:
            raise self._fail("exactly once", f"{device.name} showed {message.message_id} twice")
        author = self.identities[expected.author]
        own_copy = device.account == expected.author
        chat = self.identities[expected.peer]
        if message.text != expected.text or message.author != author:
            raise self._fail("authentic", f"{device.name} showed {message.message_id} with other text or author")
        # Datasync re-sends a message until it is acknowledged, each time to the installations current then:
        # what a device may read is decided by the transmission it read, which names its recipients.
        encrypted_to = self._encrypted_to(device, entry)
        if own_copy:
            ever_paired = self.ever_paired.get(expected.sender, set())
            if message.direction != Direction.OUT_COPY or message.chat != chat or device.name not in ever_paired \
                    or device.installation_id not in encrypted_to:
                raise self._fail("confined", f"{device.name} showed a copy of {message.message_id} "
                                             "it was not paired for")
        elif device.account == expected.peer:
            if message.direction != Direction.IN or message.chat != author:
                raise self._fail("authentic", f"{device.name} filed {message.message_id} in the wrong chat")
            dh_path = NO_INSTALLATION_ID in encrypted_to
            if not dh_path and device.installation_id not in encrypted_to:
                raise self._fail("confined", f"{device.name} decrypted {message.message_id} not encrypted to it")
            if message.forward_secret == dh_path:
                raise self._fail("authentic", f"{device.name} reports the wrong forward secrecy for "
                                              f"{message.message_id}")
        else:
            raise self._fail("confined", f"{device.name} of another account showed {message.message_id}")
        if message.forward_secret:
            self._check_key_erased(device, entry)

    def _opened(self, device: Device, entry: LogEntry) -> tuple[pb.ProtocolMessage, bytes]:
        engine = self._engine(device)
        envelope = WakuMessage.from_bytes(entry.data)
        opened = envelope.open(engine.core.subscriptions()[envelope.content_topic])
        message = pb.ProtocolMessage()
        message.ParseFromString(opened.data)
        return message, opened.signer

    def _encrypted_to(self, device: Device, entry: LogEntry) -> set[str]:
        return set(self._opened(device, entry)[0].encrypted_message)

    def _check_key_erased(self, device: Device, entry: LogEntry) -> None:
        """The Double Ratchet message key of what was just shown must not be in the committed store."""
        message, signer = self._opened(device, entry)
        item = message.encrypted_message[device.installation_id]
        key = session_key(bytes(item.DR_header.id), signer, message.installation_id)
        record = device.store.record(Table.SESSIONS, key)
        if record is None:
            raise self._fail("durable", f"{device.name} shows a message of a session it did not store")
        skipped = session_from_bytes(key, record).ratchet.skipped
        if (bytes(item.DR_header.key), item.DR_header.n) in skipped:
            raise self._fail("keys erased", f"{device.name} still stores the key of a message it showed")

    def _check_durable(self, device: Device) -> None:
        for message_id in list(device.shown) + list(device.sent):
            if device.store.message(message_id) is None:
                raise self._fail("durable", f"{device.name} lost committed message {message_id} in a crash")

    def _check_settled(self) -> None:
        for expected in self.expectations.values():
            targets = ((expected.copies, expected.copy_lost), (expected.recipients, expected.peer_lost))
            for names, lost in targets:
                if lost:
                    continue
                for name in sorted(names):
                    device = self.devices[name]
                    if not device.wiped and device.shown[expected.message_id] != 1:
                        self.event = expected.event
                        raise self._fail("delivered", f"{name} never showed {expected.message_id}")
        for device in self.devices.values():
            if device.wiped:
                continue
            self._check_durable(device)
            if device.store.outbox():
                raise self._fail("delivered", f"{device.name} still has {len(device.store.outbox())} unsent")

    # --- actions ----------------------------------------------------------------------------------------

    def _send(self) -> None:
        senders = self._up()
        if not senders:
            return
        device = self.rng.choice(senders)
        peer = self.rng.choice([a for a in range(self.n_accounts) if a != device.account])
        number = len(self.expectations)
        text = f"m{number} {self.rng.choice(WORDS)} from {device.name} to a{peer}"
        self.event = f"send #{number} {device.name} -> a{peer}"
        try:
            sent = self._engine(device).send_text(self.identities[peer], text)
        except SimulatedCrash:
            self._crashed_in_commit(device)
            return
        device.sent.add(sent.message_id)
        paired = set(self.paired.get(device.name, ()))
        copies = {self.by_installation[i].name for i in sent.copies}
        if not copies <= paired:
            raise self._fail("confined", f"{device.name} sent a copy to unpaired {sorted(copies - paired)}")
        if sent.forward_secret:
            recipients = {self.by_installation[i].name for i in sent.recipients}
        else:
            recipients = {d.name for d in self._account_devices(peer)}
        self.expectations[sent.message_id] = Expectation(
            sent.message_id, text, device.name, device.account, peer, recipients,
            copies, not sent.forward_secret, sent.envelope, sent.copy_envelope, self.event, paired)
        self.counts["sent"] += 1
        self.counts["sent_without_forward_secrecy"] += not sent.forward_secret

    def _deliver_some(self) -> None:
        device = self.rng.choice([d for d in self.devices.values() if not d.wiped])
        if device.engine is None:
            self.event = f"restart {device.name}"
            self._restart(device)
            return
        for entry in self.relay.due(device.name, self.rng.randint(1, 8)):
            self.event = f"deliver #{entry.sequence} to {device.name}"
            self._deliver(device, entry)

    def _flush_some(self) -> None:
        up = self._up()
        if up:
            device = self.rng.choice(up)
            self.event = f"flush {device.name}"
            self._flush(device, crash_chance=0.01)

    def _inject_crash(self) -> None:
        up = self._up()
        if not up:
            return
        device = self.rng.choice(up)
        if self.rng.random() < 0.5:
            self.counts["crash"] += 1
            self._crash(device)
        else:
            self.counts["crash_armed"] += 1
            device.store.fail_next_commit(SimulatedCrash())

    def _toggle_relay(self) -> None:
        self.relay.up = not self.relay.up
        self.counts["relay_outages"] += not self.relay.up

    def _recover(self) -> None:
        account = self.rng.randrange(self.n_accounts)
        old = self.rng.choice(self._account_devices(account))
        self.event = f"wipe {old.name}, recover a{account}"
        unsent = {item.envelope_hash for item in old.store.outbox()}
        for expected in self.expectations.values():
            if expected.sender == old.name:
                expected.peer_lost |= expected.envelope in unsent
                expected.copy_lost |= expected.copy_envelope in unsent
        old.wiped = True
        self._crash(old)
        self.counts["recoveries"] += 1
        device = self._new_device(account)
        self._engine(device).advertise()
        self._catch_up(device)

    def _pair(self, enable: bool) -> None:
        up = self._up()
        if not up:
            return
        device = self.rng.choice(up)
        engine = self._engine(device)
        candidates = [i.installation_id for i in engine.devices()
                      if i.enabled != enable and not self.by_installation[i.installation_id].wiped]
        if not candidates:
            return
        target = self.rng.choice(sorted(candidates))
        self.event = f"{'pair' if enable else 'unpair'} {device.name} with {self.by_installation[target].name}"
        try:
            engine.pair(target) if enable else engine.unpair(target)
        except SimulatedCrash:
            self._crashed_in_commit(device)
            return
        siblings = self.paired.setdefault(device.name, set())
        if enable:
            self._paired(device.name, self.by_installation[target].name)
        else:
            siblings.discard(self.by_installation[target].name)
        self.counts["pairings" if enable else "unpairings"] += 1

    def _paired(self, device: str, sibling: str) -> None:
        self.paired.setdefault(device, set()).add(sibling)
        self.ever_paired.setdefault(device, set()).add(sibling)

    def _advertise(self) -> None:
        up = self._up()
        if up:
            device = self.rng.choice(up)
            self.event = f"advertise {device.name}"
            try:
                self._engine(device).advertise()
            except SimulatedCrash:
                self._crashed_in_commit(device)

    # --- run --------------------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Heal the network: relay up, every installation running, every outbox and log entry processed."""
        self.relay.up = True
        self.relay.drain_all()
        saved_faults, self.relay.faults = self.relay.faults, Faults(0.0, 0.0, 0.0, 0)
        try:
            for _ in range(SETTLE_ROUNDS):
                self.now += RETRY_NS  # time passes: rescheduled outbox items fall due
                log_size = len(self.relay.log)
                for device in self.devices.values():
                    if not device.wiped and device.engine is None:
                        self.event = f"settle: restart {device.name}"
                        self._restart(device)
                for device in self._up():
                    self.event = f"settle: flush {device.name}"
                    self._flush(device)
                for device in self._up():
                    for entry in self.relay.due(device.name, 1_000_000):
                        self.event = f"settle: deliver #{entry.sequence} to {device.name}"
                        self._deliver(device, entry)
                for device in self._up():
                    self.event = f"settle: catch up {device.name}"
                    self._catch_up(device)
                busy = any(d.store.outbox() for d in self.devices.values() if not d.wiped)
                down = any(d.engine is None for d in self.devices.values() if not d.wiped)
                if len(self.relay.log) == log_size and not busy and not down:
                    return
            raise self._fail("delivered", f"the network did not settle in {SETTLE_ROUNDS} rounds")
        finally:
            self.relay.faults = saved_faults

    def _setup(self) -> None:
        for account in range(self.n_accounts):
            words = SeededEntropy(f"sim-{self.seed}-phrase-{account}").random_bytes(16, BytesPurpose.RECOVERY_PHRASE)
            self.phrases.append(new_recovery_phrase(words))
            first = self._new_device(account)
            self.identities.append(self._engine(first).identity)
            for _ in range(self.n_devices - 1):
                self._new_device(account)
        for device in self._up():
            self._engine(device).advertise()
        self._settle()
        for account in range(self.n_accounts):
            first, *others = self._account_devices(account)
            for other in others:
                self.event = f"setup: pair {first.name} with {other.name}"
                self._engine(first).pair(other.installation_id)
                self._paired(first.name, other.name)
        for a in range(self.n_accounts):  # some contacts scanned each other's QR code, the others start by chat key
            for b in range(self.n_accounts):
                if a != b and self.rng.random() < 0.5:
                    bundle = self._engine(self._account_devices(b)[0]).own_bundle()
                    for device in self._account_devices(a):
                        self._engine(device).learn_bundle(bundle)
        self._settle()

    def run(self) -> SeedResult:
        started = time.perf_counter()
        failure = None
        actions: dict[str, Callable[[], None]] = {
            "send": self._send, "deliver": self._deliver_some, "flush": self._flush_some,
            "crash": self._inject_crash, "relay": self._toggle_relay, "rotate": self._rotate,
            "recover": self._recover, "pair": lambda: self._pair(True), "unpair": lambda: self._pair(False),
            "advertise": self._advertise,
        }
        names = [name for name, _ in _ACTIONS]
        weights = [weight for _, weight in _ACTIONS]
        try:
            self._setup()
            while self.counts["sent"] < self.n_messages:
                self.relay.tick += 1
                self.now += self.rng.randint(1, 3_000) * 1_000_000
                if not self.relay.up and self.rng.random() < 0.05:
                    self.relay.up = True
                actions[self.rng.choices(names, weights)[0]]()
            self.event = "settle"
            self._settle()
            self._check_settled()
        except InvariantViolation as violation:
            failure = str(violation)
        except SottovoceError as error:
            failure = f"no typed error escapes the engine: {error.code}: {error} (at event {self.event})"
        counts = dict(self.counts)
        counts.update({f"relay_{k}": v for k, v in self.relay.counts.items()})
        counts["envelopes"] = len(self.relay.log)
        return SeedResult(self.seed, failure, counts, time.perf_counter() - started)

    def _rotate(self) -> None:
        self.event = "clock +25 h"
        self.now += DAY_NS + DAY_NS // 24
        self.counts["rotations"] += 1
