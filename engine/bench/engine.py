"""``sottovoce bench engine``: messages through the whole engine on a real relay, beside same-run floors.

Two profiles (Alice and Bob, passphrase-keyed SQLCipher profiles in a temporary directory) run in this
process on one event loop, connected to a ``nats-server`` this benchmark starts on 127.0.0.1 with its store in
the same temporary directory. Each message goes all the way: ``send_text`` (encrypt, Waku envelope, one store
transaction with the outbox item), the outbox pump (durable store, JetStream publish, acknowledgement, one
transaction), the receiver's inbox (JetStream push consumer, decrypt, one transaction), and the
``MessageReceived`` event. A message's latency runs from the ``send_text`` call to that event.

* **one way**: Alice sends N messages to Bob as fast as the engine takes them, each ``send_text`` awaited
  before the next (as a person's app sends), with at most :data:`WINDOW` sent but not yet received (so the
  figure is a sustained rate and the latency includes that much queueing); chain steps of the Double Ratchet
  only.
* **concurrent**: the same, but sent as a bot sends a burst: each message a task of its own, at most
  :data:`CONCURRENT_WINDOW` sent but not yet received. Sends made together share store transactions
  (:mod:`engine.runtime.sends`), as the receiver's bursts already do.
* **ping-pong**: N messages, each sent once the previous one was received, alternately by Alice and Bob; each
  decrypt performs a DH ratchet step. The latency here is one message alone in the system.

Floors, measured in the same run (their sum is the floor of the profile's time per message):

* *transport*: bare JetStream with ``nats-py``, no engine: payloads of the mean size of the engine's envelopes,
  published with the same ``Nats-Msg-Id`` de-duplication header to a file stream, the same number of
  acknowledgements in flight as the outbox pump allows and the same receive window (one way), or each one
  published once the previous one was received (ping-pong), and received by an ordered push consumer;
* *ratchet*: the bare primitive calls of one message's encrypt + decrypt (``engine.bench.ratchet``: its burst
  floor for one way, its ping-pong floor for ping-pong);
* *commit*: one SQLCipher transaction writing one envelope-sized row, on a database opened as the store opens
  its own (same key handling, pragmas and durability setting).

The ratio is ``time per message / (transport + ratchet + commit)``: the engine runs three store transactions
per message (send, acknowledgement, receive) and makes the store durable once per published batch, so its cost
over the floors is mostly those and Python's per-message work. Rounds alternate between the engine and the
floors; the best round of each counts.

The report also gives the least any engine of this protocol could take per message: the floor with the store
commits its scenario needs (:func:`commits_needed`) plus the protocol's two signatures and two recoveries, which
no floor holds. Where that is over 1.5 times the floor, no engine meets the ratio target there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import coincurve

from ..keyring import KeyCustody, ScryptParams
from ..messenger import MessageReceived, Messenger
from ..runtime.outbox import MAX_IN_FLIGHT
from ..store.database import Database
from ..store.sqlcipher_store import SqlCipherSessionStore
from ..transport.nats import MSG_ID_HEADER, NatsSettings, NatsTransport
from ..transport.port import Envelope
from ..transport.relay import LOOPBACK, RelayConfig, RelayProcess, free_port
from .ratchet import _floor_burst, _floor_pingpong
from .store import _text

WINDOW = 256
"""One way: messages sent but not yet received, at most (the sender waits below it)."""
CONCURRENT_WINDOW = 32
"""Concurrent: messages sent (or being sent) but not yet received, at most."""
PASSPHRASE = "sottovoce-bench"
_CUSTODY = KeyCustody(scrypt=ScryptParams(n=2**10, r=8, p=1), environ={})
"""The profiles' key custody: a cheap scrypt (only opening is faster; the database is the same)."""
_FLOOR_STREAM = "SOTTOVOCE_BENCH_FLOOR"
_FLOOR_SUBJECTS = "sottovoce-bench-floor"
_RECEIVE_TIMEOUT_S = 60.0


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True)
class Timing:
    """One profile run (or its transport floor): N messages, wall time, and each message's latency."""

    messages: int
    elapsed_s: float
    p50_s: float
    p99_s: float

    @classmethod
    def of(cls, elapsed_s: float, latencies: list[float]) -> Timing:
        return cls(len(latencies), elapsed_s, percentile(latencies, 0.50), percentile(latencies, 0.99))

    @property
    def per_message_us(self) -> float:
        return self.elapsed_s / self.messages * 1e6

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed_s


def _best(timings: list[Timing]) -> Timing:
    return min(timings, key=lambda t: t.elapsed_s)


@dataclass(frozen=True)
class ProfileFigures:
    """One profile: the engine's best round and its floors (microseconds per message)."""

    name: str
    engine: Timing
    transport: Timing
    ratchet_floor_us: float
    commit_floor_us: float
    commits_needed: float = 1.0
    """Store commits per message that any engine needs here (the floor counts one): see :func:`commits_needed`."""

    @property
    def key(self) -> str:
        """The prefix of this profile's JSON figures (``one_way``, ``ping_pong``, ``concurrent``)."""
        return self.name.replace("-", "_").replace(" ", "_")

    @property
    def floor_us(self) -> float:
        return self.transport.per_message_us + self.ratchet_floor_us + self.commit_floor_us

    def least_us(self, signatures_us: float) -> float:
        """The least any engine of this protocol could take per message: the floors with the commits it needs,
        and the protocol's own signatures, which no floor holds."""
        return self.floor_us + (self.commits_needed - 1) * self.commit_floor_us + signatures_us

    @property
    def ratio(self) -> float:
        return self.engine.per_message_us / self.floor_us

    def report_lines(self) -> list[str]:
        e, t = self.engine, self.transport
        return [
            f"  {self.name + ':':10} {e.rate:8,.0f} msg/s  {e.per_message_us:8.1f} us/msg   latency p50 "
            f"{e.p50_s * 1e3:7.2f} ms  p99 {e.p99_s * 1e3:7.2f} ms   ratio {self.ratio:.2f}x (target <= 1.50x)",
            f"  {'':10} floor {self.floor_us:8.1f} us/msg = transport {t.per_message_us:.1f} ({t.rate:,.0f} msg/s, "
            f"p50 {t.p50_s * 1e3:.2f} ms, p99 {t.p99_s * 1e3:.2f} ms) + ratchet {self.ratchet_floor_us:.1f} "
            f"+ commit {self.commit_floor_us:.1f}",
        ]

    def as_dict(self) -> dict[str, float | int]:
        e, t, p = self.engine, self.transport, self.key
        return {
            f"{p}_messages": e.messages,
            f"{p}_msg_per_s": round(e.rate, 1),
            f"{p}_us_per_msg": round(e.per_message_us, 2),
            f"{p}_p50_ms": round(e.p50_s * 1e3, 3),
            f"{p}_p99_ms": round(e.p99_s * 1e3, 3),
            f"{p}_transport_floor_us": round(t.per_message_us, 2),
            f"{p}_transport_floor_msg_per_s": round(t.rate, 1),
            f"{p}_transport_floor_p50_ms": round(t.p50_s * 1e3, 3),
            f"{p}_transport_floor_p99_ms": round(t.p99_s * 1e3, 3),
            f"{p}_ratchet_floor_us": round(self.ratchet_floor_us, 2),
            f"{p}_commit_floor_us": round(self.commit_floor_us, 2),
            f"{p}_floor_us": round(self.floor_us, 2),
            f"{p}_ratio": round(self.ratio, 4),
        }


@dataclass(frozen=True)
class EngineFigures:
    """Both profiles, the envelope size and the durability figures of the run."""

    one_way: ProfileFigures
    ping_pong: ProfileFigures
    concurrent: ProfileFigures
    """One way again, the sends made concurrently (a bot's burst), :data:`CONCURRENT_WINDOW` in flight."""
    envelope_bytes: float
    """Mean size of the Waku envelopes the engine published."""
    fsync_us: float
    """One ``fsync`` of the store's write-ahead log after a commit (what making a batch durable costs)."""
    durable_per_message: float
    """Times the store was made durable per message published (the pump's batches)."""
    rounds: int
    signatures_us: float
    """The protocol's own signatures per message, in no floor: two made (Waku payload, metadata wrapper) and
    two recovered, secp256k1 through coincurve. (The bundle's is made and recovered once per burst.)"""
    two_processes: Timing | None = None
    """With ``two_processes``: the one-way scenario again, Bob's profile in a process of its own."""

    @property
    def profiles(self) -> tuple[ProfileFigures, ProfileFigures, ProfileFigures]:
        return self.one_way, self.ping_pong, self.concurrent

    def report_lines(self) -> list[str]:
        lines = [
            f"engine: two profiles on an embedded relay (127.0.0.1), whole engine per message (encrypt, envelope, "
            f"outbox commit, publish, receive, decrypt, store commit); mean envelope {self.envelope_bytes:.0f} B; "
            f"best of {self.rounds} rounds; one way awaits each send, concurrent makes them together "
            f"(at most {CONCURRENT_WINDOW} in flight: group commit)",
        ]
        for profile in self.profiles:
            lines.extend(profile.report_lines())
        lines.append(
            f"  durability: store made durable {self.durable_per_message:.3f} times per message published "
            f"(one WAL fsync {self.fsync_us:.0f} us); one way target >= 1,000 msg/s"
        )
        lines.append(
            f"  not in any floor: the protocol's 2 signatures and 2 recoveries per message (Waku payload, metadata "
            f"wrapper; the bundle's once per burst) {self.signatures_us:.1f} us"
        )
        lines.append(
            "  least any engine could take (the floor with the commits each scenario needs, one way 1, ping-pong 2: "
            f"the receiver's before it replies, concurrent 1/{CONCURRENT_WINDOW}; plus those signatures): "
            + ", ".join(f"{p.name} {p.least_us(self.signatures_us):.1f} us = "
                        f"{p.least_us(self.signatures_us) / p.floor_us:.2f}x the floor" for p in self.profiles)
        )
        lines.append(
            "  extra figure, not the issue's ratio: with those signatures added to the floor, ratio "
            + ", ".join(f"{p.name} {p.engine.per_message_us / (p.floor_us + self.signatures_us):.2f}x"
                        for p in self.profiles)
        )
        if self.two_processes is not None:
            t = self.two_processes
            lines.append(
                f"  extra figure, not the issue's: one way with Bob in a process of his own (as two users' apps run): "
                f"{t.rate:,.0f} msg/s  {t.per_message_us:.1f} us/msg  latency p50 {t.p50_s * 1e3:.2f} ms  "
                f"p99 {t.p99_s * 1e3:.2f} ms"
            )
        return lines

    def as_dict(self) -> dict[str, float | int]:
        figures: dict[str, float | int] = {"rounds": self.rounds, "envelope_bytes": round(self.envelope_bytes, 1),
                                           "fsync_us": round(self.fsync_us, 2),
                                           "durable_per_message": round(self.durable_per_message, 4),
                                           "signatures_us": round(self.signatures_us, 2)}
        for profile in self.profiles:
            figures.update(profile.as_dict())
            figures[f"{profile.key}_least_us"] = round(profile.least_us(self.signatures_us), 2)
        if self.two_processes is not None:
            t = self.two_processes
            figures.update({"two_processes_one_way_msg_per_s": round(t.rate, 1),
                            "two_processes_one_way_us_per_msg": round(t.per_message_us, 2),
                            "two_processes_one_way_p50_ms": round(t.p50_s * 1e3, 3),
                            "two_processes_one_way_p99_ms": round(t.p99_s * 1e3, 3)})
        return figures


# --- the engine -----------------------------------------------------------------------------------------------


class _CountingTransport(NatsTransport):
    """The Messenger's transport, counting what it publishes (sizes for the floor)."""

    def __init__(self, settings: NatsSettings) -> None:
        super().__init__(settings)
        self.published = 0
        self.published_bytes = 0

    async def publish(self, envelope: Envelope) -> None:
        await super().publish(envelope)
        self.published += 1
        self.published_bytes += len(envelope.payload)


class _Arrivals:
    """When each message id was received (as a ``MessageReceived`` event), and waits for some."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self.changed = asyncio.Event()

    def arrived(self, message_id: str, at: float | None = None) -> None:
        """``message_id`` was received at ``at`` (``time.perf_counter()``, a system-wide clock; now if None)."""
        now = time.perf_counter() if at is None else at
        self.at.setdefault(message_id, now)
        waiter = self._waiters.pop(message_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)
        self.changed.set()

    async def room(self, sent: int, window: int, *, received_before: int = 0) -> None:
        """Return once fewer than ``window`` of ``sent`` messages are still to arrive (counting the arrivals
        after the first ``received_before``)."""
        while sent - (len(self.at) - received_before) >= window:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), _RECEIVE_TIMEOUT_S)

    async def wait(self, message_id: str) -> float:
        if message_id in self.at:
            return self.at[message_id]
        future = self._waiters.setdefault(message_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(future, _RECEIVE_TIMEOUT_S)


async def _listen(messenger: Messenger, arrivals: _Arrivals) -> None:
    async with messenger.events() as events:
        async for event in events:
            if isinstance(event, MessageReceived):
                arrivals.arrived(event.message.id)


class _Pair:
    """Alice and Bob, contacts of each other, started on the relay at ``url``."""

    def __init__(self, alice: Messenger, bob: Messenger, transports: tuple[_CountingTransport, _CountingTransport],
                 stores: tuple[SqlCipherSessionStore, SqlCipherSessionStore]) -> None:
        self.alice, self.bob = alice, bob
        self.transports = transports
        self.stores = stores
        self.arrivals = {id(alice): _Arrivals(), id(bob): _Arrivals()}
        self._tasks: list[asyncio.Task[None]] = []
        self.rng = random.Random("sottovoce-bench-engine")

    @classmethod
    async def open(cls, directory: Path, url: str) -> _Pair:
        messengers: list[Messenger] = []
        transports: list[_CountingTransport] = []
        stores: list[SqlCipherSessionStore] = []
        for name in ("alice", "bob"):
            profile = directory / name
            made = await Messenger.create(profile, display_name=f"{name.title()} Bench", device_name="bench",
                                          passphrase=PASSPHRASE, custody=_CUSTODY, transport_url=url)
            await made.close()  # opened again on a store of our own, to count how often it is made durable
            stores.append(SqlCipherSessionStore.open_profile(profile, PASSPHRASE, custody=_CUSTODY))
            transports.append(_CountingTransport(NatsSettings(servers=(url,), client_name=f"bench-{name}")))
            messengers.append(Messenger(stores[-1], transport=transports[-1]))
        alice, bob = messengers
        pair = cls(alice, bob, (transports[0], transports[1]), (stores[0], stores[1]))
        alice.add_contact(bob.contact_code(), "bob")
        bob.add_contact(alice.contact_code(), "alice")
        for messenger in (alice, bob):
            pair._tasks.append(asyncio.create_task(_listen(messenger, pair.arrivals[id(messenger)])))
            await messenger.start()
        for messenger in (alice, bob):
            await messenger.sync(timeout=30)
        return pair

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for messenger in (self.alice, self.bob):
            await messenger.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def texts(self, messages: int) -> list[str]:
        """The next ``messages`` chat texts, made before the clock starts (the engine is timed, not them)."""
        return [_text(self.rng) for _ in range(messages)]

    async def one_way(self, messages: int) -> Timing:
        return await send_one_way(self.alice, "bob", self.arrivals[id(self.bob)], self.texts(messages))

    async def concurrent(self, messages: int) -> Timing:
        return await send_one_way(self.alice, "bob", self.arrivals[id(self.bob)], self.texts(messages),
                                  window=CONCURRENT_WINDOW, concurrent=True)

    async def ping_pong(self, messages: int) -> Timing:
        latencies: list[float] = []
        texts = self.texts(messages)
        start = time.perf_counter()
        for index, text in enumerate(texts):
            sender, receiver, to = ((self.alice, self.bob, "bob") if index % 2 == 0
                                    else (self.bob, self.alice, "alice"))
            at = time.perf_counter()
            message_id = (await sender.send_text(to, text)).id
            latencies.append(await self.arrivals[id(receiver)].wait(message_id) - at)
        return Timing.of(time.perf_counter() - start, latencies)

    @property
    def envelope_bytes(self) -> float:
        count = sum(t.published for t in self.transports)
        return sum(t.published_bytes for t in self.transports) / max(1, count)


async def send_one_way(sender: Messenger, to: str, arrivals: _Arrivals, texts: list[str], *, window: int = WINDOW,
                       concurrent: bool = False) -> Timing:
    """Send ``texts`` to ``to`` as fast as the engine takes them, at most ``window`` not yet in ``arrivals``;
    each send awaited before the next, or with ``concurrent`` each one a task of its own."""
    sent: dict[str, float] = {}
    sending: list[asyncio.Task[None]] = []
    received_before = len(arrivals.at)

    async def send(text: str) -> None:
        at = time.perf_counter()
        sent[(await sender.send_text(to, text)).id] = at

    start = time.perf_counter()
    for issued, text in enumerate(texts):
        await arrivals.room(issued, window, received_before=received_before)
        if concurrent:
            sending.append(asyncio.create_task(send(text)))
        else:
            await send(text)
            await asyncio.sleep(0)  # let the pump and the inboxes run between sends, as they would in an app
    await asyncio.gather(*sending)
    last = 0.0
    for message_id in sent:
        last = max(last, await arrivals.wait(message_id))
    return Timing.of(last - start, [arrivals.at[m] - at for m, at in sent.items()])


# --- the floors -------------------------------------------------------------------------------------------------


async def _transport_floor(url: str, size: int, messages: int, *, pingpong: bool, window: int = WINDOW) -> Timing:
    """Bare JetStream: publish ``messages`` payloads of ``size`` bytes and receive them (see the module doc)."""
    import nats
    from nats.aio.msg import Msg
    from nats.js import api

    nc = await nats.connect(url, name="bench-floor")
    try:
        js = nc.jetstream(timeout=NatsSettings().publish_timeout_s)
        await js.add_stream(api.StreamConfig(name=_FLOOR_STREAM, subjects=[f"{_FLOOR_SUBJECTS}.>"],
                                             storage=api.StorageType.FILE, duplicate_window=120.0))
        nonce = os.urandom(4).hex()
        subjects = [f"{_FLOOR_SUBJECTS}.{nonce}.{side}" for side in ("a", "b")]
        arrivals = _Arrivals()

        async def on_message(msg: Msg) -> None:
            arrivals.arrived(msg.data[:16].decode())

        subscriptions = [await js.subscribe(subject, cb=on_message, ordered_consumer=True,
                                            deliver_policy=api.DeliverPolicy.NEW) for subject in subjects]
        try:
            if pingpong:
                return await _floor_pingpong_run(js, subjects, size, messages, arrivals)
            return await _floor_one_way_run(js, subjects, size, messages, arrivals, window)
        finally:
            for subscription in subscriptions:
                await subscription.unsubscribe()
            await js.delete_stream(_FLOOR_STREAM)
    finally:
        await nc.close()


def _payload(index: int, size: int, nonce: bytes) -> tuple[str, bytes]:
    key = f"{index:016x}"
    return key, (key.encode() + nonce).ljust(size, b"\x5a")


async def _floor_one_way_run(js: object, subjects: list[str], size: int, messages: int, arrivals: _Arrivals,
                             window: int) -> Timing:
    from nats.js import JetStreamContext

    assert isinstance(js, JetStreamContext)
    nonce = os.urandom(16)
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    sent: dict[str, float] = {}
    publishes: set[asyncio.Task[object]] = set()

    async def publish(key: str, payload: bytes) -> None:
        try:
            await js.publish(subjects[0], payload, headers={MSG_ID_HEADER: key + nonce.hex()})
        finally:
            in_flight.release()

    start = time.perf_counter()
    for index in range(messages):
        await arrivals.room(len(sent), window)
        await in_flight.acquire()
        key, payload = _payload(index, size, nonce)
        sent[key] = time.perf_counter()
        task: asyncio.Task[object] = asyncio.create_task(publish(key, payload))
        publishes.add(task)
        task.add_done_callback(publishes.discard)
    last = 0.0
    for key in sent:
        last = max(last, await arrivals.wait(key))
    await asyncio.gather(*publishes)
    return Timing.of(last - start, [arrivals.at[k] - at for k, at in sent.items()])


async def _floor_pingpong_run(js: object, subjects: list[str], size: int, messages: int,
                              arrivals: _Arrivals) -> Timing:
    from nats.js import JetStreamContext

    assert isinstance(js, JetStreamContext)
    nonce = os.urandom(16)
    latencies: list[float] = []
    start = time.perf_counter()
    for index in range(messages):
        key, payload = _payload(index, size, nonce)
        at = time.perf_counter()
        await js.publish(subjects[index % 2], payload, headers={MSG_ID_HEADER: key + nonce.hex()})
        latencies.append(await arrivals.wait(key) - at)
    return Timing.of(time.perf_counter() - start, latencies)


def _commit_floor(directory: Path, size: int, commits: int) -> float:
    """Microseconds of one SQLCipher transaction writing one ``size``-byte row (the store's own pragmas)."""
    path = directory / f"commit-floor-{os.urandom(4).hex()}.db"
    database = Database.open(path, os.urandom(32), create=True)
    try:
        value = os.urandom(size)
        start = time.perf_counter()
        for index in range(commits):
            with database.transaction() as tx:
                tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"floor-{index}", value))
        return (time.perf_counter() - start) / commits * 1e6
    finally:
        database.close()


def _signatures_us(messages: int) -> float:
    """Two recoverable signatures made and two recovered, per message, as the protocol needs them."""
    signer = coincurve.PrivateKey(os.urandom(32))
    digests = [os.urandom(32) for _ in range(2)]
    start = time.perf_counter_ns()
    for _ in range(messages):
        for digest in digests:
            signature = signer.sign_recoverable(digest, hasher=None)
            coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return (time.perf_counter_ns() - start) / messages / 1000


def _fsync_us(directory: Path, size: int, rounds: int = 50) -> float:
    """Microseconds of one fsync of a WAL file just appended to (a page and its frame header)."""
    path = directory / "fsync-floor"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = os.urandom(max(size, 4096 + 24))
        total = 0.0
        for _ in range(rounds):
            os.write(fd, block)
            start = time.perf_counter()
            os.fsync(fd)
            total += time.perf_counter() - start
        return total / rounds * 1e6
    finally:
        os.close(fd)
        path.unlink()


# --- the run --------------------------------------------------------------------------------------------------


async def _measure(directory: Path, url: str, messages: int, repeat: int,
                   progress: Callable[[str], None]) -> EngineFigures:
    pair = await _Pair.open(directory, url)
    try:
        await pair.ping_pong(10)  # warm-up: X3DH, then both ratchets going
        await pair.one_way(min(messages, 100))
        size = round(pair.envelope_bytes)
        engine: dict[str, list[Timing]] = {"one way": [], "ping-pong": [], "concurrent": []}
        transport: dict[str, list[Timing]] = {"one way": [], "ping-pong": [], "concurrent": []}
        ratchet = {"one way": float("inf"), "ping-pong": float("inf"), "concurrent": float("inf")}
        commit = float("inf")
        published_before = sum(t.published for t in pair.transports)
        durable_before = _durable_count(pair)
        runs: dict[str, tuple[Callable[[int], Awaitable[Timing]], bool, Callable[[int], float]]] = {
            "one way": (pair.one_way, False, _floor_burst),
            "ping-pong": (pair.ping_pong, True, _floor_pingpong),
            "concurrent": (pair.concurrent, False, _floor_burst),
        }
        for round_ in range(repeat):
            for name, (profile, pingpong, ratchet_floor) in runs.items():
                progress(f"round {round_ + 1}/{repeat}: {name}")
                engine[name].append(await profile(messages))
                window = CONCURRENT_WINDOW if name == "concurrent" else WINDOW
                transport[name].append(await _transport_floor(url, size, messages, pingpong=pingpong, window=window))
                ratchet[name] = min(ratchet[name], ratchet_floor(messages))
            commit = min(commit, _commit_floor(directory, size, messages))
        published = sum(t.published for t in pair.transports) - published_before
        durable = _durable_count(pair) - durable_before
        fsync = _fsync_us(directory, size)
        signatures = min(_signatures_us(messages) for _ in range(repeat))
        profiles = {name: ProfileFigures(name, _best(engine[name]), _best(transport[name]), ratchet[name], commit,
                                         commits_needed(name))
                    for name in runs}
        return EngineFigures(profiles["one way"], profiles["ping-pong"], profiles["concurrent"], pair.envelope_bytes,
                             fsync,
                             durable / max(1, published), repeat, signatures)
    finally:
        await pair.close()


def commits_needed(scenario: str) -> float:
    """Store commits per message any engine needs in ``scenario``: a message is committed before it is published
    (else a crash could send a ratchet key twice) and before it is shown. One way, each awaited send commits
    alone and the receiver can share one commit among a burst; ping-pong, the receiver also commits before it
    replies; concurrent, the sends share one commit among :data:`CONCURRENT_WINDOW`."""
    return {"ping-pong": 2.0, "concurrent": 1 / CONCURRENT_WINDOW}.get(scenario, 1.0)


def _durable_count(pair: _Pair) -> int:
    return sum(store.database.durable_syncs for store in pair.stores)


def run(messages: int = 2000, repeat: int = 3, progress: Callable[[str], None] | None = None, *,
        two_processes: bool = False) -> EngineFigures:
    """Run both profiles ``repeat`` times (best round counts) in a temporary directory, deleted afterwards.

    With ``two_processes``, then the one-way scenario again with Bob in a process of his own
    (:mod:`engine.bench.two_processes`), an extra figure."""
    if messages < 1 or repeat < 1:
        raise ValueError("messages and rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sottovoce-bench-engine-") as name:
        directory = Path(name)
        config = RelayConfig(store_dir=directory / "relay" / "store", host=LOOPBACK, port=free_port(),
                             server_name="sottovoce-bench")
        relay = RelayProcess(config, directory / "relay")
        relay.start()
        report = progress or (lambda _: None)
        try:
            figures = asyncio.run(_measure(directory, relay.url, messages, repeat, report))
            if two_processes:
                from .two_processes import one_way_two_processes

                timing = asyncio.run(one_way_two_processes(directory, relay.url, messages, repeat, report))
                figures = dataclasses.replace(figures, two_processes=timing)
            return figures
        finally:
            relay.stop()
