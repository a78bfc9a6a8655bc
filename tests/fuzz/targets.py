"""The fuzz targets: one per place where bytes from outside enter the engine (issue 7, "Fuzzing").

Each :class:`Target` turns one input into a call of the real parser. The oracle (:func:`run_one`): the call
returns, or raises a :class:`~engine.errors.SottovoceError`; any other exception is a finding, and so is
:class:`StateChanged`, which the stateful targets raise when a rejected input changed the protocol state or the
store. Atheris adds hangs (``-timeout``). Seeds come from :mod:`tests.fuzz.corpus`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.codes import parse_code, parse_contact_code, parse_pairing_code, read_code_from_image
from engine.crypto.keys import KeyPair
from engine.errors import SottovoceError
from engine.protocol import waku
from engine.protocol.application import datasync, metadata, wire
from engine.protocol.application.segmentation import Reassembler, parse_segment
from engine.protocol.application.validation import ReceiveContext, validate
from engine.protocol.bundle import Bundle
from engine.protocol.encryption import EncryptionProtocol
from engine.sessions.core import ADVERTISED, SessionCore
from engine.sessions.engine import SessionEngine
from engine.sessions.events import EnvelopeRejected, Event
from engine.sessions.records import save_dirty
from engine.simulation.entropy import SeededEntropy
from proto import encryption_pb2 as pb

from .corpus import waku_key
from .fixtures import STORE_KINDS, T0, fresh_identity, live_engines, live_pair, state_dump

OneInput = Callable[[bytes], object]


class StateChanged(AssertionError):
    """A rejected input changed state it must not touch (a finding)."""


class StoreIncompatible(AssertionError):
    """The memory store took a value the SQLCipher store cannot hold (a finding)."""


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``make()`` builds its (cached) fixtures and returns the one-input function."""

    name: str
    make: Callable[[], OneInput]
    doc: str
    max_len: int = 4096
    ci_runs: int = 5000
    """Inputs the CI test executes (seeds included), sized so all targets together stay well under 90 s."""


def run_one(one_input: OneInput, data: bytes) -> None:
    """The oracle: success or a typed error; anything else propagates as a finding."""
    with contextlib.suppress(SottovoceError):
        one_input(data)


# --- stateless parsers -------------------------------------------------------------------------------------

SYM_KEY = bytes(range(32))
"""The fixed topic key of the symmetric Waku targets."""
GCM_NONCE = bytes(range(1, 13))
ECIES_IV = bytes(range(1, 17))


@cache
def _recipient() -> tuple[bytes, bytes]:
    key = fresh_identity("fuzz-waku-recipient")
    return key.private, key.public


@cache
def _ephemeral() -> KeyPair:
    return fresh_identity("fuzz-waku-ephemeral")


def _waku_message() -> OneInput:
    private, _ = _recipient()
    keys: tuple[waku.EnvelopeKey, ...] = (waku.SymmetricKey(SYM_KEY), waku.AsymmetricKey(private))

    def one_input(data: bytes) -> None:
        message = waku.WakuMessage.from_bytes(data)
        message.hash()
        _ = message.sent_s
        with contextlib.suppress(SottovoceError):
            message.to_bytes()
        for key in keys:
            with contextlib.suppress(SottovoceError):
                message.open(key)
    return one_input


def _waku_symmetric() -> OneInput:
    key = waku.SymmetricKey(waku_key("symmetric"))

    def one_input(data: bytes) -> None:
        waku.receive(data, key)
    return one_input


def _waku_asymmetric() -> OneInput:
    key = waku.AsymmetricKey(waku_key("asymmetric"))

    def one_input(data: bytes) -> None:
        waku.receive(data, key)
    return one_input


def _waku_plaintext() -> OneInput:
    """The decoder behind the ciphers: the input is the decrypted plaintext, sealed here with fixed keys."""
    private, public = _recipient()
    ephemeral = _ephemeral()
    sym, asym = waku.SymmetricKey(SYM_KEY), waku.AsymmetricKey(private)

    def one_input(data: bytes) -> None:
        if not data:
            return
        plaintext = data[1:]
        waku.decode_plaintext(plaintext)
        if data[0] & 1:
            payload = waku.encrypt_asymmetric(plaintext, public, ephemeral, ECIES_IV)
            waku.receive(payload, asym)
        else:
            waku.receive(waku.encrypt_symmetric(plaintext, SYM_KEY, GCM_NONCE), sym)
    return one_input


def _bundle() -> OneInput:
    pair = live_pair()

    def one_input(data: bytes) -> None:
        bundle = Bundle.parse(data)
        bundle.verify()
        bundle.check_well_formed(T0)
        state = copy.deepcopy(pair.bob_state)
        before = state_dump(state)
        try:
            EncryptionProtocol(state).process_public_bundle(data, T0)
        except SottovoceError:
            if state_dump(state) != before:
                raise StateChanged("a rejected bundle changed the protocol state") from None
            raise
    return one_input


# --- the encryption layer with a live session --------------------------------------------------------------


def learn_valid_bundles(protocol: EncryptionProtocol, sender: bytes, data: bytes) -> None:
    """Learn the bundles of a ProtocolMessage that verify for ``sender``, as decrypting it would.

    A bundle signed by the sender is genuine news whatever the rest of the message holds, so the stateful
    oracles take the state *after* it as the state a rejected message must leave unchanged.
    """
    message = pb.ProtocolMessage()
    try:
        message.ParseFromString(data)
    except Exception:
        return
    for bundle in message.bundles:
        with contextlib.suppress(SottovoceError):
            protocol.process_bundle(Bundle.from_proto(bundle), T0, expected_identity=sender)


def _decrypt_checked(data: bytes, *, confirm: bool) -> None:
    pair = live_pair()
    protocol = EncryptionProtocol(copy.deepcopy(pair.bob_state))
    learn_valid_bundles(protocol, pair.alice, data)
    before = state_dump(protocol.state)
    try:
        protocol.decrypt(pair.alice, data, T0, SeededEntropy(b"fuzz-decrypt"), confirm=confirm)
    except SottovoceError:
        if state_dump(protocol.state) != before:
            raise StateChanged("a rejected ProtocolMessage changed the protocol state") from None
        raise


def _protocol_message() -> OneInput:
    """``ProtocolMessage`` and its headers (X3DH, DR, DH), installation map and bundles, parsed and dispatched."""
    live_pair()

    def one_input(data: bytes) -> None:
        message = pb.ProtocolMessage()
        with contextlib.suppress(Exception):
            message.ParseFromString(data)
        _decrypt_checked(data, confirm=False)
    return one_input


def _ratchet() -> OneInput:
    """The Double Ratchet decrypt path on Bob's live session, confirming keys as the engine does."""
    live_pair()

    def one_input(data: bytes) -> None:
        _decrypt_checked(data, confirm=True)
    return one_input


# --- the application layer ---------------------------------------------------------------------------------


def _amm() -> OneInput:
    """Signed metadata wrapper, dispatch and validation (chat message, contact, pairing/sync messages)."""
    own = _recipient()[1]
    contexts = (ReceiveContext(own, 1_767_225_600_000, lambda name: name.startswith("Fuzz"), None),
                ReceiveContext(own, 0, lambda name: False, 1_767_225_600_000))

    def one_input(data: bytes) -> None:
        parsed = metadata.parse(data, own)
        _ = parsed.type_name, parsed.effective_sender, parsed.author_compressed
        for context in contexts:
            verdict = validate(parsed, context)
            if verdict.inner is not None:
                wire.message_to_fields(verdict.inner)
    return one_input


def _datasync() -> OneInput:
    own = _recipient()[1]
    peer = fresh_identity("fuzz-datasync-peer").public

    def one_input(data: bytes) -> None:
        unwrapped = datasync.application_bodies(data)
        if unwrapped.payload is not None:
            node = datasync.MvdsNode()
            node.receive(peer, unwrapped.payload)
            node.tick()
        for body in unwrapped.bodies:
            with contextlib.suppress(SottovoceError):
                validate(metadata.parse(body, peer), ReceiveContext(own, 1_767_225_600_000, lambda n: False))
    return one_input


def _segments() -> OneInput:
    """Segments: the input is a sequence of ``len16 ‖ segment`` records fed to one reassembler."""
    signers = (fresh_identity("fuzz-seg-a").public, fresh_identity("fuzz-seg-b").public)

    def one_input(data: bytes) -> None:
        reassembler = Reassembler()
        i = 0
        count = 0
        while i + 2 <= len(data) and count < 64:
            size = int.from_bytes(data[i:i + 2], "big") & 0x7FFF
            signer = signers[data[i] >> 7]
            chunk = data[i + 2:i + 2 + size]
            i += 2 + size
            count += 1
            with contextlib.suppress(SottovoceError):
                parse_segment(chunk)
            reassembler.receive(chunk, signer)
    return one_input


# --- contact and pairing codes -----------------------------------------------------------------------------


def _codes() -> OneInput:
    def one_input(data: bytes) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        for parse in (parse_code, parse_contact_code, parse_pairing_code):
            with contextlib.suppress(SottovoceError):
                parse(text, T0)
    return one_input


def _qr_image() -> OneInput:
    def one_input(data: bytes) -> None:
        read_code_from_image(data, T0)
    return one_input


# --- the store's own serialized state ----------------------------------------------------------------------

def _store_state() -> OneInput:
    """One record of Bob's committed store replaced by the input, then the engine loaded from it and used.

    Layout: ``kind ‖ key length ‖ key ‖ value``. A record the loader accepts must also work: Bob then receives
    Alice's pending envelope, runs his datasync timers and sends her a message.
    """
    live = live_engines()
    alice = live.alice_state.identity.public

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        kind = STORE_KINDS[data[0] % len(STORE_KINDS)]
        key_len = data[1]
        key, value = data[2:2 + key_len], data[2 + key_len:]
        tables = live.bob_tables
        if kind.startswith("meta:"):
            tables = dataclasses.replace(tables, meta={**tables.meta, kind[5:]: value})
        else:
            records = dict(tables.records)
            records[kind] = {**records.get(kind, {}), key: value}
            tables = dataclasses.replace(tables, records=records)
        store = copy.copy(live.bob_store)
        store._committed = tables
        engine = SessionEngine(store, SeededEntropy(b"fuzz-bob"), live.clock)
        for envelope in live.envelopes:
            engine.receive(envelope)
        engine.tick()
        engine.send_text(alice, "after reload")
    return one_input


# --- the whole receive path ----------------------------------------------------------------------------------

def _engine_dump(tables: Any) -> tuple[object, ...]:
    """Bob's committed store, minus what a rejected envelope may legitimately touch (seen marks, the bundle
    advertisement answering an undecryptable message: its outbox item and throttle record)."""
    records = {kind: dict(rows) for kind, rows in tables.records.items() if kind != ADVERTISED}
    return records, dict(tables.meta), dict(tables.messages)


SQLITE_INTEGER = range(-(1 << 63), 1 << 63)


def check_storable(tables: Any) -> None:
    """Every integer of the messages and outbox items the memory store took must fit a SQLite INTEGER, or the
    SQLCipher store (the real one) raises ``OverflowError`` on the same step."""
    for row in (*tables.messages.values(), *tables.outbox.values()):
        for item in dataclasses.fields(row):
            value = getattr(row, item.name)
            if isinstance(value, int) and value not in SQLITE_INTEGER:
                raise StoreIncompatible(f"{type(row).__name__}.{item.name} = {value} does not fit SQLite")


@cache
def receive_path_envelope() -> Callable[[bytes], bytes | None]:
    """The receive-path target's input → the serialized envelope Bob gets (None: nothing to send).

    The first byte picks how deep the input starts. 0: the raw ``WakuMessage`` bytes; 1: the Waku payload
    data (a ProtocolMessage or a segment), sealed and signed by Alice on her topic to Bob; 2: a plaintext
    Alice encrypts on her live session to Bob (datasync, AMMs); 3: ``AMM type (BE16) ‖ inner message``, which
    Alice signs, wraps in datasync and sends on the session (chat messages, contact requests and updates,
    identities, reactions reach Bob's state machine); 4: the same from Bob's paired phone, so sync messages
    (pairing, synced contacts and decisions) count.
    """
    live = live_engines()
    alice_private = live.alice_private
    alice_public = live.alice_state.identity.public
    bob_identity = SessionCore.load(live.bob_store).identity

    def seal(data: bytes) -> bytes:
        padding = b"\x01" * waku.padding_length(len(data))
        if not isinstance(live.key, waku.SymmetricKey):
            raise AssertionError("fixture envelope is expected on a negotiated (symmetric) topic")
        payload = waku.seal_symmetric(data, alice_private, live.key.key, padding=padding, nonce=GCM_NONCE)
        return waku.build_message(payload, live.topic, live.clock()).to_bytes()

    def envelope_for(data: bytes) -> bytes | None:
        if not data:
            return None
        mode, body = data[0] % 5, data[1:]
        if mode == 3:
            if len(body) < 3:
                return None
            amm = metadata.wrap(body[2:], int.from_bytes(body[:2], "big"), alice_private).amm
            group = datasync.group_id(alice_public, bob_identity)
            body = datasync.wrap([datasync.DatasyncMessage(group, live.clock() // 10**9, amm)])
            mode = 2
        if mode == 4:
            if len(body) < 3:
                return None
            phone = copy.deepcopy(live.sibling)
            amm = metadata.wrap(body[2:], int.from_bytes(body[:2], "big"), phone.account.identity.private).amm
            group = datasync.group_id(bob_identity, bob_identity)
            plaintext = datasync.wrap([datasync.DatasyncMessage(group, live.clock() // 10**9, amm)])
            entropy = SeededEntropy(b"fuzz-phone")
            message = phone.protocol.encrypt(bob_identity, plaintext, live.clock(), entropy, dh_fallback=False)
            items = phone._envelope(bob_identity, message, live.clock(), entropy, None)
            return items[0].waku_message if len(items) == 1 else None
        if mode == 1:
            return seal(body) if len(body) <= waku.MAX_DATA_LEN else None
        if mode == 2:
            alice = EncryptionProtocol(copy.deepcopy(live.alice_state))
            message = alice.encrypt(bob_identity, body, live.clock(), SeededEntropy(b"fuzz-alice"))
            return seal(message.SerializeToString())
        return body
    return envelope_for


def _receive_path() -> OneInput:
    """One input = one envelope to Bob's :class:`SessionEngine` (built by :func:`receive_path_envelope`).

    After an envelope the transport or encryption layer rejected, Bob's store must be unchanged (but for the
    bundle advertisement that answers an undecryptable message), and whatever the memory store took must fit
    the SQLCipher store. Returns Bob's events (for tests).
    """
    live = live_engines()
    envelope_for = receive_path_envelope()

    def one_input(data: bytes) -> list[Event]:
        envelope = envelope_for(data)
        if envelope is None:
            return []
        store = live.bob_store
        store._committed = live.bob_tables
        engine = SessionEngine(store, SeededEntropy(b"fuzz-bob"), live.clock)
        protocol = engine.core.protocol
        accepted: list[bool] = []
        before: list[object] = [_engine_dump(live.bob_tables)]

        def decrypt(sender: bytes, data: bytes, *args: Any, **kwargs: Any) -> Any:
            learn_valid_bundles(protocol, sender, data)
            with store.transaction() as writer:  # what a signed bundle teaches is not the fuzzer's doing
                save_dirty(protocol.state, writer)
            before[0] = _engine_dump(store._committed)
            try:
                result = EncryptionProtocol.decrypt(protocol, sender, data, *args, **kwargs)
            except SottovoceError:
                accepted.append(False)
                raise
            accepted.append(True)
            return result

        protocol.decrypt = decrypt  # type: ignore[method-assign]
        events = engine.receive(envelope)
        rejected = [e.code for e in events if isinstance(e, EnvelopeRejected)]
        if rejected and not any(accepted) and _engine_dump(store._committed) != before[0]:
            raise StateChanged(f"envelope rejected ({rejected[0]}) before decryption succeeded, "
                               "but Bob's store changed")
        check_storable(store._committed)
        return events
    return one_input


KNOWN_OPEN: dict[str, Callable[[bytes], bool]] = {}
"""Open findings in code this suite does not fix (each has a strict-xfail regression input): the fuzzer skips
inputs of that shape so that it keeps looking for new ones; the replay in ``test_fuzz.py`` does not skip them."""


def is_known_open(target: str, data: bytes) -> bool:
    """Whether ``data`` has the shape of a known open finding of ``target``."""
    known = KNOWN_OPEN.get(target)
    return known is not None and known(data)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("waku_message", _waku_message, "WakuMessage protobuf, hash, re-encode, open with both key kinds"),
    Target("waku_symmetric", _waku_symmetric, "Waku payload v1 under AES-256-GCM: the raw decryption input"),
    Target("waku_asymmetric", _waku_asymmetric, "Waku payload v1 under ECIES: the raw decryption input"),
    Target("waku_plaintext", _waku_plaintext, "payload v1 decoder behind both ciphers (fixed keys)"),
    Target("protocol_message", _protocol_message, "ProtocolMessage, headers, installation map, bundles"),
    Target("bundle", _bundle, "signed prekey bundle: parse, signature check, policy, learning"),
    Target("ratchet", _ratchet, "Double Ratchet decrypt on a live session; state unchanged on rejection"),
    Target("amm", _amm, "ApplicationMetadataMessage, signature recovery, dispatch and validation"),
    Target("datasync", _datasync, "MVDS payload, MVDS node receive, the AMM bodies it carries"),
    Target("segments", _segments, "segment messages and Reed-Solomon reassembly"),
    Target("codes", _codes, "contact codes, pairing codes and chat keys as text", max_len=2048),
    Target("qr_image", _qr_image, "QR images through pillow and zbar to parse_code", max_len=8192, ci_runs=1000),
    Target("store_state", _store_state, "the store's own records, loaded into an engine that then works on",
           ci_runs=2500),
    Target("receive_path", _receive_path, "whole receive path of a SessionEngine on a memory store",
           ci_runs=3000),
)}
