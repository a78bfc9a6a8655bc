"""The NATS JetStream transport adapter.

Mapping: a 4-byte Waku topic ``t`` is the subject ``sottovoce.waku.<hex(t)>``; the NATS payload is the
serialized WakuMessage; header ``Nats-Msg-Id`` carries the message id so JetStream's duplicate window stores a
resent message once. One stream (``SOTTOVOCE``, subjects ``sottovoce.waku.>``, file storage, 30 days) keeps
the history, like a Waku store node.

On a relay cluster the stream should be replicated: a server URL may carry ``?replicas=N`` (for example
``nats://a:4222,nats://b:4222,nats://c:4222?replicas=3``); it sets :attr:`NatsSettings.replicas` for every
server of the list. The first client creates the stream with that many replicas, and a client asking for more
replicas than an existing stream has scales it up.

Reading (``history`` and ``subscribe``) uses our own ephemeral push consumers (ack none, flow control, idle
heartbeats, memory storage) filtered to the topics' subjects. A reader tracks the next stream sequence it
needs; when it sees a consumer-sequence gap, misses heartbeats, the consumer vanishes or the connection comes
back, it replaces the consumer starting at that sequence. So a reader never loses or repeats a message while
the stream keeps it, across reconnects, server restarts and cluster leader changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext, api

from engine.transport.errors import (
    InvalidEnvelope,
    PublishRejected,
    PublishTimeout,
    RelayUnavailable,
    StreamConfigConflict,
    TransportClosed,
    TransportError,
)
from engine.transport.port import (
    ConnectionState,
    Envelope,
    ReceivedEnvelope,
    StateListener,
    check_topic,
)

log = logging.getLogger(__name__)

MSG_ID_HEADER: Final = "Nats-Msg-Id"
_STATUS: Final = "Status"
_DESCRIPTION: Final = "Description"
_LAST_CONSUMER: Final = "Nats-Last-Consumer"
_CONSUMER_STALLED: Final = "Nats-Consumer-Stalled"
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class NatsSettings:
    """Connection and stream settings of :class:`NatsTransport`."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = "SOTTOVOCE"
    subject_prefix: str = "sottovoce.waku"
    replicas: int = 1
    max_age_s: float = 30 * 24 * 3600.0
    duplicate_window_s: float = 120.0
    publish_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    reconnect_wait_s: float = 0.5
    heartbeat_s: float = 1.0
    history_stall_s: float = 15.0
    start_timeout_s: float = 15.0
    client_name: str = "sottovoce"

    def __post_init__(self) -> None:
        servers, options = split_server_options(self.servers)
        if "replicas" in options:
            object.__setattr__(self, "replicas", options["replicas"])
        object.__setattr__(self, "servers", servers)
        if not 1 <= self.replicas <= 5:
            raise ValueError(f"stream replicas must be 1 to 5, not {self.replicas}")

    @property
    def stream_subjects(self) -> str:
        return f"{self.subject_prefix}.>"


SERVER_OPTIONS: Final = ("replicas",)
"""Options a server URL may carry as its query (``nats://host:4222?replicas=3``)."""


def split_server_options(servers: Iterable[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Server URLs without their query, and the options their queries held (``ValueError`` if unknown)."""
    plain: list[str] = []
    options: dict[str, int] = {}
    for server in servers:
        url, _, query = server.partition("?")
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if key not in SERVER_OPTIONS or not value.isdigit():
                raise ValueError(f"unknown relay URL option {key}={value!r} (known: {', '.join(SERVER_OPTIONS)})")
            options[key] = int(value)
        plain.append(url)
    return tuple(plain), options


def topic_subject(topic: bytes, prefix: str = "sottovoce.waku") -> str:
    """The NATS subject of a 4-byte Waku topic."""
    return f"{prefix}.{check_topic(topic).hex()}"


def subject_topic(subject: str) -> bytes:
    """The 4-byte Waku topic of a subject made by :func:`topic_subject`."""
    token = subject.rsplit(".", 1)[-1]
    try:
        return check_topic(bytes.fromhex(token))
    except ValueError as exc:
        raise InvalidEnvelope(f"not a topic subject: {subject}") from exc


@dataclass(frozen=True, slots=True)
class _AckMeta:
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    pending: int


def _ack_meta(reply: str) -> _AckMeta | None:
    """Parse a JetStream delivery reply subject ($JS.ACK...; v1 and v2 layouts), keeping ns precision."""
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    base = 2 if len(tokens) == 9 else 4  # v2 adds <domain>.<account hash> (and a trailing token)
    try:
        return _AckMeta(
            stream_seq=int(tokens[base + 3]),
            consumer_seq=int(tokens[base + 4]),
            timestamp_ns=int(tokens[base + 5]),
            pending=int(tokens[base + 6]),
        )
    except (ValueError, IndexError):
        return None


def _start_time(since_ns: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=since_ns // 1000)


def _unavailable(exc: BaseException) -> RelayUnavailable:
    return RelayUnavailable(f"relay unavailable ({type(exc).__name__}: {exc})".replace("\n", " "))


async def _reap(cancelled: asyncio.Future[Any]) -> None:
    """Wait for a task or future we cancelled, ignoring how it ended, but never swallowing a cancellation of
    the caller itself (``suppress(CancelledError)`` would, and the caller's task would then never stop)."""
    try:
        await cancelled
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        pass


# --- readers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FlowControl:
    reply: str


class _End:
    pass


_END: Final = _End()
_Item = ReceivedEnvelope | _FlowControl | _End | TransportError


class _Reader:
    """One logical ordered read of the stream, re-creating its consumer as needed."""

    def __init__(
        self,
        transport: NatsTransport,
        topics: frozenset[bytes],
        *,
        next_seq: int | None,
        since_ns: int = 0,
        history: bool,
    ) -> None:
        if not topics:
            raise InvalidEnvelope("no topics")
        self._t = transport
        self._subjects = sorted(topic_subject(t, transport.settings.subject_prefix) for t in topics)
        self._next_seq = next_seq
        self._since_ns = since_ns
        self._history = history
        self.cursor = 0
        self.handed = 0 if next_seq is None else next_seq - 1
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._gen = 0
        self._cseq = 0
        self._sub: CoreSubscription | None = None
        self._consumer: str | None = None
        self._last_activity = time.monotonic()
        self._down_since: float | None = None
        self._reset_wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self._held: _Item | None = None
        """A queue item that :meth:`take_ready` took out but may not handle (flow control, end, error)."""

    # life cycle

    async def start(self) -> None:
        """Create the first consumer and start supervising.

        Fails fast with :class:`RelayUnavailable` when not connected; while connected it retries for up to
        ``start_timeout_s`` (a cluster may be electing a leader) before giving up the same way.
        """
        js = self._t._require_js()
        deadline = time.monotonic() + self._t.settings.start_timeout_s
        while True:
            if not self._t._require_nc().is_connected:
                self._done = True
                raise RelayUnavailable("not connected to the relay")
            try:
                if self._history:
                    info = await js.stream_info(self._t.settings.stream)
                    self.cursor = info.state.last_seq
                    if self.cursor == 0:
                        self._finish()
                        return
                elif self._next_seq is None:
                    info = await js.stream_info(self._t.settings.stream)
                    self._next_seq = info.state.last_seq + 1
                    self.handed = info.state.last_seq
                await self._create()
                break
            except Exception as exc:
                await self._drop_consumer()
                retry = isinstance(exc, nats.errors.Error | TimeoutError | OSError)
                if not retry or time.monotonic() > deadline:
                    self._done = True
                    if isinstance(exc, TransportError):
                        raise
                    raise _unavailable(exc) from exc
                log.debug("reader start failed, retrying: %s", exc)
                await asyncio.sleep(0.25)
            except BaseException:
                self._done = True
                await self._drop_consumer()
                raise
        self._task = asyncio.create_task(self._supervise())
        self._t._readers.add(self)

    async def stop(self) -> None:
        if self._done and self._task is None:
            return
        self._done = True
        self._t._readers.discard(self)
        if self._task is not None:
            self._task.cancel()
            await _reap(self._task)
            self._task = None
        await self._drop_consumer()
        self._queue.put_nowait(_END)

    def _finish(self) -> None:
        self._done = True
        self._queue.put_nowait(_END)

    def _fail(self, error: TransportError) -> None:
        self._done = True
        self._queue.put_nowait(error)

    def reconnected(self) -> None:
        self._reset_wanted.set()

    # consumer management

    def _config(self, deliver: str) -> api.ConsumerConfig:
        s = self._t.settings
        cfg = api.ConsumerConfig(
            deliver_subject=deliver,
            ack_policy=api.AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=s.heartbeat_s,
            inactive_threshold=max(30.0, 10 * s.heartbeat_s),
            num_replicas=1,
            mem_storage=True,
            replay_policy=api.ReplayPolicy.INSTANT,
        )
        if len(self._subjects) == 1:
            cfg.filter_subject = self._subjects[0]
        else:
            cfg.filter_subjects = list(self._subjects)
        if self._next_seq is not None:
            cfg.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
            cfg.opt_start_seq = self._next_seq
        elif self._since_ns > 0:
            cfg.deliver_policy = api.DeliverPolicy.BY_START_TIME
            cfg.opt_start_time = _start_time(self._since_ns)
        else:
            cfg.deliver_policy = api.DeliverPolicy.ALL
        return cfg

    async def _create(self) -> None:
        nc, js = self._t._require_nc(), self._t._require_js()
        await self._drop_consumer()
        self._gen += 1
        gen = self._gen
        self._cseq = 0
        inbox = nc.new_inbox()

        async def on_msg(msg: Msg) -> None:
            self._on_msg(gen, msg)

        self._sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        info = await js.add_consumer(self._t.settings.stream, self._config(inbox))
        self._consumer = info.name
        self._last_activity = time.monotonic()
        if self._history and info.num_pending == 0 and gen == self._gen and self._cseq == 0:
            self._finish()

    async def _drop_consumer(self) -> None:
        sub, consumer = self._sub, self._consumer
        self._sub, self._consumer = None, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        nc = self._t._nc
        if consumer is not None and nc is not None and nc.is_connected and self._t._js is not None:
            js = self._t._js

            async def delete() -> None:
                with contextlib.suppress(Exception):
                    await js.delete_consumer(self._t.settings.stream, consumer)

            self._t._spawn(delete())

    async def _supervise(self) -> None:
        hb = self._t.settings.heartbeat_s
        backoff = 0.1
        while not self._done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reset_wanted.wait(), timeout=hb / 2)
            nc = self._t._nc
            now = time.monotonic()
            if nc is None or not nc.is_connected:
                self._down_since = self._down_since or now
                if self._history and now - self._down_since > self._t.settings.history_stall_s:
                    self._fail(RelayUnavailable("the relay went away during history"))
                    return
                continue
            self._down_since = None
            stale = now - self._last_activity > 3 * hb
            if not (self._reset_wanted.is_set() or stale):
                continue
            self._reset_wanted.clear()
            try:
                await self._create()
                backoff = 0.1
            except Exception as exc:
                log.debug("reader reset failed: %s", exc)
                self._reset_wanted.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    # deliveries

    def _on_msg(self, gen: int, msg: Msg) -> None:
        if gen != self._gen or self._done:
            return
        self._last_activity = time.monotonic()
        headers = msg.headers or {}
        status = headers.get(_STATUS)
        if status is not None and not msg.data:
            if status == "100":
                description = headers.get(_DESCRIPTION, "")
                if "Flow" in description and msg.reply:
                    self._queue.put_nowait(_FlowControl(msg.reply))
                else:
                    stalled = headers.get(_CONSUMER_STALLED)
                    if stalled and self._queue.empty():  # else the queued flow-control reply will do
                        self._t._spawn(self._t._publish_raw(stalled))
                    last = headers.get(_LAST_CONSUMER)
                    if last is not None and last.isdigit() and int(last) != self._cseq:
                        self._reset_wanted.set()
            else:  # 409 consumer deleted, leadership change...
                self._reset_wanted.set()
            return
        meta = _ack_meta(msg.reply) if msg.reply else None
        if meta is None:
            return
        if meta.consumer_seq != self._cseq + 1:
            self._gen += 1  # ignore the rest of this consumer's deliveries
            self._reset_wanted.set()
            return
        self._cseq = meta.consumer_seq
        if self._next_seq is not None and meta.stream_seq < self._next_seq:
            return
        if self._history and meta.stream_seq > self.cursor:
            self._finish()
            return
        self._next_seq = meta.stream_seq + 1
        received = ReceivedEnvelope(
            topic=subject_topic(msg.subject),
            payload=msg.data,
            msg_id=headers.get(MSG_ID_HEADER, ""),
            relay_time_ns=meta.timestamp_ns,
            sequence=meta.stream_seq,
        )
        if received.relay_time_ns >= self._since_ns:
            self._queue.put_nowait(received)
        if self._history and (meta.stream_seq >= self.cursor or meta.pending == 0):
            self._finish()

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        """The envelopes at the head of the queue, up to ``limit``, without waiting; answers a flow-control
        request on the way (everything before it is taken: as :meth:`next` would), stops at anything else.

        Answering here matters: a reader that takes bursts and does other work while none is ready (the inbox
        processes parked envelopes then) would otherwise leave the server waiting for the answer."""
        taken: list[ReceivedEnvelope] = []
        while len(taken) < limit and self._held is None and not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, ReceivedEnvelope):
                self.handed = item.sequence
                taken.append(item)
            elif isinstance(item, _FlowControl):
                self._t._spawn(self._t._publish_raw(item.reply))
            else:
                self._held = item  # for next(), which knows what to do with it
        return taken

    async def next(self) -> ReceivedEnvelope:
        while True:
            if self._held is not None:
                item, self._held = self._held, None
            elif self._done and self._queue.empty():
                raise StopAsyncIteration
            else:
                item = await self._queue.get()
            if isinstance(item, ReceivedEnvelope):
                self.handed = item.sequence
                return item
            if isinstance(item, _FlowControl):
                await self._t._publish_raw(item.reply)
                continue
            if isinstance(item, TransportError):
                await self.stop()
                raise item
            if self._task is not None or self._sub is not None:
                await self.stop()
            raise StopAsyncIteration


class NatsSubscription:
    """Live envelopes on some topics (see :class:`engine.transport.port.Subscription`)."""

    def __init__(self, reader: _Reader) -> None:
        self._reader = reader

    @property
    def last_sequence(self) -> int:
        return self._reader.handed

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]:
        return self

    async def __anext__(self) -> ReceivedEnvelope:
        return await self._reader.next()

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        return self._reader.take_ready(limit)

    async def close(self) -> None:
        await self._reader.stop()


class NatsHistory:
    """Stored envelopes since a time (see :class:`engine.transport.port.History`)."""

    def __init__(self, transport: NatsTransport, topics: frozenset[bytes], since_ns: int) -> None:
        self._reader = _Reader(transport, topics, next_seq=None, since_ns=since_ns, history=True)
        self._started = False

    @property
    def cursor(self) -> int:
        return self._reader.cursor

    def __aiter__(self) -> AsyncIterator[ReceivedEnvelope]:
        return self

    async def __anext__(self) -> ReceivedEnvelope:
        if not self._started:
            self._started = True
            await self._reader.start()
        return await self._reader.next()

    def take_ready(self, limit: int) -> list[ReceivedEnvelope]:
        return self._reader.take_ready(limit) if self._started else []

    async def aclose(self) -> None:
        await self._reader.stop()


# --- the transport -----------------------------------------------------------------------------------------


class NatsTransport:
    """:class:`~engine.transport.port.Transport` over nats-py and JetStream."""

    def __init__(self, settings: NatsSettings | None = None, **overrides: Any) -> None:
        base = settings or NatsSettings()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._state = ConnectionState.DISCONNECTED
        self._listeners: list[StateListener] = []
        self._readers: set[_Reader] = set()
        self._down = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- state --------------------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connected_url(self) -> str | None:
        url = self._nc.connected_url if self._nc else None
        return url.geturl() if url else None

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _set_state(self, state: ConnectionState) -> None:
        if state == self._state:
            return
        self._state = state
        if state == ConnectionState.CONNECTED:
            self._down.clear()
        else:
            self._down.set()
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:
                log.exception("connection state listener failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _require_nc(self) -> NatsClient:
        if self._state == ConnectionState.CLOSED:
            raise TransportClosed()
        if self._nc is None:
            raise RelayUnavailable("not connected")
        return self._nc

    def _require_js(self) -> JetStreamContext:
        self._require_nc()
        assert self._js is not None
        return self._js

    # nats-py callbacks

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        self._set_state(ConnectionState.DISCONNECTED)
        if self._nc is not None and not self._nc.is_closed:
            self._set_state(ConnectionState.RECONNECTING)

    async def _on_reconnected(self) -> None:
        self._set_state(ConnectionState.CONNECTED)
        for reader in list(self._readers):
            reader.reconnected()

    async def _on_closed(self) -> None:
        self._set_state(ConnectionState.CLOSED if self._closing else ConnectionState.DISCONNECTED)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats: %s: %s", type(exc).__name__, exc)

    # --- port ---------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._state == ConnectionState.CLOSED:
            raise TransportClosed()
        if self._nc is not None:
            return
        s = self.settings
        self._set_state(ConnectionState.CONNECTING)
        nc = NatsClient()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=list(s.servers),
                    name=s.client_name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=s.reconnect_wait_s,  # type: ignore[arg-type]
                    connect_timeout=max(1, int(s.connect_timeout_s / 2)),
                    ping_interval=5,
                    max_outstanding_pings=2,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                    error_cb=self._on_error,
                ),
                timeout=s.connect_timeout_s,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await self._abandon(nc)
            raise RelayUnavailable(f"cannot reach the relay at {', '.join(s.servers)}") from exc
        self._nc = nc
        self._js = nc.jetstream(timeout=s.publish_timeout_s)
        try:
            await self._ensure_stream(deadline=time.monotonic() + max(s.connect_timeout_s, 10.0))
        except BaseException:
            self._nc, self._js = None, None
            await self._abandon(nc)
            raise
        self._set_state(ConnectionState.CONNECTED)

    async def _abandon(self, nc: NatsClient) -> None:
        """Drop a connection that failed to come up; back to DISCONNECTED, ``connect`` may be retried."""
        self._closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), timeout=5)
        self._closing = False
        self._set_state(ConnectionState.DISCONNECTED)

    async def _ensure_stream(self, deadline: float) -> None:
        """Create the stream if missing; accept an existing one if it can do the job."""
        s, js = self.settings, self._require_js()
        wanted = api.StreamConfig(
            name=s.stream,
            subjects=[s.stream_subjects],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            max_age=s.max_age_s,
            duplicate_window=s.duplicate_window_s,
            num_replicas=s.replicas,
            discard=api.DiscardPolicy.OLD,
        )
        while True:
            try:
                try:
                    info = await js.stream_info(s.stream)
                except nats.js.errors.NotFoundError:
                    await js.add_stream(wanted)
                    return
                self._check_stream(info.config)
                await self._scale_up(info.config)
                return
            except StreamConfigConflict:
                raise
            except (nats.errors.Error, TimeoutError) as exc:
                # No JetStream leader yet (cluster forming, server starting): retry until the deadline.
                if time.monotonic() > deadline:
                    raise _unavailable(exc) from exc
                await asyncio.sleep(0.25)

    async def _scale_up(self, config: api.StreamConfig) -> None:
        """Give an existing stream the replicas asked for, if it has fewer (a cluster that grew)."""
        wanted = self.settings.replicas
        if (config.num_replicas or 1) >= wanted:
            return
        try:
            await self._require_js().update_stream(dataclasses.replace(config, num_replicas=wanted))
            log.info("stream %s now has %d replicas", self.settings.stream, wanted)
        except nats.js.errors.APIError as exc:  # e.g. fewer servers than replicas: keep the stream as it is
            log.warning("stream %s keeps %s replica(s): %s", self.settings.stream, config.num_replicas,
                        exc.description)

    def _check_stream(self, config: api.StreamConfig) -> None:
        s = self.settings
        subjects = config.subjects or []
        if s.stream_subjects not in subjects and ">" not in subjects:
            raise StreamConfigConflict(f"stream {s.stream} does not carry {s.stream_subjects}")
        if config.retention not in (None, api.RetentionPolicy.LIMITS, "limits"):
            raise StreamConfigConflict(f"stream {s.stream} uses {config.retention} retention, need limits")
        if not config.duplicate_window:
            raise StreamConfigConflict(f"stream {s.stream} has no duplicate window")
        if config.sealed:
            raise StreamConfigConflict(f"stream {s.stream} is sealed")

    async def close(self) -> None:
        if self._state == ConnectionState.CLOSED:
            return
        self._closing = True
        for reader in list(self._readers):
            await reader.stop()
        if self._tasks:  # let consumer deletions reach the relay, briefly
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for task in list(self._tasks):
            task.cancel()
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=5)
        self._set_state(ConnectionState.CLOSED)

    async def publish(self, envelope: Envelope) -> None:
        nc, js = self._require_nc(), self._require_js()
        if not nc.is_connected or self._state != ConnectionState.CONNECTED:
            raise RelayUnavailable("not connected to the relay")
        s = self.settings
        request = asyncio.ensure_future(
            js.publish(
                topic_subject(envelope.topic, s.subject_prefix),
                envelope.payload,
                timeout=s.publish_timeout_s,
                stream=s.stream,
                headers={MSG_ID_HEADER: envelope.msg_id},
            )
        )
        down = asyncio.ensure_future(self._down.wait())
        try:
            await asyncio.wait({request, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
        if not request.done():
            request.cancel()
            await _reap(request)
            raise RelayUnavailable("lost the relay connection while publishing")
        try:
            request.result()
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            if not nc.is_connected:
                raise RelayUnavailable("lost the relay connection while publishing") from exc
            raise PublishTimeout() from exc
        except (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError) as exc:
            raise RelayUnavailable("no relay store is answering (stream leader missing?)") from exc
        except nats.js.errors.APIError as exc:
            if exc.code == 503 or (exc.code or 0) >= 500:
                raise _unavailable(exc) from exc
            raise PublishRejected(f"the relay refused the message: {exc.description}") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.StaleConnectionError, OSError) as exc:
            raise _unavailable(exc) from exc
        except nats.errors.Error as exc:
            raise _unavailable(exc) from exc

    async def _publish_raw(self, subject: str) -> None:
        nc = self._nc
        if nc is not None and nc.is_connected:
            with contextlib.suppress(Exception):
                await nc.publish(subject)

    async def subscribe(self, topics: Iterable[bytes], *, after_sequence: int | None = None) -> NatsSubscription:
        wanted = frozenset(check_topic(t) for t in topics)
        next_seq = None if after_sequence is None else after_sequence + 1
        reader = _Reader(self, wanted, next_seq=next_seq, history=False)
        await reader.start()
        return NatsSubscription(reader)

    def history(self, topics: Iterable[bytes], since_ns: int) -> NatsHistory:
        return NatsHistory(self, frozenset(check_topic(t) for t in topics), since_ns)

    async def stream_last_sequence(self) -> int:
        """The stream's last sequence (diagnostics, tests)."""
        try:
            info = await self._require_js().stream_info(self.settings.stream)
        except TransportError:
            raise
        except Exception as exc:
            raise _unavailable(exc) from exc
        return info.state.last_seq
