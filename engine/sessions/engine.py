"""The session engine: a :class:`~engine.sessions.core.SessionCore` run against a session store.

Every step (a received envelope, a sent message, a pairing, an acknowledgement) is one store transaction
holding the protocol state it changed, the messages it produced, the outbox items to publish and the envelope
marked as seen. Events are returned only after the commit, so nothing is shown that a crash could take back.
If a transaction fails, the in-memory core (which ran ahead) is reloaded from what is committed.
Synchronous and transport-free: the simulation drives it directly, the async Messenger from its loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..contacts import Contact, ContactError, check_name, load_contact, load_contacts, save_contact, unique_name
from ..crypto.hashing import sha256
from ..errors import MalformedMessage, SottovoceError
from ..protocol.bundle import Bundle
from ..protocol.entropy import Entropy
from ..protocol.state import Installation
from ..protocol.waku import WakuMessage
from ..store.port import DeliveryState, OutboxItem, SessionStore, StoreWriter
from .core import SEGMENTS_DONE, Opening, SentMessage, SessionCore, Step
from .errors import NotSubscribed
from .events import ContactSynced, DeliveryChanged, EnvelopeRejected, Event, MessageReceived
from .fairness import STRANGERS
from .peers import AddressEntry, Peer
from .records import Account, save_dirty


@dataclass(frozen=True, slots=True)
class Arrival:
    """An envelope as :meth:`SessionEngine.arrive` found it: parsed (or why not) and opened (or why not; not
    opened at all when it was processed already)."""

    data: bytes
    envelope: WakuMessage | None
    error: SottovoceError | None
    opening: Opening | None
    hashes: tuple[bytes, bytes] = (b"", b"")
    """The Waku message hash and the hash of the exact bytes (the seen marks), when it parsed."""
    checked_at: int = -1
    """The engine's commit count when the store said these hashes were not seen (-1: not asked)."""


Extra = Callable[[StoreWriter], None]
"""More writes for a step's transaction."""
RETENTION_NS = 30 * 86_400 * 10**9
"""How long the relay keeps envelopes (a Waku store node's 30 days): older marks can go."""
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
        self._commits = 0
        """Transactions this engine committed (the only writer of seen marks): see :attr:`Arrival.checked_at`."""

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

    def _commit(self, step: Step, extra: Extra | None = None) -> list[Event]:
        return self._commit_all([(step, extra)])

    def _commit_all(self, steps: Sequence[tuple[Step, Extra | None]]) -> list[Event]:
        """Store what ``steps`` (run one after the other on the core) did, in one transaction; their events."""
        duplicates: set[str] = set()
        delivered: list[list[Event]] = [[] for _ in steps]
        try:
            with self.store.transaction() as writer:
                save_dirty(self.core.state, writer)
                for (kind, key), value in _last_records(steps).items():
                    if value is None:
                        writer.delete_record(kind, key)
                    else:
                        writer.put_record(kind, key, value)
                for (step, extra), shown_delivered in zip(steps, delivered, strict=True):
                    for message in step.messages:
                        if not writer.add_message(message):
                            duplicates.add(message.message_id)
                    for item in step.outbox:
                        writer.enqueue(item)
                    for message_id in step.delivered:
                        if writer.set_message_state(message_id, DeliveryState.DELIVERED, only_from=_UNDELIVERED):
                            shown_delivered.append(DeliveryChanged(message_id, DeliveryState.DELIVERED))
                    for synced in step.address_book:
                        _save_synced_contact(writer, synced)
                    if extra is not None:
                        extra(writer)
        except BaseException:
            self.core = SessionCore.load(self.store)
            raise
        self._commits += 1
        return self._committed(steps, duplicates, delivered)

    def _committed(self, steps: Sequence[tuple[Step, Extra | None]], duplicates: set[str],
                   delivered: list[list[Event]]) -> list[Event]:
        """The events of committed steps, rejections counted; a message that was stored already is not news."""
        events: list[Event] = []
        for (step, _), shown_delivered in zip(steps, delivered, strict=True):
            for event in step.events:
                if isinstance(event, EnvelopeRejected):
                    self.rejections[event.code] += 1
                elif isinstance(event, MessageReceived) and event.message.message_id in duplicates:
                    continue
                events.append(event)
            events += step.address_book
            events += shown_delivered
        return events

    def receive(self, data: bytes, *, cursor: tuple[str, int] | None = None) -> list[Event]:
        """Process one serialized ``WakuMessage``; an envelope already processed is skipped.

        ``cursor`` (a name and a value, e.g. a transport position) is stored in the same transaction.
        Rejections are counted in :attr:`rejections` and reported as events, never raised.
        """
        return self.receive_many([data], cursor=cursor)

    def receive_many(self, envelopes: Sequence[bytes], *, cursor: tuple[str, int] | None = None) -> list[Event]:
        """:meth:`receive` for several envelopes in one store transaction (a burst the relay delivered at once).

        The outcome is the one of receiving them one by one; a failed commit takes back the whole burst.
        """
        return self.receive_arrivals([self.arrive(data) for data in envelopes], cursor=cursor)

    def arrive(self, data: bytes) -> Arrival:
        """Parse ``data`` and open it far enough to know who signed it; changes nothing. An envelope already
        processed is not opened. Lets the caller schedule envelopes by sender (:mod:`.fairness`) before
        :meth:`receive_arrivals` processes them without opening them again."""
        try:
            envelope = WakuMessage.from_bytes(data)
        except SottovoceError as exc:
            return Arrival(data, None, exc, None)
        # The Waku hash leaves out ``version`` and ``ephemeral``: a forged variant of a genuine envelope has the
        # same hash, so an envelope that fails to open is remembered by the hash of its exact bytes instead.
        hashes = envelope.hash(), sha256(data)
        if self._seen(hashes, set()):
            return Arrival(data, envelope, None, None, hashes)
        return Arrival(data, envelope, None, self.core.open(envelope), hashes, self._commits)

    def budget_key(self, arrival: Arrival) -> bytes | None:
        """Whose receive budget ``arrival`` counts against (:mod:`.fairness`): the sender if it is a contact,
        :data:`~.fairness.STRANGERS` for any other sender, None for this account and unopened envelopes."""
        sender = None if arrival.opening is None else arrival.opening.sender
        if sender is None or sender == self.identity:
            return None
        return sender if self.core.peer(sender).added else STRANGERS

    def receive_arrivals(self, arrivals: Sequence[Arrival], *, cursor: tuple[str, int] | None = None) -> list[Event]:
        """:meth:`receive_many` for envelopes that went through :meth:`arrive`."""
        steps: list[tuple[Step, Extra | None]] = []
        marked: set[bytes] = set()
        for arrival in arrivals:
            prepared = self._prepare(arrival, marked)
            if prepared is not None:
                steps.append(prepared)
        if cursor is not None:
            steps.append((Step(), lambda writer: writer.set_cursor(*cursor)))
        if not steps:
            return []
        if all(extra is None for _, extra in steps):  # only envelopes that did not parse (no extra): nothing to store
            return self._committed(steps, set(), [[] for _ in steps])
        return self._commit_all(steps)

    def _seen(self, hashes: tuple[bytes, bytes], marked: set[bytes], *, ask_store: bool = True) -> bool:
        return any(h in marked for h in hashes) or (ask_store and self.store.has_seen(*hashes))

    def _prepare(self, arrival: Arrival, marked: set[bytes]) -> tuple[Step, Extra | None] | None:
        """Run the core on one envelope: its step and how to remember the envelope as seen (None: an envelope
        already processed, here or earlier in ``marked``)."""
        envelope = arrival.envelope
        if envelope is None:
            step = Step(consumed=False)
            step.reject(arrival.error or MalformedMessage())
            return step, None
        # Again: processed since it arrived (the store is asked only if something was committed since then),
        # or earlier in this burst.
        if self._seen(arrival.hashes, marked, ask_store=arrival.checked_at != self._commits):
            return None
        now = self.clock()
        opening = arrival.opening
        if opening is not None and isinstance(opening.error, NotSubscribed):
            opening = None  # an envelope before it in the burst may have made the engine listen on its topic
        step = self.core.receive(envelope, now, self.entropy, opening)
        if not step.consumed:
            return step, _nothing
        mark = arrival.hashes[0] if step.authenticated else arrival.hashes[1]
        marked.add(mark)

        def remember(writer: StoreWriter) -> None:
            writer.mark_seen(mark, now)

        return step, remember

    def expire(self, retention_ns: int = RETENTION_NS) -> int:
        """Forget what the relay no longer keeps: seen-envelope marks and completed-segment marks older than
        ``retention_ns`` (the relay's 30 days). Returns how many seen marks went."""
        cutoff = self.clock() - retention_ns
        done = [key for key, value in self.store.records(SEGMENTS_DONE) if int.from_bytes(value, "big") < cutoff]
        forgotten = 0

        def apply(writer: StoreWriter) -> None:
            nonlocal forgotten
            forgotten = writer.forget_seen(cutoff)
            for key in done:
                writer.delete_record(SEGMENTS_DONE, key)

        self._commit(Step(), apply)
        return forgotten

    def send_text(self, peer: bytes, text: str) -> SentMessage:
        """Store and queue a text message to ``peer`` (state ``QUEUED``); returns its id and fan-out."""
        sent = self.send_texts([(peer, text)])[0]
        if isinstance(sent, SottovoceError):
            raise sent
        return sent

    def send_texts(self, messages: Sequence[tuple[bytes, str]]) -> list[SentMessage | SottovoceError]:
        """:meth:`send_text` for several ``(peer, text)`` in one store transaction (group commit), in order.

        A message the core refuses (``EmptyText``, ``TextTooLong``, ``UnusableRecipient``) gets its error in its
        place and the others are sent. Any other failure, the commit's included, raises and sends none of them.
        """
        results: list[SentMessage | SottovoceError] = []
        steps: list[tuple[Step, Extra | None]] = []
        for peer, text in messages:
            try:
                self.core.check_text(peer, text)
            except SottovoceError as exc:
                results.append(exc)
                continue
            try:
                sent, step = self.core.send_text(peer, text, self.clock(), self.entropy)
            except BaseException:
                self.core = SessionCore.load(self.store)  # the sends before it ran ahead of the store: undo them
                raise
            results.append(sent)
            steps.append((step, None))
        if steps:
            self._commit_all(steps)
        return results

    def tick(self) -> list[Event]:
        """Send what datasync has due now (acks, retransmissions); see :attr:`next_due_ns`."""
        due = self.core.next_due_ns
        if due is None or due > self.clock():
            return []
        return self._commit(self.core.tick(self.clock(), self.entropy))

    @property
    def owes_acks(self) -> bool:
        """Datasync messages were received and their acks are not queued yet (the next tick sends them)."""
        return bool(self.core.acks)

    @property
    def next_due_ns(self) -> int | None:
        """When :meth:`tick` next has work, or None."""
        return self.core.next_due_ns

    # --- contacts ---------------------------------------------------------------------------------------

    def peer(self, identity: bytes) -> Peer:
        """The contact-request state and announced profile of ``identity``."""
        return self.core.peer(identity)

    def peers(self) -> dict[bytes, Peer]:
        return dict(self.core.peers)

    def _entry(self, identity: bytes) -> AddressEntry | None:
        contact = load_contact(self.store, identity)
        return None if contact is None else AddressEntry(contact.name, contact.verified)

    def add_contact(self, peer: bytes) -> list[Event]:
        """Mark ``peer`` added and tell it with a ContactUpdate (nothing if it was added already)."""
        return self._commit(self.core.add_contact(peer, self.clock(), self.entropy, self._entry(peer)))

    def send_contact_request(self, peer: bytes, text: str) -> SentMessage:
        sent, step = self.core.send_contact_request(peer, text, self.clock(), self.entropy, self._entry(peer))
        self._commit(step)
        return sent

    def accept_contact_request(self, peer: bytes) -> list[Event]:
        return self._commit(self.core.accept_contact_request(peer, self.clock(), self.entropy, self._entry(peer)))

    def decline_contact_request(self, peer: bytes) -> list[Event]:
        return self._commit(self.core.decline_contact_request(peer, self.clock(), self.entropy))

    def remove_contact(self, peer: bytes) -> list[Event]:
        return self._commit(self.core.remove_contact(peer, self.clock(), self.entropy))

    def set_blocked(self, peer: bytes, blocked: bool) -> list[Event]:
        return self._commit(self.core.set_blocked(peer, blocked, self.clock(), self.entropy, self._entry(peer)))

    def sync_contact(self, peer: bytes) -> list[Event]:
        """Share the address-book entry of ``peer`` (nickname, verified) with this account's other devices."""
        return self._commit(self.core.sync_contact(peer, self.clock(), self.entropy, self._entry(peer)))

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
        """Enable an own installation and send it our pairing message and our contacts."""
        book = {c.identity: AddressEntry(c.name, c.verified) for c in load_contacts(self.store)}
        return self._commit(self.core.pair(installation_id, self.clock(), self.entropy, book))

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
        return self.published_many([item])

    def published_many(self, items: Sequence[OutboxItem]) -> list[Event]:
        """:meth:`published` for several acknowledged items, in one transaction."""
        changed: list[Event] = []

        def apply(writer: StoreWriter) -> None:
            for item in items:
                writer.dequeue(item.envelope_hash)
                if item.message_id is not None and writer.set_message_state(
                        item.message_id, DeliveryState.SENT, only_from=(DeliveryState.QUEUED,)):
                    changed.append(DeliveryChanged(item.message_id, DeliveryState.SENT))

        if items:
            self._commit(Step(), apply)
        return changed

    def publish_failed(self, item: OutboxItem, retry_in_ns: int) -> None:
        """Publishing ``item`` failed: try again after ``retry_in_ns``."""
        self._commit(Step(), lambda writer: writer.reschedule(item.envelope_hash, item.attempts + 1,
                                                              self.clock() + retry_in_ns))


_UNDELIVERED = (DeliveryState.QUEUED, DeliveryState.SENT)


def _last_records(steps: Sequence[tuple[Step, Extra | None]]) -> dict[tuple[str, bytes], bytes | None]:
    """The records ``steps`` wrote, each key once with its last value (None: deleted), in first-write order.

    A burst's steps rewrite the same records (a chat's clock, the acks owed to a peer: kilobytes by then) once
    per envelope; only the last value is state. Writing them first is safe: step records hold the core's own
    state, which nothing else in the transaction reads (extras read contacts and messages)."""
    last: dict[tuple[str, bytes], bytes | None] = {}
    for step, _ in steps:
        for kind, key, value in step.records:
            last[(kind, key)] = value
    return last


def _save_synced_contact(writer: StoreWriter, synced: ContactSynced) -> None:
    """Take an own device's nickname and verification for a contact; a name another contact has gets a suffix."""
    existing = load_contact(writer, synced.identity)
    try:
        nickname = check_name(synced.nickname)
    except ContactError:
        return  # an unusable nickname from another device: keep what this device has
    name = unique_name(load_contacts(writer), nickname, synced.identity)
    contact = Contact(synced.identity, name, synced.display_name or (existing.display_name if existing else ""),
                      synced.verified or (existing.verified if existing else False),
                      existing.added_ns if existing else 0)
    save_contact(writer, contact)


def _nothing(writer: StoreWriter) -> None:
    """A step's extra writes when there are none (the step itself still has to be stored)."""
