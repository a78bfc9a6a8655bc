"""The Messenger: the one thing the UI, the CLI and bots use (asyncio).

A Messenger is one profile (its encrypted store and account) plus a relay connection::

    messenger = await Messenger.open(profile_dir)          # or Messenger.create(..., display_name=...)
    async with messenger, messenger.events() as events:
        await messenger.start()                             # connect, catch up, then live
        await messenger.send_text("alice", "hi")            # a contact name, a chat key or a Contact
        async for event in events:
            if isinstance(event, MessageReceived):
                print(event.message.from_name, event.message.text)

Without a transport URL the machine's embedded relay is used (a local ``nats-server`` shared by every profile,
started on demand). Everything the Messenger reports has been committed to the store first. Protocol steps
(SQLCipher and crypto, about a millisecond each) run on the event loop between awaits, so they never
interleave; no network wait ever happens inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import platform
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

from .codes import (
    ContactCodeInfo,
    NotAContactCode,
    NotAPairingCode,
    PairingCodeInfo,
    encode_contact_code,
    encode_pairing_code,
    parse_contact_code,
    parse_pairing_code,
    qr_png,
    read_code_from_image,
)
from .contacts import (
    CannotAddSelf,
    Contact,
    ContactNameTaken,
    ContactNotFound,
    check_name,
    delete_contact,
    find_by_name,
    load_contact,
    load_contacts,
    save_contact,
    unique_name,
)
from .crypto.keys import compress
from .entropy import SystemEntropy
from .errors import SottovoceError
from .identity import alias, chat_key_text, color_hash, emoji_hash, identity_from_phrase, parse_chat_key
from .identity import validate_display_name as _validate_display_name
from .keyring import KeyCustody
from .protocol.application.messages import DEFAULT_CONTACT_REQUEST_TEXT
from .protocol.bundle import Bundle
from .runtime.connection import ConnectionSupervisor
from .runtime.datasync import DatasyncTicker
from .runtime.errors import (
    MessengerClosed,
    MessengerError,
    NotStarted,
    OwnInstallation,
    SendTimeout,
    SyncTimeout,
    WrongAccount,
)
from .runtime.events import (
    ConnectionChanged,
    ContactChanged,
    ContactRequestReceived,
    DeviceFound,
    DevicePaired,
    Event,
    EventHub,
    EventStream,
    IdentityChanged,
    MessageReceived,
    SyncProgress,
)
from .runtime.inbox import Inbox
from .runtime.outbox import OutboxPump
from .runtime.sends import SendBatcher
from .runtime.views import ChatMessage, ContactRequest, Device, Identity
from .sessions import events as session_events
from .sessions.accounts import create_account
from .sessions.engine import SessionEngine
from .sessions.events import DeliveryChanged
from .store.port import DeliveryState, Direction, SessionStore, StoredMessage
from .store.sqlcipher_store import SqlCipherSessionStore
from .transport.errors import RelayStartFailed, RelayUnavailable
from .transport.nats import NatsSettings, NatsTransport
from .transport.port import ConnectionState, Transport
from .transport.relay import EmbeddedRelay

__all__ = [
    "DEFAULT_CONTACT_REQUEST_TEXT",
    "CannotAddSelf",
    "ChatMessage",
    "ConnectionChanged",
    "ConnectionState",
    "Contact",
    "ContactChanged",
    "ContactNameTaken",
    "ContactNotFound",
    "ContactRequest",
    "ContactRequestReceived",
    "DeliveryChanged",
    "DeliveryState",
    "Device",
    "DeviceFound",
    "DevicePaired",
    "Direction",
    "Event",
    "EventStream",
    "Identity",
    "IdentityChanged",
    "MessageReceived",
    "Messenger",
    "MessengerClosed",
    "MessengerError",
    "NotStarted",
    "OwnInstallation",
    "RelayStartFailed",
    "RelayUnavailable",
    "SendTimeout",
    "SottovoceError",
    "SyncProgress",
    "SyncTimeout",
    "WrongAccount",
    "default_data_dir",
    "default_profile_dir",
]

log = logging.getLogger(__name__)

APP_NAME = "sottovoce"
DATA_DIR_ENV = "SOTTOVOCE_DATA_DIR"
ADVERTISED_CURSOR = "messenger:advertised"
ADVERTISE_EVERY_NS = 24 * 3600 * 10**9
"""The contact-code broadcast (our bundle, for those who know only our chat key) is renewed daily."""
DEVICE_NAMES = "device_names"
"""Record kind: installation id -> UTF-8 device name, as read from its pairing code."""
READ_MARKERS = "read_markers"
"""Record kind: chat identity -> ASCII ``received_ns`` of the newest message the user has seen in that chat."""


def default_data_dir() -> Path:
    """Sottovoce's user data folder (``$SOTTOVOCE_DATA_DIR``, else the platform's user data dir)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def default_profile_dir() -> Path:
    return default_data_dir() / "default"


def _default_device_name() -> str:
    return (platform.node() or "Sottovoce")[:64]


class Messenger:
    """One profile, connected to a relay. Create with :meth:`create` or :meth:`open`; end with :meth:`close`."""

    def __init__(self, store: SessionStore, *, transport_url: str | None = None, transport: Transport | None = None,
                 relay_dir: Path | None = None, recovery_phrase: str | None = None) -> None:
        self._store = store
        self._engine = SessionEngine(store, SystemEntropy(), time.time_ns)
        self._hub = EventHub()
        self._transport_url = transport_url
        self._transport = transport
        self._relay_dir = relay_dir
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: Inbox | None = None
        self._pump: OutboxPump | None = None
        self._ticker = DatasyncTicker(self._engine, self._after_tick)
        self._sends = SendBatcher(self._engine.send_texts, closed=lambda: MessengerClosed() if self._closed else None)
        self._connection: ConnectionSupervisor | None = None
        self._closed = False
        self._contacts: dict[bytes, Contact] = {c.identity: c for c in load_contacts(store)}
        self.recovery_phrase = recovery_phrase
        """The 12 words of a profile just created (shown to the user once, never stored); else None."""

    # --- opening and closing ----------------------------------------------------------------------------

    @classmethod
    async def create(cls, profile_dir: Path | str, *, display_name: str, device_name: str | None = None,
                     device_type: str = "desktop", recovery_phrase: str | None = None,
                     passphrase: str | None = None, transport_url: str | None = None,
                     transport: Transport | None = None, relay_dir: Path | str | None = None,
                     custody: KeyCustody | None = None) -> Messenger:
        """Make a new profile in ``profile_dir``: a new account, or with ``recovery_phrase`` an existing account
        recovered on this new installation. :attr:`recovery_phrase` holds the phrase to show the user.

        ``passphrase`` (or ``SOTTOVOCE_PASSPHRASE``) protects the database; without one the key goes to the
        system keyring. Raises ``ProfileExists``, ``InvalidDisplayName``, ``InvalidRecoveryPhrase``, keyring errors.
        """
        name = _validate_display_name(display_name)
        if recovery_phrase is not None:
            identity_from_phrase(recovery_phrase)  # a bad phrase fails before any file is made
        device = (device_name or _default_device_name()).strip()
        store = SqlCipherSessionStore.open_profile(Path(profile_dir), passphrase, True, custody=custody)
        try:
            created = create_account(store, SystemEntropy(), time.time_ns(), recovery_phrase=recovery_phrase,
                                     display_name=name, device_name=device, device_type=device_type)
            return cls(store, transport_url=transport_url, transport=transport,
                       relay_dir=Path(relay_dir) if relay_dir is not None else None,
                       recovery_phrase=created.recovery_phrase)
        except BaseException:
            store.close()
            raise

    @classmethod
    async def open(cls, profile_dir: Path | str, *, passphrase: str | None = None, transport_url: str | None = None,
                   transport: Transport | None = None, relay_dir: Path | str | None = None,
                   custody: KeyCustody | None = None) -> Messenger:
        """Open an existing profile. Raises ``ProfileNotFound``, ``WrongPassphrase``, ``NoAccount``..."""
        store = SqlCipherSessionStore.open_profile(Path(profile_dir), passphrase, False, custody=custody)
        try:
            return cls(store, transport_url=transport_url, transport=transport,
                       relay_dir=Path(relay_dir) if relay_dir is not None else None)
        except BaseException:
            store.close()
            raise

    async def start(self) -> None:
        """Connect to the relay and start catch-up, live delivery and the outbox, in the background.

        Returns at once: an unreachable relay is retried (see :class:`ConnectionChanged`); wait with
        :meth:`wait_synced` or :meth:`sync`. Starts the embedded relay when no transport was configured
        (``RelayStartFailed`` if it cannot).
        """
        self._check_open()
        if self._tasks:
            return
        embedded: EmbeddedRelay | None = None
        if self._transport is None:
            url = self._transport_url
            if url is None:
                embedded = EmbeddedRelay(self._relay_dir or default_data_dir())
                url = await embedded.ensure_async()
                self._transport_url = url
            servers = tuple(u.strip() for u in url.split(",") if u.strip())
            self._transport = NatsTransport(NatsSettings(servers=servers, client_name="sottovoce-messenger"))
        transport = self._transport
        self._connection = ConnectionSupervisor(transport, self._connection_changed, embedded=embedded)
        wait = self._connection.wait_connected
        self._pump = OutboxPump(self._engine, transport, self._publish_engine_events, wait)
        self._inbox = Inbox(self._engine, transport, self._publish_engine_events, wait, self._sync_progress,
                            published=self._pump.published)
        self._advertise_if_due()
        self._engine.expire()
        self._pump.wake()
        for name, coro in (("connection", self._connection.run()), ("inbox", self._inbox.run()),
                           ("outbox", self._pump.run()), ("datasync", self._ticker.run())):
            self._spawn(name, coro)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"sottovoce-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped: %s", task.get_name(), type(exc).__name__, exc_info=exc)

    async def close(self) -> None:
        """Stop everything and close the store; queued messages stay in the outbox for the next start."""
        if self._closed:
            return
        self._closed = True
        pending = set(self._tasks)
        while pending:  # cancel again if a task swallowed the cancellation
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self._tasks.clear()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
        self._hub.close()
        self._store.close()

    async def __aenter__(self) -> Messenger:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise MessengerClosed()

    # --- state ------------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    @property
    def transport_url(self) -> str | None:
        """The relay URL in use (known once started, for the embedded relay)."""
        return self._transport_url

    @property
    def connection_state(self) -> ConnectionState:
        return self._transport.state if self._transport is not None else ConnectionState.DISCONNECTED

    @property
    def queued(self) -> int:
        """Envelopes in the outbox, waiting for the relay to acknowledge them (messages, acks, bundles)."""
        return len(self._store.outbox())

    @property
    def rejections(self) -> dict[str, int]:
        """Envelopes and messages dropped so far, by error code (malformed, undecryptable, not for us...)."""
        return dict(self._engine.rejections)

    def events(self) -> EventStream:
        """A new stream of every event from now on (open it before :meth:`start` to see the catch-up)."""
        self._check_open()
        return self._hub.stream()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Return once every subscribed topic has been caught up and is followed live (``SyncTimeout``)."""
        inbox = self._require_started()[0]
        try:
            await asyncio.wait_for(inbox.caught_up.wait(), timeout)
        except TimeoutError as exc:
            raise SyncTimeout() from exc

    async def sync(self, timeout: float | None = None) -> None:
        """Catch up and publish everything queued (pairings, bundles, messages); ``SyncTimeout`` if not in time."""
        inbox, pump = self._require_started()

        async def settle() -> None:
            while True:
                await inbox.caught_up.wait()
                await pump.drained.wait()
                await asyncio.sleep(0.05)  # let what those steps queued or subscribed to show up
                if self._engine.owes_acks:
                    await asyncio.sleep(0.1)  # the datasync ticker sends them within a tick
                    continue
                if inbox.caught_up.is_set() and pump.drained.is_set():
                    return

        try:
            await asyncio.wait_for(settle(), timeout)
        except TimeoutError as exc:
            raise SyncTimeout() from exc

    def _require_started(self) -> tuple[Inbox, OutboxPump]:
        self._check_open()
        if self._inbox is None or self._pump is None:
            raise NotStarted()
        return self._inbox, self._pump

    # --- identity ---------------------------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        account = self._engine.account
        key = self._engine.identity
        return Identity(chat_key_text(key), account.display_name, alias(key), tuple(emoji_hash(key)),
                        Identity.ring(color_hash(key)), account.installation_id, account.device_name,
                        account.device_type)

    def contact_code(self) -> str:
        """My contact code (chat key, current bundle, display name) as text."""
        self._check_open()
        bundle = self._engine.own_bundle()
        self._store.make_durable()  # the code leaves the machine: the prekey it names must survive a power cut
        return encode_contact_code(bundle.serialize(), self._engine.account.display_name or None)

    def contact_code_qr(self) -> bytes:
        """My contact code as a QR code PNG."""
        return qr_png(self.contact_code())

    # --- contacts ---------------------------------------------------------------------------------------

    def contacts(self) -> list[Contact]:
        """Every contact, by name, with its contact-request state and the display name it announced."""
        self._check_open()
        return sorted((self._with_state(c) for c in self._contacts.values()), key=lambda c: (c.name.casefold(), c.name))

    def _with_state(self, contact: Contact) -> Contact:
        peer = self._engine.peer(contact.identity)
        return dataclasses.replace(contact, display_name=peer.display_name or contact.display_name,
                                   added=peer.added, has_added_us=peer.has_added_us, blocked=peer.blocked)

    def contact(self, which: str | bytes) -> Contact:
        """The contact with this name (case-insensitively) or chat key; ``ContactNotFound`` otherwise."""
        self._check_open()
        if isinstance(which, bytes):
            found = self._contacts.get(which)
        else:
            found = find_by_name(self._contacts.values(), which)
            if found is None:
                with contextlib.suppress(SottovoceError):
                    found = self._contacts.get(compress(parse_chat_key(which)))
        if found is None:
            raise ContactNotFound(f"no contact called {which!r}" if isinstance(which, str) else None)
        return self._with_state(found)

    def add_contact(self, code: str, name: str) -> Contact:
        """Add (or rename) a contact from a contact code or a bare chat key (``zQ3…`` or ``0x04…``).

        A new contact is told with a contact update carrying my display name (status-go's ``AddContact``),
        queued until the relay takes it; when it adds me too, we are mutual contacts.
        """
        self._check_open()
        return self._add_contact(parse_contact_code(code, time.time_ns()), name)

    def add_contact_from_image(self, image: bytes, name: str) -> Contact:
        """Add a contact from a picture of its contact-code QR (PNG, JPEG...)."""
        self._check_open()
        info = read_code_from_image(image, time.time_ns())
        if isinstance(info, PairingCodeInfo):
            raise NotAContactCode()
        return self._add_contact(info, name)

    def _add_contact(self, info: ContactCodeInfo, name: str) -> Contact:
        name = check_name(name)
        if info.identity == self._engine.identity:
            raise CannotAddSelf()
        other = find_by_name(self._contacts.values(), name)
        if other is not None and other.identity != info.identity:
            raise ContactNameTaken(f"another contact is already called {other.name!r}")
        if info.bundle is not None:
            self._publish_engine_events(self._engine.learn_bundle(Bundle.parse(info.bundle)))
        existing = self._contacts.get(info.identity)
        contact = Contact(info.identity, name, info.display_name or (existing.display_name if existing else ""),
                          existing.verified if existing else False,
                          existing.added_ns if existing else time.time_ns())
        self._save_contact(contact)
        self._publish_engine_events(self._engine.add_contact(info.identity))
        self._changed()
        return self._with_state(self._contacts[info.identity])

    def rename_contact(self, which: str | bytes | Contact, name: str) -> Contact:
        contact = which if isinstance(which, Contact) else self.contact(which)
        return self._save_contact(dataclasses.replace(contact, name=check_name(name)), sync=True)

    def verify_contact(self, which: str | bytes | Contact, verified: bool = True) -> Contact:
        """Record that the user compared this contact's emoji hash or chat key out of band."""
        contact = which if isinstance(which, Contact) else self.contact(which)
        return self._save_contact(dataclasses.replace(contact, verified=verified), sync=True)

    def _save_contact(self, contact: Contact, *, sync: bool = False) -> Contact:
        """Store an address-book entry; with ``sync``, share it with my other installations."""
        self._check_open()
        with self._store.transaction() as writer:
            save_contact(writer, contact)
        stored = load_contact(self._store, contact.identity)
        assert stored is not None
        self._contacts[contact.identity] = stored
        if sync:
            self._publish_engine_events(self._engine.sync_contact(contact.identity))
            self._changed()
        return self._with_state(stored)

    def contact_requests(self) -> list[ContactRequest]:
        """Requests from accounts that asked to be my contact and that I have neither accepted nor declined."""
        self._check_open()
        found = []
        for identity, peer in self._engine.peers().items():
            if peer.pending_request and not peer.blocked:
                known = self._contacts.get(identity)
                found.append(ContactRequest(chat_key_text(identity), peer.display_name, peer.request_text,
                                            peer.request_id, known.name if known else None))
        return sorted(found, key=lambda r: r.chat_key)

    async def send_contact_request(self, to: Contact | str | bytes, text: str = DEFAULT_CONTACT_REQUEST_TEXT,
                                   ) -> ChatMessage:
        """Ask ``to`` to become my contact: a chat message of its own kind, which status-go shows as a request."""
        self._check_open()
        sent = self._engine.send_contact_request(self._recipient(to), text)
        self._changed()
        stored = self._store.message(sent.message_id)
        assert stored is not None
        return self._view(stored)

    def accept_contact_request(self, which: str | bytes, name: str | None = None) -> Contact:
        """Accept a pending request (by chat key, or the name of a contact I already have); the requester is
        added to my contacts as ``name`` (else its display name, else its alias) and told."""
        self._check_open()
        identity = self._requester(which)
        if identity not in self._contacts:
            peer = self._engine.peer(identity)
            self._save_contact(Contact(identity, self._free_name(name or peer.display_name or alias(identity)),
                                       peer.display_name, False, time.time_ns()))
        elif name is not None:
            self.rename_contact(identity, name)
        self._publish_engine_events(self._engine.accept_contact_request(identity))
        self._changed()
        return self.contact(identity)

    def decline_contact_request(self, which: str | bytes) -> None:
        """Decline a pending request; the requester is not told (as in status-go)."""
        self._check_open()
        self._publish_engine_events(self._engine.decline_contact_request(self._requester(which)))
        self._changed()

    def remove_contact(self, which: str | bytes | Contact) -> None:
        """Remove a contact: it leaves my address book and is told I retracted my request."""
        self._check_open()
        identity = self._recipient(which)
        self._publish_engine_events(self._engine.remove_contact(identity))
        with self._store.transaction() as writer:
            delete_contact(writer, identity)
        self._contacts.pop(identity, None)
        self._changed()

    def block_contact(self, which: str | bytes | Contact, blocked: bool = True) -> None:
        """Block (or unblock) an account: its messages are dropped unread and nothing is sent to it."""
        self._check_open()
        self._publish_engine_events(self._engine.set_blocked(self._recipient(which), blocked))
        self._changed()

    def _requester(self, which: str | bytes) -> bytes:
        """A pending requester by chat key, by my name for it, or by the display name it announced."""
        if isinstance(which, str):
            wanted = which.strip().casefold()
            named = [r for r in self.contact_requests() if r.display_name.casefold() == wanted]
            if len(named) == 1 and find_by_name(self._contacts.values(), which) is None:
                return compress(parse_chat_key(named[0].chat_key))
        return self._recipient(which)

    def _free_name(self, wanted: str) -> str:
        """``wanted`` as a contact name, with a number added if another contact has it."""
        try:
            base = check_name(wanted)
        except SottovoceError:
            base = "Contact"
        return unique_name(self._contacts.values(), base)

    # --- messages ---------------------------------------------------------------------------------------

    def _recipient(self, to: Contact | str | bytes) -> bytes:
        if isinstance(to, Contact):
            return to.identity
        if isinstance(to, bytes):
            return to
        found = find_by_name(self._contacts.values(), to)
        if found is not None:
            return found.identity
        try:
            return compress(parse_chat_key(to))
        except SottovoceError:
            raise ContactNotFound(f"no contact called {to!r}, and it is not a chat key") from None

    def recipient(self, to: Contact | str | bytes) -> str:
        """The chat key :meth:`send_text` would write to for ``to`` (``ContactNotFound`` if none)."""
        self._check_open()
        return chat_key_text(self._recipient(to))

    async def send_text(self, to: Contact | str | bytes, text: str, *, wait: bool = False,
                        timeout: float | None = None) -> ChatMessage:
        """Send ``text`` to a contact (name), a chat key (``zQ3…`` text or 33 bytes) or a :class:`Contact`.

        Returns once the message is committed to the outbox (state ``queued``); with ``wait``, once the relay
        acknowledged it (``SendTimeout`` after ``timeout`` seconds: the message stays queued). Sends made
        concurrently (several tasks, or ``asyncio.gather``) share store transactions: see
        :mod:`engine.runtime.sends`.
        """
        self._check_open()
        sent = await self._sends.send(self._recipient(to), text)
        self._changed()
        if not wait:
            return self._view(sent.stored)
        await self.wait_sent(sent.message_id, timeout)
        stored = self._store.message(sent.message_id)  # sent, or delivered already
        assert stored is not None
        return self._view(stored)

    async def wait_sent(self, message_id: str, timeout: float | None = None) -> None:
        """Return once the relay acknowledged message ``message_id`` (``SendTimeout``, ``NotStarted``)."""
        pump = self._require_started()[1]
        try:
            await asyncio.wait_for(pump.wait_sent(message_id), timeout)
        except TimeoutError as exc:
            raise SendTimeout() from exc

    def messages(self, which: Contact | str | bytes, *, limit: int | None = 50) -> list[ChatMessage]:
        """A conversation, oldest first (its newest ``limit`` messages)."""
        self._check_open()
        return [self._view(m) for m in self._store.messages(self._recipient(which), limit=limit)]

    def mark_read(self, which: Contact | str | bytes) -> None:
        """Mark every message of a conversation committed so far as read (kept in the store across restarts)."""
        self._check_open()
        chat = self._recipient(which)
        newest = self._store.messages(chat, limit=1)
        if newest and newest[0].received_ns > self._read_marker(chat):
            with self._store.transaction() as writer:
                writer.put_record(READ_MARKERS, chat, str(newest[0].received_ns).encode("ascii"))

    def unread_count(self, which: Contact | str | bytes) -> int:
        """Incoming messages of a conversation committed after its read marker (see :meth:`mark_read`)."""
        self._check_open()
        chat = self._recipient(which)
        marker = self._read_marker(chat)
        limit = 64
        while True:  # newest first, in growing pages, until a message at or before the marker shows up
            page = self._store.messages(chat, limit=limit)
            if len(page) < limit or page[0].received_ns <= marker:
                return sum(1 for m in page if m.direction == Direction.IN and m.received_ns > marker)
            limit *= 4

    def unread_counts(self) -> dict[str, int]:
        """Chat key -> unread count, for every contact with unread messages."""
        self._check_open()
        counts = {chat_key_text(identity): self.unread_count(identity) for identity in self._contacts}
        return {key: n for key, n in counts.items() if n}

    def _read_marker(self, chat: bytes) -> int:
        raw = self._store.record(READ_MARKERS, chat)
        return int(raw) if raw is not None and raw.isdigit() else 0

    def _view(self, message: StoredMessage) -> ChatMessage:
        me = self._engine.identity
        author = self._contacts.get(message.author) if message.author != me else None
        to = me if message.direction == Direction.IN else message.chat
        return ChatMessage(message.message_id, chat_key_text(message.chat), chat_key_text(message.author),
                           author.name if author else None, message.author_installation, chat_key_text(to),
                           message.direction, message.text, message.timestamp_ms, message.clock,
                           message.forward_secret, message.state)

    # --- devices ----------------------------------------------------------------------------------------

    def devices(self) -> list[Device]:
        """This installation first, then the account's other installations known here."""
        self._check_open()
        account = self._engine.account
        found = [Device(account.installation_id, account.device_name, account.device_type, True, True, 0)]
        for inst in self._engine.devices():
            label = inst.name or (self._store.record(DEVICE_NAMES, inst.installation_id.encode()) or b"").decode()
            found.append(Device(inst.installation_id, label, inst.device_type, inst.enabled, False,
                                inst.last_seen_ns))
        return found

    def pairing_code(self) -> str:
        """This installation's pairing code, to read on an installation that already has the account."""
        self._check_open()
        account = self._engine.account
        bundle = self._engine.own_bundle()
        self._store.make_durable()
        return encode_pairing_code(bundle.serialize(), account.installation_id, account.device_name or "Sottovoce",
                                   account.device_type or "desktop")

    def pairing_code_qr(self) -> bytes:
        return qr_png(self.pairing_code())

    def pair_device(self, code: str) -> Device:
        """Pair the new installation whose pairing code this is: it then gets copies of what I send."""
        self._check_open()
        return self._pair(parse_pairing_code(code, time.time_ns()))

    def pair_device_from_image(self, image: bytes) -> Device:
        self._check_open()
        info = read_code_from_image(image, time.time_ns())
        if not isinstance(info, PairingCodeInfo):
            raise NotAPairingCode()
        return self._pair(info)

    def _pair(self, info: PairingCodeInfo) -> Device:
        if info.identity != self._engine.identity:
            raise WrongAccount()
        if info.installation_id == self._engine.installation_id:
            raise OwnInstallation()
        events = self._engine.learn_bundle(Bundle.parse(info.bundle))
        if info.device_name:
            with self._store.transaction() as writer:
                writer.put_record(DEVICE_NAMES, info.installation_id.encode(), info.device_name.encode())
        events += self._engine.pair(info.installation_id)
        self._publish_engine_events(events)
        self._changed()
        return next(d for d in self.devices() if d.installation_id == info.installation_id)

    def unpair_device(self, installation_id: str) -> None:
        """Stop sending copies to (and reading messages from) one of my other installations."""
        self._check_open()
        self._publish_engine_events(self._engine.unpair(installation_id))

    # --- plumbing ---------------------------------------------------------------------------------------

    def _advertise_if_due(self) -> None:
        now = time.time_ns()
        last = self._store.cursor(ADVERTISED_CURSOR)
        if last is not None and now - last < ADVERTISE_EVERY_NS:
            return
        self._engine.advertise()
        with self._store.transaction() as writer:
            writer.set_cursor(ADVERTISED_CURSOR, now)

    def _after_tick(self, events: list[session_events.Event]) -> None:
        self._publish_engine_events(events)
        if self._pump is not None:
            self._pump.wake()

    def _changed(self) -> None:
        """Something may have been queued or subscribed to: wake the outbox, let the inbox re-subscribe."""
        self._ticker.wake()
        if self._pump is not None:
            self._pump.wake()
        if self._inbox is not None:
            self._inbox.refresh()

    def _publish_engine_events(self, events: list[session_events.Event]) -> None:
        for event in events:
            if isinstance(event, session_events.MessageReceived):
                self._hub.publish(MessageReceived(self._view(event.message)))
            elif isinstance(event, session_events.DeliveryChanged):
                self._hub.publish(event)
            elif isinstance(event, session_events.InstallationFound):
                self._hub.publish(DeviceFound(chat_key_text(event.identity), event.installation_id, event.own))
            elif isinstance(event, session_events.InstallationPaired):
                self._hub.publish(DevicePaired(event.installation_id, event.name))
            elif isinstance(event, session_events.ContactRequestReceived):
                self._hub.publish(ContactRequestReceived(chat_key_text(event.identity), event.display_name,
                                                         event.text, event.request_id))
            elif isinstance(event, session_events.ContactChanged):
                self._hub.publish(ContactChanged(chat_key_text(event.identity), event.added, event.has_added_us,
                                                 event.blocked))
            elif isinstance(event, session_events.ProfileChanged):
                self._hub.publish(IdentityChanged(chat_key_text(event.identity), event.display_name))
            elif isinstance(event, session_events.ContactSynced):
                stored = load_contact(self._store, event.identity)
                if stored is not None:
                    self._contacts[event.identity] = stored
                peer = self._engine.peer(event.identity)
                self._hub.publish(ContactChanged(chat_key_text(event.identity), peer.added, peer.has_added_us,
                                                 peer.blocked))
            else:
                log.debug("dropped an envelope: %s", event.code)
        if events:
            self._changed()

    def _connection_changed(self, state: ConnectionState) -> None:
        if self._pump is not None:
            self._pump.connection_changed(state)
        self._hub.publish(ConnectionChanged(state))

    def _sync_progress(self, processed: int, caught_up: bool) -> None:
        self._hub.publish(SyncProgress(processed, caught_up))

