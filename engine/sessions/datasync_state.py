"""The persistent side of MVDS datasync for 1:1 chats (status-application.md §5.5-§5.7).

Each outgoing datasync message is remembered (kind :data:`DATASYNC_OUT`, key = its MVDS id) until the peer
acknowledges it, and re-sent on status-go's schedule: after the k-th transmission the next is due
``90·2^(k-1) + r`` ticks of 300 ms later (``r`` uniform in [0, 30)), and the message is given up after its
16th transmission. Ids received from a peer wait (kind :data:`DATASYNC_ACKS`) until the next payload to that
peer carries them. Pure values and codecs: the session core decides when to send.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from proto import local_state_pb2 as pb

from ..protocol.application.datasync import (
    BACKOFF_TICKS,
    JITTER_TICKS,
    MAX_SEND_COUNT,
    TICK_MS,
    DatasyncMessage,
)
from ..protocol.entropy import BytesPurpose, Entropy
from .records import parse_record

DATASYNC_OUT = "datasync_out"
"""Record kind: key = MVDS id (32 bytes), value = ``DatasyncOutRecord``."""
DATASYNC_ACKS = "datasync_acks"
"""Record kind: key = the peer's C(IK), value = ``DatasyncAcksRecord``."""
TICK_NS = TICK_MS * 1_000_000
ACK_DELAY_NS = TICK_NS
"""Acks wait at most one tick for a payload to ride on, as status-go's ticker batches them."""
MAX_ACKS_PER_PAYLOAD = 1000
"""More pending acks than this go out at once, whatever the tick."""


def retransmit_delay_ns(send_count: int, entropy: Entropy) -> int:
    """Time from the ``send_count``-th transmission to the next one (status-go's default backoff)."""
    jitter = int.from_bytes(entropy.random_bytes(4, BytesPurpose.JITTER), "big") % JITTER_TICKS
    return (BACKOFF_TICKS * (1 << (send_count - 1)) + jitter) * TICK_NS


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A datasync message sent ``send_count`` times to ``peer`` and not yet acknowledged."""

    peer: bytes
    message: DatasyncMessage
    send_count: int
    next_due_ns: int
    message_id: str = ""
    """the application message id whose delivery the ack confirms (empty for copies and contact updates)"""

    @property
    def mvds_id(self) -> bytes:
        return self.message.id

    @property
    def exhausted(self) -> bool:
        """status-go drops the state once the send count exceeds 15 (16 transmissions)."""
        return self.send_count > MAX_SEND_COUNT

    def sent_again(self, now_ns: int, entropy: Entropy) -> Outgoing:
        count = self.send_count + 1
        return replace(self, send_count=count, next_due_ns=now_ns + retransmit_delay_ns(count, entropy))

    def to_bytes(self) -> bytes:
        return pb.DatasyncOutRecord(
            peer=self.peer, group_id=self.message.group_id, timestamp=self.message.timestamp,
            body=self.message.body, send_count=self.send_count, next_due_ns=self.next_due_ns,
            message_id=self.message_id).SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Outgoing:
        record = parse_record(pb.DatasyncOutRecord(), data, "datasync")
        return cls(bytes(record.peer), DatasyncMessage(bytes(record.group_id), record.timestamp, bytes(record.body)),
                   record.send_count, record.next_due_ns, record.message_id)


def first_transmission(peer: bytes, message: DatasyncMessage, now_ns: int, entropy: Entropy,
                       message_id: str = "") -> Outgoing:
    return Outgoing(peer, message, 1, now_ns + retransmit_delay_ns(1, entropy), message_id)


@dataclass(frozen=True, slots=True)
class PendingAcks:
    """MVDS ids received from one peer, to acknowledge in the next payload to it."""

    ids: tuple[bytes, ...]
    since_ns: int

    @property
    def due_ns(self) -> int:
        if len(self.ids) >= MAX_ACKS_PER_PAYLOAD:
            return self.since_ns
        return self.since_ns + ACK_DELAY_NS

    def adding(self, *mvds_ids: bytes) -> PendingAcks:
        """These ids too, each once, in order (one copy for all: a payload may carry thousands)."""
        known = set(self.ids)
        new = [i for i in dict.fromkeys(mvds_ids) if i not in known]
        return PendingAcks((*self.ids, *new), self.since_ns) if new else self

    def to_bytes(self) -> bytes:
        return pb.DatasyncAcksRecord(ids=self.ids, since_ns=self.since_ns).SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingAcks:
        record = parse_record(pb.DatasyncAcksRecord(), data, "datasync acks")
        return cls(tuple(bytes(i) for i in record.ids), record.since_ns)
