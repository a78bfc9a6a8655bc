"""Segmentation of large Waku payloads and their reassembly (spec §4), as status-go does it.

:func:`segment_message` is status-go's ``segmentMessage``: data segments, plus Reed–Solomon parity
segments when there are 8–228 data segments. :class:`Reassembler` is ``handleSegmentationLayerV2`` with its
store kept in memory: segments are kept per (hash, transport signer), "already completed" is decided by
hash alone, and a message is complete when the first stored segment is a data segment and the number
stored equals its ``segments_count``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from google.protobuf.message import DecodeError

from proto.segment_message_pb2 import SegmentMessage

from ...crypto.hashing import keccak256
from . import erasure
from .errors import InvalidArgument, MalformedSegment

MAX_MESSAGE_SIZE = 1_048_576
DEFAULT_SEGMENT_SIZE = MAX_MESSAGE_SIZE // 4 * 3  # 786 432
PARITY_RATE = 0.125
MAX_RS_SHARDS = 256
MAX_PENDING_SEGMENTS_PER_SIGNER = 4_096
"""Segments of incomplete messages kept per signer (each arrival sorts its message's segments)."""
MAX_PENDING_BYTES_PER_SIGNER = 64 * 1_048_576
"""Bytes of incomplete messages kept per signer: 64 times the largest Waku message."""
MAX_PENDING_BYTES = 256 * 1_048_576
"""Bytes of incomplete messages kept in all, so fresh keys cannot grow them without bound either."""


def segment_message(payload: bytes, segment_size: int = DEFAULT_SEGMENT_SIZE) -> list[bytes]:
    """The Waku payloads to send for ``payload``: itself if small enough, else serialized segments."""
    if segment_size <= 0:
        raise InvalidArgument("segment size must be positive")
    if len(payload) <= segment_size:
        return [payload]
    entire_hash = keccak256(payload)
    count = math.ceil(len(payload) / segment_size)
    parity_count = math.floor(count * PARITY_RATE)
    chunks = [payload[i:i + segment_size] for i in range(0, len(payload), segment_size)]
    out = [SegmentMessage(entire_message_hash=entire_hash, index=i, segments_count=count, payload=chunk)
           .SerializeToString() for i, chunk in enumerate(chunks)]
    if parity_count == 0 or count + parity_count > MAX_RS_SHARDS:
        return out
    padded = [*chunks[:-1], chunks[-1].ljust(segment_size, b"\0")]
    for j, parity in enumerate(erasure.encode(padded, parity_count)):
        out.append(SegmentMessage(entire_message_hash=entire_hash, parity_segment_index=j,
                                  parity_segments_count=parity_count, payload=parity).SerializeToString())
    return out


@dataclass(frozen=True, slots=True)
class Segment:
    """A parsed SegmentMessage."""

    entire_message_hash: bytes
    index: int
    segments_count: int
    payload: bytes
    parity_segment_index: int
    parity_segments_count: int

    @property
    def is_valid(self) -> bool:
        return self.segments_count >= 2 or self.parity_segments_count > 0

    @property
    def is_parity(self) -> bool:
        return self.segments_count == 0 and self.parity_segments_count > 0

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.index, self.segments_count, self.parity_segment_index, self.parity_segments_count)

    @property
    def sort_key(self) -> tuple[bool, int, int]:
        return (self.is_parity, self.index, self.parity_segment_index)


def parse_segment(data: bytes) -> Segment:
    """Parse ``data`` as a SegmentMessage; MalformedSegment if it does not parse (probing is expected)."""
    message = SegmentMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedSegment("failed to unmarshal SegmentMessage") from exc
    return Segment(bytes(message.entire_message_hash), message.index, message.segments_count,
                   bytes(message.payload), message.parity_segment_index, message.parity_segments_count)


class Outcome(Enum):
    """What the segmentation layer did with one Waku payload."""

    NOT_A_SEGMENT = "not_a_segment"
    INCOMPLETE = "incomplete"
    ALREADY_COMPLETED = "already_completed"
    COMPLETE = "complete"
    HASH_MISMATCH = "hash_mismatch"
    INVALID_PARITY = "invalid_parity"
    TOO_MANY = "too_many"
    """Dropped: its signer, or everyone together, has as many incomplete segments kept as allowed."""

    @property
    def stops_processing(self) -> bool:
        """INCOMPLETE and ALREADY_COMPLETED stop the pipeline; every other outcome continues with ``data``."""
        return self in (Outcome.INCOMPLETE, Outcome.ALREADY_COMPLETED, Outcome.TOO_MANY)


@dataclass(frozen=True, slots=True)
class SegmentResult:
    outcome: Outcome
    data: bytes | None
    """what the pipeline continues with: the whole payload (COMPLETE), the bytes as received
    (NOT_A_SEGMENT, HASH_MISMATCH, INVALID_PARITY), or None when processing stops"""


class Reassembler:
    """In-memory segment store and reassembly (status-go ``handleSegmentationLayerV2``).

    Expiry (status-go deletes incomplete segments and completion marks after a month) is the caller's
    business: :meth:`forget` drops a hash.
    """

    def __init__(self) -> None:
        self._segments: dict[tuple[bytes, bytes], dict[tuple[int, int, int, int], Segment]] = {}
        self._completed: set[bytes] = set()
        self._pending: dict[bytes, tuple[int, int]] = {}
        """Segments and bytes kept per signer (bounded: the ``MAX_PENDING_*`` constants)."""
        self._pending_bytes = 0

    def forget(self, entire_message_hash: bytes) -> None:
        self._completed.discard(entire_message_hash)
        for key in [k for k in self._segments if k[0] == entire_message_hash]:
            self._drop(key)

    def _drop(self, key: tuple[bytes, bytes]) -> None:
        dropped = self._segments.pop(key).values()
        self._count(key[1], -len(dropped), -sum(len(s.payload) for s in dropped))

    def _count(self, signer: bytes, segments: int, size: int) -> None:
        kept, kept_bytes = self._pending.get(signer, (0, 0))
        self._pending_bytes += size
        if kept + segments:
            self._pending[signer] = (kept + segments, kept_bytes + size)
        else:
            self._pending.pop(signer, None)

    def _has_room(self, signer: bytes, size: int) -> bool:
        kept, kept_bytes = self._pending.get(signer, (0, 0))
        return (kept < MAX_PENDING_SEGMENTS_PER_SIGNER and kept_bytes + size <= MAX_PENDING_BYTES_PER_SIGNER
                and self._pending_bytes + size <= MAX_PENDING_BYTES)

    def mark_completed(self, entire_message_hash: bytes) -> None:
        """Remember a message completed earlier (reloading persisted state)."""
        self._completed.add(entire_message_hash)

    def receive(self, data: bytes, transport_signer: bytes) -> SegmentResult:
        """Process one Waku payload from ``transport_signer`` (any stable encoding of the signer key)."""
        try:
            segment = parse_segment(data)
        except MalformedSegment:
            return SegmentResult(Outcome.NOT_A_SEGMENT, data)
        if segment.entire_message_hash in self._completed:
            return SegmentResult(Outcome.ALREADY_COMPLETED, None)
        if not segment.is_valid:
            return SegmentResult(Outcome.NOT_A_SEGMENT, data)
        signer = bytes(transport_signer)
        stored = self._segments.get((segment.entire_message_hash, signer), {})
        replaced = stored.get(segment.key)
        if replaced is None and not self._has_room(signer, len(segment.payload)):
            return SegmentResult(Outcome.TOO_MANY, None)
        self._count(signer, replaced is None, len(segment.payload) - (0 if replaced is None else len(replaced.payload)))
        self._segments[(segment.entire_message_hash, signer)] = stored
        stored[segment.key] = segment
        segments = sorted(stored.values(), key=lambda s: s.sort_key)
        first, last = segments[0], segments[-1]
        if first.is_parity or len(segments) != first.segments_count:
            return SegmentResult(Outcome.INCOMPLETE, None)
        if last.is_parity:
            try:
                payloads = _restore(segments, first, last)
            except InvalidArgument:
                return SegmentResult(Outcome.INVALID_PARITY, data)
            if payloads is None:
                return SegmentResult(Outcome.INVALID_PARITY, data)
        else:
            payloads = [s.payload for s in segments]
        whole = b"".join(payloads)
        if keccak256(whole) != segment.entire_message_hash:
            return SegmentResult(Outcome.HASH_MISMATCH, data)
        self._completed.add(segment.entire_message_hash)
        self._drop((segment.entire_message_hash, signer))
        return SegmentResult(Outcome.COMPLETE, whole)


def _restore(segments: list[Segment], first: Segment, last: Segment) -> list[bytes] | None:
    """Reed–Solomon reconstruction as status-go runs it; None when verification fails.

    status-go pads only the *stored* last data segment back to full size; a last segment rebuilt from
    parity keeps its padding (a status-go bug the vectors record), so the hash check then fails.
    """
    count, parity_count = first.segments_count, last.parity_segments_count
    total = count + parity_count
    if total > MAX_RS_SHARDS:
        raise InvalidArgument("too many shards")
    size = len(first.payload)
    shards: list[bytes | None] = [None] * total
    last_original = None
    for s in segments:
        position = s.index if not s.is_parity else count + s.parity_segment_index
        if position >= total:  # status-go would index out of range here
            raise InvalidArgument("segment index out of range")
        if not s.is_parity and s.index == count - 1:
            shards[position] = s.payload[:size].ljust(size, b"\0")
            last_original = s.payload
        else:
            shards[position] = s.payload
    full = erasure.reconstruct(shards, count)
    if not erasure.verify(full, count):
        return None
    data = full[:count]
    if last_original is not None:
        data[count - 1] = last_original
    return data
