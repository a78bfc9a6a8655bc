"""MVDS datasync as status-go uses it for 1:1 (spec §5): Payload wrap/unwrap, ids, and a BATCH-mode node.

The node is sans-I/O: the caller feeds received Payloads and calls :meth:`MvdsNode.tick` every 300 ms
(status-go's ``DatasyncTicker``); each tick returns the Payloads to encrypt and send, one per peer. Epochs
are tick counts. A message appended during epoch ``e`` goes out at the tick of ``e + 1``; acks queued by a
receive go out at the next tick, in the same Payload as any message due then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from google.protobuf.message import DecodeError

from proto.datasync_pb2 import Message as MvdsMessage
from proto.datasync_pb2 import Payload

from ...crypto.hashing import keccak256, sha256
from ...crypto.keys import compress
from .errors import InvalidArgument, MalformedDatasync

MESSAGE_ID_PREFIX = b"MESSAGE_ID"
TICK_MS = 300
BACKOFF_TICKS = 90  # backoffInterval 30 × 3 ticks per second
JITTER_TICKS = 30
MAX_SEND_COUNT = 15  # the state is dropped once its send count exceeds this: 16 transmissions


@lru_cache(maxsize=256)  # the same pairs of public keys, on every datasync message
def group_id(key_a: bytes, key_b: bytes) -> bytes:
    """1:1 group id: ``keccak256(C(k1) ‖ C(k2))``, keys ordered by X coordinate (spec §5.3)."""
    first, second = sorted((compress(key_a), compress(key_b)), key=lambda c: c[1:])
    return keccak256(first, second)


def message_id(group: bytes, timestamp: int, body: bytes) -> bytes:
    """MVDS id: ``SHA256("MESSAGE_ID" ‖ group_id ‖ LE64(timestamp) ‖ body)`` (spec §5.4)."""
    return sha256(MESSAGE_ID_PREFIX, group, (timestamp & (2**64 - 1)).to_bytes(8, "little"), body)


@dataclass(frozen=True, slots=True)
class DatasyncMessage:
    """One MVDS Message: the AMM ``body`` carried in ``group`` with the sender's queue time (seconds)."""

    group_id: bytes
    timestamp: int
    body: bytes

    @property
    def id(self) -> bytes:
        return message_id(self.group_id, self.timestamp, self.body)

    def to_proto(self) -> MvdsMessage:
        return MvdsMessage(group_id=self.group_id, timestamp=self.timestamp, body=self.body)


@dataclass(frozen=True, slots=True)
class DatasyncPayload:
    """A decoded MVDS Payload (the encryption-layer plaintext of a datasync message)."""

    acks: tuple[bytes, ...] = ()
    offers: tuple[bytes, ...] = ()
    requests: tuple[bytes, ...] = ()
    messages: tuple[DatasyncMessage, ...] = ()
    group_offers: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()

    @property
    def is_valid(self) -> bool:
        """status-go ``Payload.IsValid``: at least one of the five fields is non-empty."""
        return bool(self.acks or self.offers or self.requests or self.messages or self.group_offers)


def encode_payload(payload: DatasyncPayload) -> bytes:
    """Serialize a Payload as status-go does (field-number order; no oneof involved)."""
    message = Payload(acks=payload.acks, offers=payload.offers, requests=payload.requests,
                      messages=[m.to_proto() for m in payload.messages])
    for group, ids in payload.group_offers:
        offer = message.group_offers.add()
        offer.group_id = group
        offer.message_ids.extend(ids)
    return message.SerializeToString()


def wrap(messages: Sequence[DatasyncMessage], acks: Iterable[bytes] = ()) -> bytes:
    """The Payload carrying ``messages`` and ``acks``."""
    return encode_payload(DatasyncPayload(acks=tuple(acks), messages=tuple(messages)))


def unwrap(plaintext: bytes) -> DatasyncPayload:
    """Decode an MVDS Payload; raise MalformedDatasync unless status-go would treat it as datasync.

    Like status-go: the parse must succeed and one of fields 5001–5005 must be present with its wire type
    (a known field with another wire type is skipped as unknown). An AMM never qualifies.
    """
    message = Payload()
    try:
        message.ParseFromString(plaintext)
    except DecodeError as exc:
        raise MalformedDatasync("cannot parse datasync payload") from exc
    payload = DatasyncPayload(
        acks=tuple(bytes(a) for a in message.acks),
        offers=tuple(bytes(o) for o in message.offers),
        requests=tuple(bytes(r) for r in message.requests),
        messages=tuple(DatasyncMessage(bytes(m.group_id), int(m.timestamp), bytes(m.body))
                       for m in message.messages),
        group_offers=tuple((bytes(o.group_id), tuple(bytes(i) for i in o.message_ids))
                           for o in message.group_offers),
    )
    if not payload.is_valid:
        raise MalformedDatasync()
    return payload


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """What the receive pipeline continues with after the MVDS probe (spec §5.6, §10.1 step 5)."""

    payload: DatasyncPayload | None
    """the Payload, or None when the plaintext is not datasync"""
    bodies: tuple[bytes, ...]
    """AMM candidates: each MVDS message body, else the plaintext itself (status-go's quirk: also for an
    ack-only Payload, whose bytes then parse as an empty unsigned AMM that the Messenger skips)"""


def application_bodies(plaintext: bytes) -> Unwrapped:
    """Split a decrypted plaintext into AMM bodies as status-go's ``unwrapDatasyncMessage`` does."""
    try:
        payload = unwrap(plaintext)
    except MalformedDatasync:
        return Unwrapped(None, (plaintext,))
    if payload.messages:
        return Unwrapped(payload, tuple(m.body for m in payload.messages))
    return Unwrapped(payload, (plaintext,))


# --- the node --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _SyncState:
    group_id: bytes
    message_id: bytes
    peer: bytes
    send_epoch: int
    send_count: int = 0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A Payload due for ``peer`` at this tick: encrypt ``plaintext`` to that peer and send it."""

    peer: bytes
    payload: DatasyncPayload
    plaintext: bytes


@dataclass(frozen=True, slots=True)
class Received:
    """What one received Payload did to the node."""

    acked: tuple[bytes, ...]
    """MVDS ids the peer acknowledged that we were still sending (delivery confirmations)"""
    new_messages: tuple[DatasyncMessage, ...]
    """messages not seen before, for the application layer"""
    duplicates: tuple[DatasyncMessage, ...]
    """messages already stored (acked again, not processed again)"""


@dataclass(slots=True)
class _Outbox:
    acks: list[bytes] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    messages: list[DatasyncMessage] = field(default_factory=list)


def default_backoff(send_count: int, jitter: int) -> int:
    """Ticks until the next transmission after the ``send_count``-th one: ``90·2^(k−1) + jitter``."""
    return int(BACKOFF_TICKS * 2 ** (send_count - 1) + jitter)


class MvdsNode:
    """A status-go MVDS node in BATCH mode, without clock, randomness or I/O of its own.

    ``jitter`` returns the random part of each retransmission delay, an int in ``[0, 30)`` (status-go uses
    ``math/rand``); pass a seeded source. Peers are opaque ids (status-go uses the peer's ``U(IK)``).
    """

    def __init__(self, *, epoch: int = 0, jitter: Callable[[], int] = lambda: 0) -> None:
        self._epoch = epoch
        self._jitter = jitter
        self._store: dict[bytes, DatasyncMessage] = {}
        self._states: dict[tuple[bytes, bytes], _SyncState] = {}  # (message id, peer), insertion ordered
        self._outbox: dict[bytes, _Outbox] = {}

    @property
    def epoch(self) -> int:
        return self._epoch

    def has_message(self, mvds_id: bytes) -> bool:
        return mvds_id in self._store

    def pending(self, peer: bytes) -> list[bytes]:
        """MVDS ids still being (re)transmitted to ``peer`` (not yet acked, not given up)."""
        return [s.message_id for s in self._states.values() if s.peer == peer]

    def next_due(self) -> int | None:
        """The earliest epoch at which a (re)transmission is due, or None when nothing is pending."""
        return min((s.send_epoch for s in self._states.values()), default=None)

    def skip_to(self, epoch: int) -> None:
        """Jump over idle ticks to ``epoch`` (nothing may be due or queued before it)."""
        due = self.next_due()
        if epoch < self._epoch or any(self._outbox.values()) or (due is not None and due < epoch):
            raise InvalidArgument("cannot skip ticks that have work to do")
        self._epoch = epoch

    def append_message(self, group: bytes, peer: bytes, body: bytes, timestamp: int) -> bytes:
        """Queue ``body`` (an AMM) for ``peer`` in ``group``; ``timestamp`` is Unix seconds. Returns its MVDS id."""
        if len(group) != 32:
            raise InvalidArgument("an MVDS group id is 32 bytes")
        message = DatasyncMessage(group, timestamp, body)
        mvds_id = message.id
        self._store.setdefault(mvds_id, message)
        if (mvds_id, peer) not in self._states:
            self._states[(mvds_id, peer)] = _SyncState(group, mvds_id, peer, self._epoch + 1)
        return mvds_id

    def receive(self, peer: bytes, payload: DatasyncPayload) -> Received:
        """Process a Payload from ``peer``: acks stop retransmission, every message is acked next tick."""
        acked = []
        for ack in payload.acks:
            if self._states.pop((ack, peer), None) is not None:
                acked.append(ack)
        for request in payload.requests:
            state = self._states.get((request, peer))
            stored = self._store.get(request)
            if state is not None and stored is not None:
                self._outbox_for(peer).messages.append(stored)
                self._advance(state)
        for offer in payload.offers:
            if offer not in self._store:
                self._outbox_for(peer).requests.append(offer)
        new, duplicates = [], []
        for message in payload.messages:
            mvds_id = message.id
            self._states.pop((mvds_id, peer), None)
            if mvds_id in self._store:
                duplicates.append(message)
            else:
                self._store[mvds_id] = message
                new.append(message)
            self._outbox_for(peer).acks.append(mvds_id)
        return Received(tuple(acked), tuple(new), tuple(duplicates))

    def tick(self) -> list[Outgoing]:
        """Run one epoch: collect everything due, advance the epoch, return one Payload per peer."""
        for key, state in list(self._states.items()):
            if state.send_epoch > self._epoch:
                continue
            self._outbox_for(state.peer).messages.append(self._store[state.message_id])
            self._advance(state)
            if state.send_count > MAX_SEND_COUNT:
                del self._states[key]
        out = []
        for peer, box in self._outbox.items():
            payload = DatasyncPayload(acks=tuple(box.acks), requests=tuple(box.requests),
                                      messages=tuple(box.messages))
            if payload.is_valid:
                out.append(Outgoing(peer, payload, encode_payload(payload)))
        self._outbox.clear()
        self._epoch += 1
        return out

    def _advance(self, state: _SyncState) -> None:
        state.send_count += 1
        jitter = self._jitter()
        if not 0 <= jitter < JITTER_TICKS:
            raise InvalidArgument("MVDS jitter must be in [0, 30)")
        state.send_epoch = self._epoch + default_backoff(state.send_count, jitter)

    def _outbox_for(self, peer: bytes) -> _Outbox:
        return self._outbox.setdefault(peer, _Outbox())
