"""The session engine: a :class:`~engine.sessions.core.SessionCore` run against a session store.

Every step (a received envelope, a sent message, a pairing, an acknowledgement) is one store transaction
holding the protocol state it changed, the messages it produced, the outbox items to publish and the envelope
marked as seen. Events are returned only after the commit, so nothing is shown that a crash could take back.
If a transaction fails, the in-memory core (which ran ahead) is reloaded from what is committed.
Synchronous and transport-free: the simulation drives it directly, the async Messenger from its loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..crypto.hashing import sha256
from ..errors import SottovoceError
from ..protocol.bundle import Bundle
from ..protocol.entropy import Entropy
from ..protocol.state import Installation
from ..protocol.waku import WakuMessage
from ..store.port import DeliveryState, OutboxItem, SessionStore, StoreWriter
from .core import SentMessage, SessionCore, Step
from .events import DeliveryChanged, EnvelopeRejected, Event, MessageReceived
from .records import Account, save_dirty

Clock = Callable[[], int]
"""Unix time in nanoseconds."""


class SessionEngine:
    """One installation: its core, its store, its clock and its randomness."""

    def __init__(self, store: SessionStore, entropy: Entropy, clock: Clock) -> None:
        self.store = store
        self.entropy = entropy
        self.clock = clock
        self.core = SessionCore.load(store)
        self.rejections: Counter[str] = Counter()
        """How many envelopes or messages were dropped, by error code."""

    @property
    def account(self) -> Account:
        return self.core.account

    @property
    def identity(self) -> bytes:
        return self.core.identity

    @property
    def installation_id(self) -> str:
        return self.core.installation_id

    # --- steps ------------------------------------------------------------------------------------------

    def _commit(self, step: Step, extra: Callable[[StoreWriter], None] | None = None) -> list[Event]:
        duplicates: set[str] = set()
        try:
            with self.store.transaction() as writer:
                save_dirty(self.core.state, writer)
                for kind, key, value in step.records:
                    writer.put_record(kind, key, value)
                for message in step.messages:
                    if not writer.add_message(message):
                        duplicates.add(message.message_id)
                for item in step.outbox:
                    writer.enqueue(item)
                if extra is not None:
                    extra(writer)
        except BaseException:
            self.core = SessionCore.load(self.store)
            raise
        for event in step.events:
            if isinstance(event, EnvelopeRejected):
                self.rejections[event.code] += 1
        return [e for e in step.events
                if not (isinstance(e, MessageReceived) and e.message.message_id in duplicates)]

    def receive(self, data: bytes, *, cursor: tuple[str, int] | None = None) -> list[Event]:
        """Process one serialized ``WakuMessage``; an envelope already processed is skipped.

        ``cursor`` (a name and a value, e.g. a transport position) is stored in the same transaction.
        Rejections are counted in :attr:`rejections` and reported as events, never raised.
        """
        try:
            envelope = WakuMessage.from_bytes(data)
        except SottovoceError as exc:
            self.rejections[exc.code] += 1
            return [EnvelopeRejected(exc.code, str(exc))]
        envelope_hash = envelope.hash()
        # The Waku hash leaves out ``version`` and ``ephemeral``: a forged variant of a genuine envelope has the
        # same hash, so an envelope that fails to open is remembered by the hash of its exact bytes instead.
        raw_hash = sha256(data)
        if self.store.has_seen(envelope_hash) or self.store.has_seen(raw_hash):
            if cursor is not None:
                self._commit(Step(), lambda writer: writer.set_cursor(*cursor))
            return []
        now = self.clock()
        step = self.core.receive(envelope, now, self.entropy)

        def finish(writer: StoreWriter) -> None:
            if step.consumed:
                writer.mark_seen(envelope_hash if step.authenticated else raw_hash, now)
            if cursor is not None:
                writer.set_cursor(*cursor)

        return self._commit(step, finish)

    def send_text(self, peer: bytes, text: str) -> SentMessage:
        """Store and queue a text message to ``peer`` (state ``QUEUED``); returns its id and fan-out."""
        sent, step = self.core.send_text(peer, text, self.clock(), self.entropy)
        self._commit(step)
        return sent

    def advertise(self) -> None:
        """Queue the contact-code broadcast of our bundle."""
        self._commit(self.core.advertise(self.clock(), self.entropy))

    def learn_bundle(self, bundle: Bundle) -> list[Event]:
        """Learn a bundle from a contact code, QR or pairing code."""
        return self._commit(self.core.learn_bundle(bundle, self.clock()))

    def own_bundle(self) -> Bundle:
        """Our current bundle (rotating the signed prekey after 24 h, committed before it is handed out)."""
        bundle = self.core.own_bundle(self.clock(), self.entropy)
        self._commit(Step())
        return bundle

    def pair(self, installation_id: str) -> list[Event]:
        """Enable an own installation and send it our pairing message."""
        return self._commit(self.core.pair(installation_id, self.clock(), self.entropy))

    def unpair(self, installation_id: str) -> list[Event]:
        return self._commit(self.core.unpair(installation_id))

    def devices(self) -> list[Installation]:
        return self.core.devices()

    # --- outbox -----------------------------------------------------------------------------------------

    def outbox_due(self) -> list[OutboxItem]:
        """Outbox items to (re)publish now, oldest first."""
        return self.store.outbox(due_ns=self.clock())

    def published(self, item: OutboxItem) -> list[Event]:
        """The relay acknowledged ``item``: drop it from the outbox and mark its message sent."""
        changed: list[Event] = []

        def apply(writer: StoreWriter) -> None:
            writer.dequeue(item.envelope_hash)
            if item.message_id is not None:
                stored = writer.message(item.message_id)
                if stored is not None and stored.state == DeliveryState.QUEUED:
                    writer.set_message_state(item.message_id, DeliveryState.SENT)
                    changed.append(DeliveryChanged(item.message_id, DeliveryState.SENT))

        self._commit(Step(), apply)
        return changed

    def publish_failed(self, item: OutboxItem, retry_in_ns: int) -> None:
        """Publishing ``item`` failed: try again after ``retry_in_ns``."""
        self._commit(Step(), lambda writer: writer.reschedule(item.envelope_hash, item.attempts + 1,
                                                              self.clock() + retry_in_ns))
