"""Properties of the Double Ratchet (spec §5) and of its serialized local state, on bare RatchetStates."""

from __future__ import annotations

import copy
import struct

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.errors import DecryptionFailed, MalformedMessage, SottovoceError, TooManySkippedKeys
from engine.protocol.ratchet import MAX_SKIP, RatchetHeader
from engine.protocol.serialization import ratchet_from_bytes, ratchet_to_bytes
from tests.property.support import BASE, PARTIES, Conversation, Sent, snapshot

seeds = st.binary(min_size=1, max_size=8)
steps = st.tuples(st.booleans(), st.booleans(), st.integers(0, 2**16))
scripts = st.lists(steps, max_size=40)
long_scripts = st.lists(steps, min_size=10, max_size=120)
parties = st.sampled_from(PARTIES)
_COUNTERS = struct.Struct("<II")


def _warmed_up(seed: bytes, script: list[tuple[bool, bool, int]]) -> Conversation:
    conversation = Conversation(seed)
    conversation.run(script)
    conversation.flush()
    return conversation


def _assert_rejected(conversation: Conversation, recipient: str, header: RatchetHeader, payload: bytes,
                     expected: type[SottovoceError] = SottovoceError) -> None:
    """Decryption raises ``expected`` and changes nothing in the recipient's state."""
    state = conversation.states[recipient]
    before = snapshot(state)
    entropy_before = conversation.entropy[recipient].counter
    with pytest.raises(expected):
        state.decrypt(header, payload, conversation.entropy[recipient], confirm=True)
    assert snapshot(state) == before
    assert conversation.entropy[recipient].counter == entropy_before


@settings(BASE, max_examples=100)
@given(seed=seeds, prelude=st.lists(steps, max_size=12), sender=parties, data=st.data(),
       size=st.one_of(st.integers(1, 64), st.integers(65, MAX_SKIP + 1), st.integers(MAX_SKIP - 8, MAX_SKIP + 1)))
def test_burst_in_any_order_decrypts_each_message_exactly_once(seed: bytes, prelude: list[tuple[bool, bool, int]],
                                                               sender: str, size: int, data: st.DataObject) -> None:
    """A burst of up to MAX_SKIP + 1 messages (at most MAX_SKIP keys skipped) delivered in any order."""
    event(f"burst size {'1-64' if size <= 64 else '65-992' if size < MAX_SKIP - 8 else '992-1001'}")
    conversation = _warmed_up(seed, prelude)
    recipient = Conversation.peer(sender)
    burst = [conversation.send(sender) for _ in range(size)]
    order = data.draw(st.permutations(range(size)), label="order")
    conversation.in_flight[recipient].clear()
    state, entropy = conversation.states[recipient], conversation.entropy[recipient]
    for index in order:
        message = burst[index]
        assert state.decrypt(message.header, message.payload, entropy, confirm=True) == message.plaintext
    assert state.skipped == {}  # every skipped key was used once and deleted
    again = burst[data.draw(st.integers(0, size - 1), label="replayed")]
    _assert_rejected(conversation, recipient, again.header, again.payload, DecryptionFailed)


@settings(BASE, max_examples=300)
@given(seed=seeds, script=long_scripts, order=st.integers(0, 2**16))
def test_interleaved_conversation_with_ratchet_steps_decrypts_everything(
        seed: bytes, script: list[tuple[bool, bool, int]], order: int) -> None:
    """Both sides send and receive in any interleaving, across DH ratchet steps, out of order within and across
    chains: every message decrypts once to its plaintext and no stored key is left over."""
    conversation = Conversation(seed)
    conversation.run(script)
    conversation.flush(order)
    steps_taken = sum(1 for a, b in zip(conversation.delivered, conversation.delivered[1:], strict=False)
                      if a.header.key != b.header.key)
    event(f"{conversation.sent_count // 20 * 20}+ messages")
    event(f"ratchet keys changed between deliveries: {min(steps_taken, 5)}{'+' if steps_taken >= 5 else ''}")
    assert len(conversation.delivered) == conversation.sent_count
    assert all(not state.skipped for state in conversation.states.values())


@settings(BASE, max_examples=300)
@given(seed=seeds, prelude=scripts, sender=parties, count=st.integers(1, 4), data=st.data())
def test_any_bit_flip_is_rejected_and_changes_nothing(seed: bytes, prelude: list[tuple[bool, bool, int]],
                                                      sender: str, count: int, data: st.DataObject) -> None:
    """A bit flipped anywhere in ``header ‖ payload`` (header as its 41-byte AD encoding) is a typed error, the
    state is untouched, and the genuine message decrypts afterwards (through a stored key or a fresh chain step)."""
    conversation = Conversation(seed)
    conversation.run(prelude)
    recipient = Conversation.peer(sender)
    messages = [conversation.send(sender) for _ in range(count)]
    target = messages[data.draw(st.integers(0, count - 1), label="target")]
    if data.draw(st.booleans(), label="deliver the others first"):
        for message in messages:
            if message is not target:
                conversation.in_flight[recipient].remove(message)
                conversation.states[recipient].decrypt(message.header, message.payload,
                                                       conversation.entropy[recipient], confirm=True)
    encoded = target.header.associated_data() + target.payload
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    flipped = bytearray(encoded)
    flipped[bit // 8] ^= 1 << (bit % 8)
    n, pn = _COUNTERS.unpack_from(flipped)
    header = RatchetHeader(bytes(flipped[8:41]), n, pn)
    _assert_rejected(conversation, recipient, header, bytes(flipped[41:]))
    state = conversation.states[recipient]
    assert state.decrypt(target.header, target.payload, conversation.entropy[recipient], confirm=True) == \
        target.plaintext


@settings(BASE, max_examples=150)
@given(seed=seeds, script=scripts, replays=st.lists(st.integers(0, 2**16), min_size=1, max_size=5))
def test_replays_are_rejected_and_change_nothing(seed: bytes, script: list[tuple[bool, bool, int]],
                                                 replays: list[int]) -> None:
    """With ``confirm=True`` a message already decrypted is rejected (typed) mid-conversation and at the end."""
    conversation = Conversation(seed)
    conversation.run(script)
    for phase in ("mid", "end"):
        if phase == "end":
            conversation.flush()
        if not conversation.delivered:
            continue
        for index in replays:
            message = conversation.delivered[index % len(conversation.delivered)]
            _assert_rejected(conversation, Conversation.peer(message.sender), message.header, message.payload,
                             DecryptionFailed)


@settings(BASE, max_examples=50)
@given(seed=seeds, prelude=scripts, sender=parties, extra=st.integers(1, 40))
def test_too_many_skipped_in_the_current_chain_is_rejected(seed: bytes, prelude: list[tuple[bool, bool, int]],
                                                            sender: str, extra: int) -> None:
    """A message needing MAX_SKIP + extra skipped keys is rejected with nothing changed; exactly MAX_SKIP is fine."""
    conversation = _warmed_up(seed, prelude)
    recipient = Conversation.peer(sender)
    burst = [conversation.send(sender) for _ in range(MAX_SKIP + extra + 1)]
    too_far = burst[MAX_SKIP + extra]
    _assert_rejected(conversation, recipient, too_far.header, too_far.payload, TooManySkippedKeys)
    state, entropy = conversation.states[recipient], conversation.entropy[recipient]
    edge = burst[MAX_SKIP]
    assert state.decrypt(edge.header, edge.payload, entropy, confirm=True) == edge.plaintext
    assert len(state.skipped) == MAX_SKIP
    assert state.decrypt(too_far.header, too_far.payload, entropy, confirm=True) == too_far.plaintext


@settings(BASE, max_examples=50)
@given(seed=seeds, extra=st.integers(1, 40), first=parties)
def test_too_many_skipped_in_the_previous_chain_is_rejected(seed: bytes, extra: int, first: str) -> None:
    """A ratchet-step message whose PN leaves more than MAX_SKIP keys behind in the old chain is rejected."""
    conversation = Conversation(seed)
    if first == "bob":  # Bob opens on his SPK chain; Alice answers, so her next key is a fresh one for him
        conversation.send("bob")
        conversation.deliver("alice", 0)
    conversation.send("alice")
    conversation.deliver("bob", 0)
    old_chain = [conversation.send("alice") for _ in range(MAX_SKIP + extra)]
    conversation.send("bob")
    conversation.deliver("alice", -1)  # Alice steps: her next message starts a new chain
    stepped = conversation.send("alice")
    assert stepped.header.pn == MAX_SKIP + extra + 1 and stepped.header.key != old_chain[0].header.key
    _assert_rejected(conversation, "bob", stepped.header, stepped.payload, TooManySkippedKeys)
    bob, entropy = conversation.states["bob"], conversation.entropy["bob"]
    for message in old_chain[: extra]:  # once Bob has caught up, the step is within the window
        assert bob.decrypt(message.header, message.payload, entropy, confirm=True) == message.plaintext
    assert bob.decrypt(stepped.header, stepped.payload, entropy, confirm=True) == stepped.plaintext


@settings(BASE, max_examples=300)
@given(seed=seeds, prelude=scripts, key=st.binary(min_size=0, max_size=66), n=st.integers(0, 2**32 - 1),
       pn=st.integers(0, 2**32 - 1), payload=st.binary(max_size=200), recipient=parties)
def test_garbage_ratchet_messages_only_raise_typed_errors(seed: bytes, prelude: list[tuple[bool, bool, int]],
                                                          key: bytes, n: int, pn: int, payload: bytes,
                                                          recipient: str) -> None:
    """Arbitrary header fields and payload bytes: a SottovoceError, state untouched."""
    conversation = Conversation(seed)
    conversation.run(prelude)
    _assert_rejected(conversation, recipient, RatchetHeader(key, n, pn), payload)


# --- serialized local state ----------------------------------------------------------------------------------


def _continue(conversation: Conversation, script: list[tuple[bool, bool, int]]) -> list[bytes]:
    """Run ``script`` then flush, recording every header, payload and plaintext as bytes."""
    transcript: list[bytes] = []
    for is_send, is_alice, index in script:
        who = "alice" if is_alice else "bob"
        message: Sent | None = conversation.send(who) if is_send else conversation.deliver(who, index)
        if message is not None:
            transcript += [message.header.associated_data(), message.payload, message.plaintext]
    conversation.flush()
    transcript += [m.header.associated_data() + m.payload for m in conversation.delivered]
    return transcript


@settings(BASE, max_examples=200)
@given(seed=seeds, before=scripts, after=scripts)
def test_serialized_session_continues_exactly_like_the_original(seed: bytes, before: list[tuple[bool, bool, int]],
                                                                after: list[tuple[bool, bool, int]]) -> None:
    """serialize → parse → the restored states (skipped keys, in flight messages) behave byte for byte alike."""
    original = Conversation(seed)
    original.run(before)
    restored = original.clone()
    for name in PARTIES:
        data = ratchet_to_bytes(original.states[name])
        restored.states[name] = ratchet_from_bytes(data)
        assert snapshot(restored.states[name]) == snapshot(original.states[name])
        assert ratchet_to_bytes(restored.states[name]) == data
    assert _continue(restored, after) == _continue(original, after)
    for name in PARTIES:
        assert snapshot(restored.states[name]) == snapshot(original.states[name])


@settings(BASE, max_examples=100)
@given(seed=seeds, script=scripts, data=st.data())
def test_malformed_serialized_state_is_a_typed_error(seed: bytes, script: list[tuple[bool, bool, int]],
                                                     data: st.DataObject) -> None:
    """Every truncation, any single bit flip and random bytes give MalformedMessage, nothing else."""
    conversation = Conversation(seed)
    conversation.run(script)
    encoded = ratchet_to_bytes(conversation.states[data.draw(parties, label="party")])
    for length in range(len(encoded)):
        with pytest.raises(MalformedMessage):
            ratchet_from_bytes(encoded[:length])
    with pytest.raises(MalformedMessage):
        ratchet_from_bytes(data.draw(st.binary(max_size=300), label="garbage") + b"\xff")
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1), label="bit")
    flipped = bytearray(encoded)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(MalformedMessage):
        ratchet_from_bytes(bytes(flipped))


def test_restored_state_is_independent_of_the_original() -> None:
    conversation = Conversation(b"independent")
    conversation.run([(True, True, 0), (True, True, 0), (False, False, 1)])
    restored = ratchet_from_bytes(ratchet_to_bytes(conversation.states["bob"]))
    before = snapshot(restored)
    conversation.flush()
    assert snapshot(restored) == before
    assert copy.deepcopy(restored).skipped == restored.skipped
