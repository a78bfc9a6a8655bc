"""What an installation knows of each 1:1 peer above the encryption layer (status-application.md §7).

:class:`Peer` holds the contact-request state machine both sides keep (§7.1): our request towards the peer
(``local_state``/``local_clock``), the peer's towards us (``remote_state``/``remote_clock``), and the
profile the peer announces (display name, colour). Every transition ignores an input whose clock is not
newer than the clock it would update, so replays and reordering change nothing. Pure: the session core
decides what to send and persists the record (kind :data:`PEERS`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from proto import local_state_pb2 as pb
from proto.contact_pb2 import ContactRequestPropagatedState

from ..protocol.application.messages import (
    STATE_DISMISSED,
    STATE_NONE,
    STATE_RECEIVED,
    STATE_SENT,
    PropagatedState,
)
from .records import parse_record

PEERS = "peers"
"""Record kind: key = the peer's C(IK), value = ``PeerRecord``."""


@dataclass(frozen=True, slots=True)
class PropagatedOutcome:
    """What receiving a peer's propagated state did (§7.1)."""

    peer: Peer
    new_request: bool = False
    """the peer's request towards us is new (a notification is due)"""
    send_back: bool = False
    """the peer is behind on our state: answer with a ContactUpdate"""


@dataclass(frozen=True, slots=True)
class Peer:
    """One peer's contact-request state and announced profile. Transitions return a new value."""

    local_clock: int = 0
    local_state: int = STATE_NONE
    remote_clock: int = 0
    remote_state: int = STATE_NONE
    last_updated: int = 0
    display_name: str = ""
    display_name_clock: int = 0
    request_id: str = ""
    request_text: str = ""
    blocked: bool = False
    customization_color: int = 0

    # --- what the state means -------------------------------------------------------------------------

    @property
    def added(self) -> bool:
        """We sent the peer a contact request, or accepted theirs."""
        return self.local_state == STATE_SENT

    @property
    def has_added_us(self) -> bool:
        return self.remote_state == STATE_RECEIVED

    @property
    def mutual(self) -> bool:
        return self.added and self.has_added_us

    @property
    def dismissed(self) -> bool:
        return self.local_state == STATE_DISMISSED

    @property
    def pending_request(self) -> bool:
        """The peer asked to be a contact and we have neither accepted nor declined."""
        return self.has_added_us and self.local_state == STATE_NONE

    def propagated(self) -> PropagatedState:
        """Our state as attached to every chat message and contact update we send this peer."""
        return PropagatedState(self.local_clock, self.local_state, self.remote_clock, self.remote_state)

    # --- our own decisions ----------------------------------------------------------------------------

    def request(self, clock: int) -> Peer:
        """We send a contact request, or accept the peer's, at ``clock``."""
        if clock <= self.local_clock:
            return self
        return replace(self, local_clock=clock, local_state=STATE_SENT)

    def dismiss(self, clock: int) -> Peer:
        """We decline the peer's request at ``clock`` (never told to the peer)."""
        if clock <= self.local_clock:
            return self
        return replace(self, local_clock=clock, local_state=STATE_DISMISSED)

    def retract(self, clock: int) -> Peer:
        """We remove the peer (and forget its request) at ``clock``."""
        if clock <= self.local_clock:
            return self
        return replace(self, local_clock=clock, local_state=STATE_NONE, remote_clock=clock,
                       remote_state=STATE_NONE, request_id="", request_text="")

    # --- the peer's decisions -------------------------------------------------------------------------

    def requested(self, clock: int, request_id: str = "", text: str = "") -> tuple[Peer, bool]:
        """The peer requests (or accepts) at ``clock``; also returns whether that request is new."""
        if clock <= self.remote_clock:
            return self, False
        new = self.remote_state == STATE_NONE
        updated = replace(self, remote_clock=clock, remote_state=STATE_RECEIVED)
        if request_id and (new or self.local_state == STATE_NONE):  # the newest request is the one to answer
            updated = replace(updated, request_id=request_id, request_text=text or self.request_text)
        return updated, new

    def retracted(self, clock: int) -> Peer:
        """The peer removes us at ``clock``; our own request goes too unless we had declined theirs."""
        if clock <= self.remote_clock:
            return self
        updated = replace(self, remote_clock=clock, remote_state=STATE_NONE, request_id="", request_text="")
        if self.local_state != STATE_DISMISSED and clock > self.local_clock:
            updated = replace(updated, local_clock=clock, local_state=STATE_NONE)
        return updated

    def receive_propagated(self, state: ContactRequestPropagatedState, request_id: str = "",
                           text: str = "") -> PropagatedOutcome:
        """Apply the state a peer attached to its message (§7.1, steps 1-3)."""
        peer = self
        # Their remote side is their view of our request: 3 while they know we asked, else 0.
        their_view = STATE_RECEIVED if self.local_state == STATE_SENT else STATE_NONE
        send_back = state.remote_clock < self.local_clock and state.remote_state != their_view and self.added
        if state.remote_clock > peer.local_clock and peer.local_state != STATE_DISMISSED \
                and state.remote_state == STATE_NONE:
            peer = replace(peer, local_clock=state.remote_clock, local_state=STATE_NONE,
                           remote_state=STATE_NONE)
        new_request = False
        if state.local_clock > peer.remote_clock:
            if state.local_state == STATE_SENT:
                peer, new_request = peer.requested(state.local_clock, request_id, text)
            elif state.local_state == STATE_NONE:
                peer = peer.retracted(state.local_clock)
        return PropagatedOutcome(peer, new_request, send_back)

    def announced(self, display_name: str, clock: int, color: int | None = None) -> Peer:
        """The peer announced its display name (and colour) in a message with ``clock``; newer wins."""
        if not display_name or clock <= self.display_name_clock:
            return self
        return replace(self, display_name=display_name, display_name_clock=clock,
                       customization_color=self.customization_color if color is None else color)

    def with_blocked(self, blocked: bool) -> Peer:
        return replace(self, blocked=blocked)

    def updated_at(self, clock: int) -> Peer:
        """A ContactUpdate with ``clock`` was applied."""
        return replace(self, last_updated=max(clock, self.last_updated))

    def synced(self, local_state: int, local_clock: int, remote_state: int, remote_clock: int) -> Peer:
        """Apply the state an own installation shared (spec §8.4): local side first, then the remote side."""
        peer = self
        if local_state == STATE_SENT:
            peer = peer.request(local_clock)
        elif local_state == STATE_DISMISSED:
            peer = peer.dismiss(local_clock)
        elif local_clock > peer.local_clock:
            peer = replace(peer, local_clock=local_clock, local_state=STATE_NONE)
        if remote_clock > peer.remote_clock:
            peer = replace(peer, remote_clock=remote_clock,
                           remote_state=STATE_RECEIVED if remote_state == STATE_RECEIVED else STATE_NONE)
        return peer


    # --- storage --------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return pb.PeerRecord(
            local_clock=self.local_clock, local_state=self.local_state, remote_clock=self.remote_clock,
            remote_state=self.remote_state, last_updated=self.last_updated, display_name=self.display_name,
            display_name_clock=self.display_name_clock, request_id=self.request_id,
            request_text=self.request_text, blocked=self.blocked, customization_color=self.customization_color,
        ).SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Peer:
        record = parse_record(pb.PeerRecord(), data, "peer")
        return cls(record.local_clock, record.local_state, record.remote_clock, record.remote_state,
                   record.last_updated, record.display_name, record.display_name_clock, record.request_id,
                   record.request_text, record.blocked, record.customization_color)


@dataclass(frozen=True, slots=True)
class AddressEntry:
    """The user's own record of a contact (nickname, verified), shared only with the account's devices."""

    nickname: str = ""
    verified: bool = False
