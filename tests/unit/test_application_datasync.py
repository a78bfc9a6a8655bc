"""MVDS: spec Appendix A.4, probing, typed errors on garbage, and the BATCH node's schedule."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.crypto.keys import KeyPair, uncompress
from engine.errors import SottovoceError
from engine.protocol.application import datasync, messages, metadata
from engine.protocol.application.datasync import DatasyncMessage, DatasyncPayload, MvdsNode
from engine.protocol.application.errors import InvalidArgument, MalformedDatasync

IK_A = KeyPair.from_private(bytes([0x11]) * 32)
IK_B = KeyPair.from_private(bytes([0x22]) * 32)
PEER_A, PEER_B = uncompress(IK_A.public), uncompress(IK_B.public)
GROUP_AB = bytes.fromhex("dc89de8da5443321f7861e199ea4373e0ba13fd8eef1401fa3d1d8d65fff7b61")


def a1_amm() -> bytes:
    message = messages.chat_message(
        clock=1700000000000, timestamp=1700000000000, text="hello sottovoce", chat_id=messages.key_id(IK_B.public),
        display_name="Alice", propagated_state=messages.PropagatedState(1699999990000, 2, 1699999995000, 3))
    return messages.sign(message, IK_A.private).amm


def test_a4_group_ids_and_mvds_id() -> None:
    assert datasync.group_id(IK_A.public, IK_B.public) == GROUP_AB
    assert datasync.group_id(IK_B.public, IK_A.public) == GROUP_AB
    assert datasync.group_id(IK_A.public, IK_A.public).hex() == \
        "4c39360b661b4eff3f745253a16c4ec491ba62ae68d1c58c8d229d3a08ff4863"
    message = DatasyncMessage(GROUP_AB, 1700000000, a1_amm())
    assert message.id.hex() == "f6b6a647ceaa3ee5578cdb25840247027dbf891713fa053f807e027f28b55bb2"
    payload = datasync.wrap([message])
    assert len(payload) == 323 and payload.startswith(bytes.fromhex("e2b802be028af70220"))
    ack = datasync.wrap([], acks=[message.id])
    assert ack.hex() == "cab80220" + message.id.hex()


def test_bare_amm_and_garbage_are_not_datasync() -> None:
    with pytest.raises(MalformedDatasync):
        datasync.unwrap(a1_amm())
    with pytest.raises(MalformedDatasync):
        datasync.unwrap(b"\xe2\xb8\x02\xff")
    with pytest.raises(MalformedDatasync):
        datasync.unwrap(b"")
    bodies = datasync.application_bodies(a1_amm())
    assert bodies.payload is None and bodies.bodies == (a1_amm(),)


def test_ack_only_payload_is_handed_on_whole() -> None:
    ack = datasync.wrap([], acks=[b"\x01" * 32])
    bodies = datasync.application_bodies(ack)
    assert bodies.payload is not None and bodies.bodies == (ack,)
    parsed = metadata.parse(ack)
    assert not parsed.signed and parsed.type == 0 and parsed.payload == b""


def test_wrong_wire_type_is_not_datasync() -> None:
    with pytest.raises(MalformedDatasync):
        datasync.unwrap(bytes.fromhex("c8b80201"))  # field 5001 as a varint: skipped as unknown


def test_batch_node_sends_at_next_epoch_and_acks_next_tick() -> None:
    alice, bob = MvdsNode(), MvdsNode()
    mvds_id = alice.append_message(GROUP_AB, PEER_B, a1_amm(), 1700000000)
    assert alice.tick() == []  # queued in epoch 0: goes out at the tick of epoch 1
    [out] = alice.tick()
    assert out.peer == PEER_B and out.payload.messages[0].id == mvds_id
    received = bob.receive(PEER_A, datasync.unwrap(out.plaintext))
    assert [m.id for m in received.new_messages] == [mvds_id]
    [ack] = bob.tick()
    assert ack.peer == PEER_A and ack.payload.acks == (mvds_id,) and not ack.payload.messages
    assert alice.receive(PEER_B, ack.payload).acked == (mvds_id,)
    assert alice.pending(PEER_B) == []
    assert all(alice.tick() == [] for _ in range(1000))


def test_duplicates_are_acked_again_but_not_new() -> None:
    bob = MvdsNode()
    payload = DatasyncPayload(messages=(DatasyncMessage(GROUP_AB, 1, b"body"),))
    assert len(bob.receive(PEER_A, payload).new_messages) == 1
    again = bob.receive(PEER_A, payload)
    assert again.new_messages == () and len(again.duplicates) == 1
    [out] = bob.tick()
    assert len(out.payload.acks) == 2


def test_retransmission_schedule_and_give_up() -> None:
    node = MvdsNode(jitter=lambda: 7)
    node.append_message(GROUP_AB, PEER_B, b"body", 1)
    sends = []
    while (due := node.next_due()) is not None:
        node.skip_to(due)
        assert node.tick()
        sends.append(due)
    assert node.pending(PEER_B) == [] and node.tick() == []
    assert len(sends) == 16
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps == [90 * 2 ** (k - 1) + 7 for k in range(1, 16)]
    assert sends[0] == 1


def test_skip_to_refuses_to_jump_over_work() -> None:
    node = MvdsNode()
    node.append_message(GROUP_AB, PEER_B, b"body", 1)
    with pytest.raises(InvalidArgument):
        node.skip_to(5)
    node.skip_to(1)
    assert node.tick()


def test_jitter_out_of_range_is_refused() -> None:
    node = MvdsNode(jitter=lambda: 30)
    node.append_message(GROUP_AB, PEER_B, b"body", 1)
    node.tick()
    with pytest.raises(InvalidArgument):
        node.tick()


def test_request_resends_and_offer_requests() -> None:
    node = MvdsNode()
    mvds_id = node.append_message(GROUP_AB, PEER_B, b"body", 1)
    node.tick()
    node.tick()
    node.receive(PEER_B, DatasyncPayload(requests=(mvds_id,), offers=(b"\x09" * 32,)))
    [out] = node.tick()
    assert out.payload.messages[0].id == mvds_id and out.payload.requests == (b"\x09" * 32,)


messages_strategy = st.lists(
    st.builds(DatasyncMessage, st.binary(min_size=32, max_size=32), st.integers(-(2**63), 2**63 - 1),
              st.binary(max_size=200)), max_size=5)


@given(messages_strategy, st.lists(st.binary(min_size=32, max_size=32), max_size=5))
def test_wrap_unwrap_round_trip(items: list[DatasyncMessage], acks: list[bytes]) -> None:
    plaintext = datasync.wrap(items, acks=acks)
    if not items and not acks:
        with pytest.raises(MalformedDatasync):
            datasync.unwrap(plaintext)
        return
    payload = datasync.unwrap(plaintext)
    assert payload.messages == tuple(items) and payload.acks == tuple(acks)
    assert datasync.encode_payload(payload) == plaintext


@given(st.binary(max_size=300))
def test_garbage_payloads_only_raise_typed_errors(data: bytes) -> None:
    with contextlib.suppress(SottovoceError):
        datasync.unwrap(data)
    node = MvdsNode()
    bodies = datasync.application_bodies(data)
    if bodies.payload is not None:
        node.receive(PEER_A, bodies.payload)
    node.tick()
