"""Properties of the encryption layer over serialized ``ProtocolMessage`` bytes (``EncryptionProtocol.decrypt``).

A bit flip in the Double Ratchet part (header key, N, PN, payload) is always rejected. Some flips elsewhere are
accepted by design, with the genuine plaintext: fields this layer does not authenticate (status-go alike; the
Waku envelope signature covers the whole ``ProtocolMessage``). :func:`_accepted_flip_kind` names them, and any
other accepted flip fails the tests.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.errors import DecryptionFailed, SottovoceError
from engine.protocol.encryption import EncryptionProtocol
from proto import encryption_pb2 as pb
from tests.property.support import (
    BASE,
    T0,
    SeededEntropy,
    device,
    introduced_pair,
    protocol_snapshot,
    wire,
)

seeds = st.binary(min_size=1, max_size=8)
Pair = tuple[EncryptionProtocol, SeededEntropy, EncryptionProtocol, SeededEntropy]


def _conversation_until(seed: bytes, later: bool) -> tuple[Pair, bytes, bytes]:
    """Alice's next message to Bob: her first (X3DH + DR) or, after one round trip, a plain DR message."""
    alice, ae, bob, be = pair = introduced_pair(seed)
    if later:
        assert bob.decrypt(alice.state.identity.public, wire(alice, ae, bob, b"first"), T0, be).plaintext == b"first"
        assert alice.decrypt(bob.state.identity.public, wire(bob, be, alice, b"reply"), T0, ae).forward_secret
    text = b"target " + seed
    return pair, wire(alice, ae, bob, text), text


def _accepted_flip_kind(original: bytes, flipped: bytes) -> str | None:
    """Which unauthenticated part a flip changed, or ``None`` if it touched anything else."""
    before, after = pb.ProtocolMessage.FromString(original), pb.ProtocolMessage.FromString(flipped)
    if after.installation_id != before.installation_id:
        return "installation_id (not covered by any MAC or signature)"
    if len(after.bundles) != len(before.bundles):
        return "bundles field tag (bundle dropped as unknown field)"
    if before.bundles and after.bundles:
        old, new = before.bundles[0].signed_pre_keys, after.bundles[0].signed_pre_keys
        if [e.protocol_version for e in old.values()] != [e.protocol_version for e in new.values()]:
            return "bundle protocol_version (not in the signature material)"
    entries = list(before.encrypted_message.values()), list(after.encrypted_message.values())
    if entries[0] and entries[1]:
        old_x3dh, new_x3dh = entries[0][0].X3DH_header.key, entries[1][0].X3DH_header.key
        if old_x3dh != new_x3dh and old_x3dh[1:] == new_x3dh[1:]:
            return "X3DH ephemeral key parity byte (x-only ECDH gives the same secret for -EK)"
    return None


def _dr_spans(data: bytes) -> list[range]:
    """Byte ranges of the Double Ratchet header key and of the payload inside ``data``."""
    entry = next(iter(pb.ProtocolMessage.FromString(data).encrypted_message.values()))
    spans = []
    for part in (entry.DR_header.key, entry.payload):
        start = data.find(part)
        assert start >= 0 and data.find(part, start + 1) < 0
        spans.append(range(start, start + len(part)))
    return spans


def _check_flip(pair: Pair, data: bytes, text: bytes, bit: int) -> str:
    """Deliver ``data`` with ``bit`` flipped to a copy of Bob; returns the outcome's name."""
    alice, _, bob, be = pair
    receiver, entropy = copy.deepcopy(bob), copy.deepcopy(be)
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    before = protocol_snapshot(receiver.state)
    try:
        result = receiver.decrypt(alice.state.identity.public, bytes(flipped), T0, entropy)
    except SottovoceError as exc:
        assert protocol_snapshot(receiver.state) == before
        again = receiver.decrypt(alice.state.identity.public, data, T0, entropy)
        assert again.plaintext == text and again.forward_secret
        return type(exc).__name__
    assert result.plaintext == text
    assert not any(bit // 8 in span for span in _dr_spans(data)), "flip in the DR header key or payload accepted"
    kind = _accepted_flip_kind(data, bytes(flipped))
    assert kind is not None, f"bit {bit}: accepted flip outside the known unauthenticated fields"
    return "accepted: " + kind


@settings(BASE, max_examples=150)
@given(seed=seeds, later=st.booleans(), data=st.data())
def test_bit_flip_in_a_protocol_message_is_rejected_or_harmless(seed: bytes, later: bool,
                                                                data: st.DataObject) -> None:
    """A flipped bit: typed error with every session untouched and the genuine message still decrypting, or (in
    an unauthenticated field only) the genuine plaintext."""
    pair, message, text = _conversation_until(seed, later)
    spans = _dr_spans(message)
    in_dr = data.draw(st.booleans(), label="aim at the DR part")
    if in_dr:
        byte = data.draw(st.sampled_from([i for span in spans for i in span]), label="byte")
        bit = byte * 8 + data.draw(st.integers(0, 7), label="bit in byte")
    else:
        bit = data.draw(st.integers(0, len(message) * 8 - 1), label="bit")
    outcome = _check_flip(pair, message, text, bit)
    event(outcome)
    if in_dr:
        assert not outcome.startswith("accepted")


def test_every_bit_flip_of_a_first_and_a_later_message() -> None:
    """Exhaustive over every bit of one X3DH message and one later message."""
    for later in (False, True):
        pair, message, text = _conversation_until(b"exhaustive", later)
        outcomes = {_check_flip(pair, message, text, bit) for bit in range(len(message) * 8)}
        assert any(not o.startswith("accepted") for o in outcomes)


@settings(BASE, max_examples=25)
@given(seed=seeds, later=st.booleans())
def test_every_truncation_is_a_typed_error(seed: bytes, later: bool) -> None:
    """A valid ProtocolMessage cut at every length: only SottovoceError subclasses, sessions untouched."""
    (alice, _, bob, be), message, _ = _conversation_until(seed, later)
    before = protocol_snapshot(bob.state)
    for length in range(len(message)):
        try:
            bob.decrypt(alice.state.identity.public, message[:length], T0, be)
        except SottovoceError:
            pass
        else:
            raise AssertionError(f"a truncation to {length} bytes decrypted")
        assert protocol_snapshot(bob.state) == before


@settings(BASE, max_examples=300)
@given(seed=seeds, garbage=st.binary(max_size=400), later=st.booleans())
def test_random_bytes_only_raise_typed_errors(seed: bytes, garbage: bytes, later: bool) -> None:
    (alice, _, bob, be), _, _ = _conversation_until(seed, later)
    before = protocol_snapshot(bob.state)
    try:
        bob.decrypt(alice.state.identity.public, garbage, T0, be)
    except SottovoceError as exc:
        event(type(exc).__name__)
    assert protocol_snapshot(bob.state) == before


def _structured(bob: EncryptionProtocol) -> st.SearchStrategy[bytes]:
    """Well-formed protobuf aimed at Bob with arbitrary header values: reaches the deeper checks."""
    spk = bob.state.own_prekeys[0].key.public

    def key(draw_key: bytes, prefix: int) -> bytes:
        return bytes([prefix]) + draw_key

    keys = st.builds(key, st.binary(min_size=32, max_size=32), st.sampled_from([2, 3])) | st.binary(max_size=40)
    ids = st.just(spk) | keys

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        entry = pb.EncryptedMessageProtocol(payload=draw(st.binary(max_size=120)))
        kind = draw(st.sampled_from(["dr", "x3dh", "dh", "none"]))
        if kind in ("dr", "x3dh"):
            entry.DR_header.key = draw(keys)
            entry.DR_header.n = draw(st.integers(0, 2**32 - 1))
            entry.DR_header.pn = draw(st.integers(0, 2**32 - 1))
            entry.DR_header.id = draw(ids)
        if kind == "x3dh":
            entry.X3DH_header.key = draw(keys)
            entry.X3DH_header.id = draw(ids)
        if kind == "dh":
            entry.DH_header.key = draw(keys)
        message = pb.ProtocolMessage(installation_id=draw(st.text(max_size=20)))
        target = draw(st.sampled_from([bob.state.installation_id, "none", "elsewhere"]))
        message.encrypted_message[target].CopyFrom(entry)
        return message.SerializeToString()

    return build()


@settings(BASE, max_examples=300)
@given(seed=seeds, later=st.booleans(), data=st.data())
def test_structured_garbage_only_raises_typed_errors(seed: bytes, later: bool, data: st.DataObject) -> None:
    (alice, _, bob, be), _, _ = _conversation_until(seed, later)
    message = data.draw(_structured(bob), label="message")
    before = protocol_snapshot(bob.state)
    try:
        bob.decrypt(alice.state.identity.public, message, T0, be)
    except SottovoceError as exc:
        event(type(exc).__name__)
    assert protocol_snapshot(bob.state) == before


@settings(BASE, max_examples=60)
@given(seed=seeds, script=st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 2**16)),
                                   min_size=4, max_size=40))
def test_protocol_conversation_out_of_order_with_replays_rejected(
        seed: bytes, script: list[tuple[bool, bool, int]]) -> None:
    """Alice (who knows Bob's bundle) and Bob exchange ProtocolMessages delivered in any order: each decrypts to
    its plaintext; a delivered forward-secret message, replayed, is a typed error that changes no session."""
    alice, ae, bob, be = introduced_pair(seed)
    devices = {"alice": (alice, ae), "bob": (bob, be)}
    in_flight: dict[str, list[tuple[bytes, bytes]]] = {"alice": [], "bob": []}
    delivered: list[tuple[str, bytes]] = []
    counter = 0

    def deliver(recipient: str, index: int) -> None:
        data, text = in_flight[recipient].pop(index % len(in_flight[recipient]))
        receiver, entropy = devices[recipient]
        sender = devices["bob" if recipient == "alice" else "alice"][0]
        result = receiver.decrypt(sender.state.identity.public, data, T0, entropy)
        assert result.plaintext == text
        if result.forward_secret:
            delivered.append((recipient, data))

    for is_send, is_alice, index in script:
        who = "alice" if is_alice else "bob"
        other = "bob" if is_alice else "alice"
        if is_send:
            text = f"{who} {counter}".encode()
            counter += 1
            in_flight[other].append((wire(devices[who][0], devices[who][1], devices[other][0], text), text))
        elif in_flight[who]:
            deliver(who, index)
    for name in ("alice", "bob"):
        while in_flight[name]:
            deliver(name, 0)
    for recipient, data in delivered:
        receiver, entropy = devices[recipient]
        sender = devices["bob" if recipient == "alice" else "alice"][0]
        before = protocol_snapshot(receiver.state)
        try:
            receiver.decrypt(sender.state.identity.public, data, T0, entropy)
        except DecryptionFailed as exc:
            event(type(exc).__name__)
        else:
            raise AssertionError("a replayed forward-secret message decrypted again")
        assert protocol_snapshot(receiver.state) == before


def test_message_for_another_identity_is_a_typed_error() -> None:
    """Sanity for the helpers: Alice's DH-path message to Carol is a typed error for Bob, sessions untouched."""
    (alice, ae, bob, be), _, _ = _conversation_until(b"other", True)
    carol, _ = device("carol", b"other")
    before = protocol_snapshot(bob.state)
    with pytest.raises(SottovoceError):
        bob.decrypt(alice.state.identity.public, wire(alice, ae, carol, b"not for bob"), T0, be)
    assert protocol_snapshot(bob.state) == before
