"""The messaging verbs of ``sottovoce``: init, whoami, code, contacts, send, listen, history, sync, devices, relay.

Every verb opens the profile (``--profile``), and those that talk to the network start the Messenger on
``--transport`` (else the configured relay, else the embedded one). Typed errors become one line on stderr
and exit code 1 in :func:`app.cli.main`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from app import config
from engine.messenger import (
    DEFAULT_CONTACT_REQUEST_TEXT,
    ChatMessage,
    ConnectionState,
    Contact,
    Direction,
    MessageReceived,
    Messenger,
    SyncTimeout,
)

DEFAULT_TIMEOUT_S = 30.0

Verb = Callable[[Messenger, argparse.Namespace], Awaitable[int]]


def _out(line: str) -> None:
    print(line, flush=True)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _write_file(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


class CliError(Exception):
    """A user error found by the CLI itself (bad file, bad option combination)."""


# --- opening ---------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace, verb: Verb) -> int:
    async def main() -> int:
        messenger = await Messenger.open(config.profile_dir(args.profile),
                                         transport_url=config.transport_url(args.transport))
        async with messenger:
            return await verb(messenger, args)

    return asyncio.run(main())


async def _started(messenger: Messenger, timeout: float) -> None:
    """Start and catch up; :class:`SyncTimeout` names the relay when it does not answer."""
    await messenger.start()
    try:
        await messenger.wait_synced(timeout)
    except SyncTimeout:
        raise SyncTimeout(f"the relay at {messenger.transport_url or 'the embedded relay'} did not answer within "
                          f"{timeout:g} s") from None


# --- init and identity -----------------------------------------------------------------------------------


def _read_phrase() -> str:
    if sys.stdin.isatty():
        print("recovery phrase: ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip()
    return " ".join(sys.stdin.read().split())


def cmd_init(args: argparse.Namespace) -> int:
    phrase = _read_phrase() if args.recover else None
    if args.recover and not phrase:
        raise CliError("no recovery phrase on stdin")

    async def main() -> int:
        messenger = await Messenger.create(config.profile_dir(args.profile), display_name=args.name,
                                           device_name=args.device_name, recovery_phrase=phrase,
                                           transport_url=config.transport_url(args.transport))
        async with messenger:
            _out(f"chat key: {messenger.identity.chat_key}")
            if not args.recover:
                _out(f"recovery phrase: {messenger.recovery_phrase}")
            _out(f"installation: {messenger.identity.installation_id}")
        return 0

    return asyncio.run(main())


async def _whoami(m: Messenger, args: argparse.Namespace) -> int:
    me = m.identity
    if args.json:
        _out(json.dumps({"chat_key": me.chat_key, "display_name": me.display_name, "alias": me.alias,
                         "emoji_hash": "".join(me.emoji_hash), "color_hash": [list(s) for s in me.color_hash],
                         "installation_id": me.installation_id, "device_name": me.device_name,
                         "device_type": me.device_type}, ensure_ascii=False))
        return 0
    _out(f"chat key: {me.chat_key}")
    _out(f"display name: {me.display_name or '(none)'}")
    _out(f"alias: {me.alias}")
    _out(f"emoji hash: {''.join(me.emoji_hash)}")
    _out(f"installation: {me.installation_id} ({me.device_name or 'unnamed'}, {me.device_type})")
    return 0


async def _code(m: Messenger, args: argparse.Namespace) -> int:
    code = m.contact_code()
    if args.qr:
        _write_file(args.qr, m.contact_code_qr())
    _out(code)
    return 0


# --- contacts --------------------------------------------------------------------------------------------


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {"name": contact.name, "chat_key": contact.chat_key, "display_name": contact.display_name or None,
            "verified": contact.verified, "added": contact.added, "has_added_us": contact.has_added_us,
            "mutual": contact.mutual, "blocked": contact.blocked}


def _contact_state(contact: Contact) -> str:
    if contact.blocked:
        return "blocked"
    if contact.mutual:
        return "mutual"
    return "request sent" if contact.added else "asked to add you" if contact.has_added_us else "not added"


async def _publish(m: Messenger, timeout: float) -> None:
    """Send what a contact action queued, and wait until the relay has it."""
    await _started(m, timeout)
    try:
        await m.sync(timeout)
    except SyncTimeout:
        raise SyncTimeout(f"queued, not yet sent within {timeout:g} s: it goes out with the next sync") from None


async def _contacts(m: Messenger, args: argparse.Namespace) -> int:
    action = args.contacts_action
    if action == "add":
        if args.qr:
            contact = m.add_contact_from_image(_read_file(args.qr), args.name)
        else:
            text = args.code or args.chat_key
            if not text:
                raise CliError("give a contact code (--code), a QR image (--qr) or a chat key")
            contact = m.add_contact(text, args.name)
        _out(f"added {contact.name} ({contact.chat_key})")
        return 0
    if action == "verify":
        contact = m.contact(args.contact)
        verified = m.verify_contact(contact)
        _out(f"verified {verified.name}: {verified.chat_key}")
        from engine.identity import emoji_hash

        _out(f"emoji hash: {''.join(emoji_hash(verified.identity))}")
        return 0
    if action == "rename":
        renamed = m.rename_contact(args.contact, args.new_name)
        _out(f"renamed to {renamed.name} ({renamed.chat_key})")
        return 0
    if action == "requests":
        await _publish(m, args.timeout)  # requests arrive over the network: catch up first
        requests = m.contact_requests()
        if args.json:
            _out(json.dumps([{"chat_key": r.chat_key, "display_name": r.display_name or None, "text": r.text,
                              "id": r.request_id, "name": r.contact_name} for r in requests], ensure_ascii=False))
        for r in requests if not args.json else ():
            _out(f"{r.contact_name or r.display_name or '?'}\t{r.chat_key}\t{r.text}")
        return 0
    if action == "request":
        sent = await m.send_contact_request(args.contact, args.text)
        await _publish(m, args.timeout)
        _out(f"contact request sent to {sent.chat_key}")
        return 0
    if action == "accept":
        contact = m.accept_contact_request(args.contact, args.name)
        await _publish(m, args.timeout)
        _out(f"accepted {contact.name} ({contact.chat_key})")
        return 0
    if action == "decline":
        m.decline_contact_request(args.contact)
        _out("declined (the requester is not told)")
        return 0
    if action == "remove":
        contact = m.contact(args.contact)
        m.remove_contact(contact)
        await _publish(m, args.timeout)
        _out(f"removed {contact.name} ({contact.chat_key})")
        return 0
    if action in ("block", "unblock"):
        m.block_contact(args.contact, action == "block")
        _out(f"{action}ed {args.contact}")
        return 0
    contacts = m.contacts()
    if args.json:
        _out(json.dumps([_contact_json(c) for c in contacts], ensure_ascii=False))
    else:
        for c in contacts:
            _out(f"{c.name}\t{c.chat_key}\t{'verified' if c.verified else 'unverified'}\t{_contact_state(c)}")
    return 0


# --- messages --------------------------------------------------------------------------------------------


async def _send(m: Messenger, args: argparse.Namespace) -> int:
    m.recipient(args.to)  # an unknown name fails before any network work
    deadline = time.monotonic() + args.timeout
    await _started(m, args.timeout)
    sent = await m.send_text(args.to, args.text, wait=True, timeout=max(0.1, deadline - time.monotonic()))
    _out(f"sent {sent.id}")
    return 0


def _message_json(message: ChatMessage) -> dict[str, Any]:
    return {"id": message.id, "from": message.from_name, "from_key": message.from_key,
            "installation_id": message.installation_id,
            "direction": "in" if message.direction == Direction.IN else "out",
            "to_key": message.to_key, "chat_key": message.chat_key, "text": message.text,
            "timestamp": message.timestamp_ms, "pfs": message.forward_secret}


def _message_line(message: ChatMessage) -> str:
    when = datetime.fromtimestamp(message.timestamp_ms / 1000).strftime("%H:%M:%S")
    text = message.text.replace("\n", "\\n")
    if message.direction == Direction.IN:
        return f"[{when}] {message.from_name or message.from_key}: {text}"
    return f"[{when}] me -> {message.chat_key}: {text}"


def _message_text(message: ChatMessage, as_json: bool) -> str:
    """One message as one line: ``listen`` and ``history`` print through this, so their formats agree."""
    return json.dumps(_message_json(message), ensure_ascii=False) if as_json else _message_line(message)


async def _listen(m: Messenger, args: argparse.Namespace) -> int:
    """Print each message as it is committed, at most once: the Messenger reports a message only after the
    commit that also marks its envelope seen, so a later ``listen`` never reports it again. A message
    committed but not yet printed when ``listen`` dies (or committed by another verb) is in ``history``."""
    printed = 0
    loop = asyncio.get_running_loop()
    deadline = None if args.timeout is None else loop.time() + args.timeout
    async with m.events() as events:
        await m.start()
        while args.count is None or printed < args.count:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                event = await events.get(remaining)
            except (TimeoutError, StopAsyncIteration):
                break
            if isinstance(event, MessageReceived):
                message = event.message
                _out(_message_text(message, args.json))
                printed += 1
    return 0 if args.count is None or printed >= args.count else 1


async def _history(m: Messenger, args: argparse.Namespace) -> int:
    """The stored conversation, oldest first, in :func:`_listen`'s formats; reads the store only."""
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    for message in m.messages(args.contact, limit=args.limit):
        _out(_message_text(message, args.json))
    return 0


async def _status(m: Messenger, args: argparse.Namespace) -> int:
    """The relay connection and the outbox: exit 0 when connected, 1 when the relay cannot be reached now."""
    await m.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    while m.connection_state is not ConnectionState.CONNECTED and loop.time() < deadline:
        await asyncio.sleep(0.05)
    state = m.connection_state.value
    if args.json:
        _out(json.dumps({"relay": m.transport_url, "state": state, "queued": m.queued}))
    else:
        _out(f"relay: {m.transport_url} ({state})")
        _out(f"queued: {m.queued} envelope(s) waiting for the relay")
    return 0 if m.connection_state is ConnectionState.CONNECTED else 1


async def _sync(m: Messenger, args: argparse.Namespace) -> int:
    await m.start()
    try:
        await m.sync(args.timeout)
    except SyncTimeout:
        raise SyncTimeout(f"not synced within {args.timeout:g} s: is the relay reachable?") from None
    _out("synced")
    return 0


# --- devices ---------------------------------------------------------------------------------------------


async def _devices(m: Messenger, args: argparse.Namespace) -> int:
    action = args.devices_action
    if action == "code":
        if args.qr:
            _write_file(args.qr, m.pairing_code_qr())
        _out(m.pairing_code())
        return 0
    if action == "pair":
        if args.qr:
            device = m.pair_device_from_image(_read_file(args.qr))
        elif args.code:
            device = m.pair_device(args.code)
        else:
            raise CliError("give the new installation's pairing code (--code) or its QR image (--qr)")
        await m.start()
        await m.sync(args.timeout)
        _out(f"paired {device.installation_id} ({device.name or 'unnamed'})")
        return 0
    if action == "unpair":
        m.unpair_device(args.installation_id)
        _out(f"unpaired {args.installation_id}")
        return 0
    devices = m.devices()
    if args.json:
        _out(json.dumps([{"installation_id": d.installation_id, "name": d.name, "device_type": d.device_type,
                          "paired": d.enabled, "current": d.current} for d in devices], ensure_ascii=False))
        return 0
    for d in devices:
        status = "this device" if d.current else ("paired" if d.enabled else "not paired")
        _out(f"{d.installation_id}\t{d.name or 'unnamed'}\t{d.device_type}\t{status}")
    return 0


# --- relay -----------------------------------------------------------------------------------------------


def cmd_relay(args: argparse.Namespace) -> int:
    from engine.messenger import default_data_dir
    from engine.transport.relay import run_relay, split_host_port

    try:
        split_host_port(args.listen)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    routes = [r.strip() for r in (args.routes or "").split(",") if r.strip()]
    store = args.store or str(default_data_dir() / "relay-store")
    try:
        return run_relay(args.listen, store, routes, args.leaf_remote)
    except ValueError as exc:  # e.g. a port too high to leave room for the cluster and leaf ports
        raise CliError(str(exc)) from exc


# --- the parser ------------------------------------------------------------------------------------------


def _with_messenger(verb: Verb) -> Callable[[argparse.Namespace], int]:
    return lambda args: _run(args, verb)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                 common: argparse.ArgumentParser) -> None:
    """Register the messaging verbs; ``common`` holds ``--profile``/``--transport`` for every verb."""
    p = commands.add_parser("init", parents=[common], help="create a profile (or recover one with --recover)")
    p.add_argument("--name", required=True, help="display name (5-24 letters, digits, spaces, _ or -)")
    p.add_argument("--recover", action="store_true", help="read a recovery phrase from stdin")
    p.add_argument("--device-name", help="this installation's name (default: the host name)")
    p.set_defaults(handler=cmd_init)

    p = commands.add_parser("whoami", parents=[common], help="show my chat key, names and hashes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_with_messenger(_whoami))

    p = commands.add_parser("code", parents=[common], help="print my contact code")
    p.add_argument("--qr", metavar="FILE.png", help="also write it as a QR image")
    p.set_defaults(handler=_with_messenger(_code))

    p = commands.add_parser("contacts", parents=[common], help="list, add, verify or rename contacts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_with_messenger(_contacts), contacts_action=None)
    actions = p.add_subparsers(dest="contacts_action", metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="add a contact by code, QR image or chat key")
    source = add.add_mutually_exclusive_group()
    source.add_argument("--qr", metavar="FILE", help="an image of the contact's QR code")
    source.add_argument("--code", metavar="TEXT", help="the contact's code")
    source.add_argument("chat_key", nargs="?", metavar="CHATKEY", help="the contact's chat key (zQ3...)")
    add.add_argument("--name", required=True, help="your name for the contact")
    verify = actions.add_parser("verify", parents=[common], help="mark a contact verified (compare its emoji hash)")
    verify.add_argument("contact", metavar="NAME")
    rename = actions.add_parser("rename", parents=[common], help="rename a contact")
    rename.add_argument("contact", metavar="NAME")
    rename.add_argument("new_name", metavar="NEW_NAME")
    requests = actions.add_parser("requests", parents=[common], help="list pending contact requests")
    requests.add_argument("--json", action="store_true")
    requests.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    request = actions.add_parser("request", parents=[common], help="ask an account to become your contact")
    request.add_argument("contact", metavar="NAME|CHATKEY")
    request.add_argument("text", metavar="TEXT", nargs="?", default=DEFAULT_CONTACT_REQUEST_TEXT)
    request.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    accept = actions.add_parser("accept", parents=[common], help="accept a contact request")
    accept.add_argument("contact", metavar="CHATKEY|NAME")
    accept.add_argument("--name", help="your name for the new contact (default: its display name)")
    accept.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    decline = actions.add_parser("decline", parents=[common], help="decline a contact request (silently)")
    decline.add_argument("contact", metavar="CHATKEY|NAME")
    remove = actions.add_parser("remove", parents=[common], help="remove a contact and retract your request")
    remove.add_argument("contact", metavar="NAME")
    remove.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    for verb, what in (("block", "drop an account's messages unread"), ("unblock", "stop blocking an account")):
        blocking = actions.add_parser(verb, parents=[common], help=what)
        blocking.add_argument("contact", metavar="NAME|CHATKEY")

    p = commands.add_parser("send", parents=[common], help="send a text message; exits once the relay stored it")
    p.add_argument("to", metavar="NAME|CHATKEY")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    p.set_defaults(handler=_with_messenger(_send))

    p = commands.add_parser("listen", parents=[common], help="catch up, then print chat messages as they arrive")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=int, metavar="N", help="stop after N messages (exit 1 if fewer came)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(handler=_with_messenger(_listen))

    p = commands.add_parser("history", parents=[common],
                            help="print the stored conversation with a contact, oldest first (no network)")
    p.add_argument("contact", metavar="NAME|CHATKEY")
    p.add_argument("--json", action="store_true", help="one JSON object per line, as listen --json")
    p.add_argument("--limit", type=int, metavar="N", help="only the newest N messages")
    p.set_defaults(handler=_with_messenger(_history))

    p = commands.add_parser("status", parents=[common], help="relay connection state and queued envelopes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="how long to try connecting")
    p.set_defaults(handler=_with_messenger(_status))

    p = commands.add_parser("sync", parents=[common], help="process everything pending, publish the outbox, exit")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    p.set_defaults(handler=_with_messenger(_sync))

    p = commands.add_parser("devices", parents=[common], help="list, pair or unpair my installations")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_with_messenger(_devices), devices_action=None)
    actions = p.add_subparsers(dest="devices_action", metavar="ACTION")
    code = actions.add_parser("code", parents=[common], help="this installation's pairing code")
    code.add_argument("--qr", metavar="FILE.png", help="also write it as a QR image")
    pair = actions.add_parser("pair", parents=[common], help="pair a new installation from its pairing code")
    source = pair.add_mutually_exclusive_group(required=True)
    source.add_argument("--qr", metavar="FILE")
    source.add_argument("--code", metavar="TEXT")
    pair.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    unpair = actions.add_parser("unpair", parents=[common], help="stop sharing with one of my installations")
    unpair.add_argument("installation_id", metavar="ID")

    p = commands.add_parser("relay", parents=[common], help="run a relay node for others (nats-server)")
    p.add_argument("--listen", default="127.0.0.1:4222", metavar="HOST:PORT")
    p.add_argument("--store", metavar="DIR", help="JetStream folder (default: the user data folder)")
    p.add_argument("--routes", metavar="URL,...", help="cluster routes to the other nodes")
    p.add_argument("--leaf-remote", metavar="URL", help="join a bigger relay as a leaf node")
    p.set_defaults(handler=cmd_relay)
