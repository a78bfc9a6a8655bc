"""AMM wrap/parse, message ids and Go-exact encoding: spec Appendix A, round trips, malformed input."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from engine.crypto.keys import KeyPair, uncompress
from engine.errors import BadRecoveryId, BadSignatureLength, SottovoceError
from engine.protocol.application import messages, metadata, wire
from engine.protocol.application.errors import InvalidArgument, MalformedAmm
from engine.protocol.application.validation import INNER_MESSAGES
from proto.chat_message_pb2 import ChatMessage, StickerMessage

IK_A = KeyPair.from_private(bytes([0x11]) * 32)
IK_B = KeyPair.from_private(bytes([0x22]) * 32)
KEY_ID_B = messages.key_id(IK_B.public)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# spec Appendix A.1
A1_PAYLOAD = h("""
0880d095ffbc311080d095ffbc311a0f68656c6c6f20736f74746f766f63653284013078303434363664376663616535
363365356362303961306431383730626235383033343438303436313738373961313439343963663232323835663162
616533663237363732383137366333633634333166386565646134353338646333376338363565323738346633613965
37376430343466333365343037373937653132373861380140017205416c6963657a1208f08195ffbc31100218f8a895
ffbc312003""")
A1_SIGNATURE = h("59875fa46b0b32a3e58ed0baf949911482002ac8f1e898e22cc1b04148a0b10f"
                 "76a3e258b83dba2dd0ad35e703185c9c889fc9e2c1a16286602db0c85821692001")
A1_ID = "0xa7338fbc4d54bfba91b75e32bf4cfe91d8491424080575ac837ed44927615c74"


def a1_message() -> ChatMessage:
    return messages.chat_message(
        clock=1700000000000, timestamp=1700000000000, text="hello sottovoce", chat_id=KEY_ID_B,
        display_name="Alice",
        propagated_state=messages.PropagatedState(1699999990000, 2, 1699999995000, 3))


def test_key_id_is_uncompressed_hex() -> None:
    assert KEY_ID_B == "0x04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27" \
                       "6728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a"
    assert len(messages.default_contact_request_id(IK_B.public)) == 134


def test_a1_text_message() -> None:
    payload = messages.encode(a1_message())
    assert payload == A1_PAYLOAD
    wrapped = messages.sign(a1_message(), IK_A.private)
    assert wrapped.signature == A1_SIGNATURE
    assert wrapped.amm == b"\x0a\x41" + A1_SIGNATURE + b"\x12\xc5\x01" + A1_PAYLOAD + b"\x18\x01"
    assert wrapped.message_id == A1_ID
    parsed = metadata.parse(wrapped.amm, IK_A.public)
    assert parsed.author == uncompress(IK_A.public) and parsed.message_id == A1_ID
    assert parsed.type_name == "CHAT_MESSAGE"


def test_a1b_zero_state_is_still_written() -> None:
    message = messages.chat_message(clock=1700000000000, timestamp=1700000000000, text="hello sottovoce",
                                    chat_id=KEY_ID_B)
    payload = messages.encode(message)
    assert payload.endswith(h("3801 4001 7a00"))
    assert messages.sign(message, IK_A.private).message_id == \
        "0xd341f257e50bc3241bc12d83735358ccc971a44d551e85a7122193241aa8086b"


def test_a2_contact_request_and_a3_accept() -> None:
    request = messages.contact_request(clock=1700000100002, timestamp=1700000100000, chat_id=KEY_ID_B,
                                       display_name="Alice", request_clock=1700000100000,
                                       text="Hi Bob, it's Alice", customization_color=4)
    wrapped = messages.sign(request, IK_A.private)
    assert wrapped.message_id == "0x6137544e1c98d3af962879fbd566296afbc99f737b35dcc8254cfe97e25084dc"
    assert messages.encode(request).endswith(h("7a0908a0dd9bffbc3110029801 04"))
    accept = messages.accept_contact_request(wrapped.message_id, 1700000200000)
    accepted = messages.sign(accept, IK_B.private)
    assert accepted.amm.endswith(b"\x18\x2e")
    assert accepted.message_id == "0xca2c2d62a6112b8ef8ff2d61e70735bd52d5c2a673df51ec08fd5d33fbcea10d"


def test_a6_contact_update_and_a7_pair_installation() -> None:
    update = messages.contact_update(clock=1700000100001, display_name="Alice", public_key=KEY_ID_B,
                                     propagated_state=messages.PropagatedState(1700000100000, 2),
                                     customization_color=4)
    assert len(messages.encode(update)) == 169
    assert messages.sign(update, IK_A.private).message_id == \
        "0xa9b41fd65b70205f16110aa481de6bb1fc4663d30f9381c9bc42dfbd73a57f7b"
    pair = messages.sync_pair_installation(
        clock=1700000300000, installation_id="0b4d6f8a-1c3e-4a5b-8d7f-9e1a2b3c4d5e", device_type="linux",
        name="sottovoce laptop", target_installation_id="e2b7c5a4-3f1d-4c8e-9a6b-0d2f4e6a8c1b")
    wrapped = messages.sign(pair, IK_A.private)
    assert len(wrapped.amm) == 181
    assert wrapped.message_id == "0xfcaeddb919b4e928b589864f7894657a707bcad88a80212a23e55e392ad884f1"


def test_a8_oneof_member_is_written_last() -> None:
    message = ChatMessage(clock=1, timestamp=1, chat_id="x", message_type=1, content_type=2, display_name="Alice")
    message.sticker.CopyFrom(StickerMessage(hash="h"))
    assert messages.encode(message) == h("0801 1001 320178 3801 4002 7205416c696365 4a030a0168")
    assert message.SerializeToString() == h("0801 1001 320178 3801 4002 4a030a0168 7205416c696365")
    assert wire.parse(ChatMessage, messages.encode(message)) == message


ALL_BUILT: list[Message] = [
    a1_message(),
    messages.sticker_message(clock=5, timestamp=5, text="s", chat_id=KEY_ID_B, sticker_hash="hash", pack=3,
                             display_name="Alice"),
    messages.contact_request(clock=3, timestamp=3, chat_id=KEY_ID_B, display_name="Alice", request_clock=2),
    messages.accept_contact_request("0x" + "ab" * 32, 9),
    messages.retract_contact_request(10),
    messages.contact_request_decision(clock=11, request_id="0x" + "cd" * 32, declined=True),
    messages.contact_update(clock=4, display_name="Alice", public_key=KEY_ID_B,
                            propagated_state=messages.PropagatedState(2, 2)),
    messages.sync_pair_installation(clock=6, installation_id="id", device_type="linux", name="laptop "),
    messages.chat_identity(clock=7, display_name="Alice", description="bio", customization_color=4),
    messages.emoji_reaction(clock=8, chat_id=KEY_ID_B, message_id=A1_ID, emoji=1),
]


@pytest.mark.parametrize("message", ALL_BUILT, ids=lambda m: m.DESCRIPTOR.name)
def test_every_message_type_round_trips_through_a_signed_amm(message: Message) -> None:
    wrapped = messages.sign(message, IK_A.private)
    parsed = metadata.parse(wrapped.amm, IK_A.public)
    assert parsed.author == uncompress(IK_A.public)
    assert parsed.message_id == wrapped.message_id
    cls = INNER_MESSAGES[parsed.type]
    decoded = wire.parse(cls, parsed.payload)
    assert decoded == message
    assert messages.encode(decoded) == parsed.payload
    assert wire.message_from_fields(cls, wire.message_to_fields(decoded)) == decoded


def test_unsigned_amm_uses_transport_signer_and_plain_hash() -> None:
    amm = h("1203") + b"\x08\x01\x10" + h("1801")  # payload 080110 (truncated varint inside is fine here)
    parsed = metadata.parse(amm, IK_B.public)
    assert not parsed.signed and parsed.author is None
    assert parsed.effective_sender == uncompress(IK_B.public)
    assert parsed.message_id == metadata.message_id(amm, None)


def test_signature_errors_are_typed() -> None:
    wrapped = messages.sign(a1_message(), IK_A.private)
    bad_v = bytearray(wrapped.amm)
    bad_v[2 + 64] = 27
    with pytest.raises(BadRecoveryId):
        metadata.parse(bytes(bad_v))
    short = metadata.ApplicationMetadataMessage(signature=b"\x01" * 64, payload=b"x", type=1)
    with pytest.raises(BadSignatureLength):
        metadata.parse(short.SerializeToString())


@pytest.mark.parametrize("cut", [1, 2, 10, 66, 100, 268])
def test_truncated_amm_is_malformed(cut: int) -> None:
    amm = messages.sign(a1_message(), IK_A.private).amm
    with pytest.raises(MalformedAmm):
        metadata.parse(amm[:cut])


def test_wrap_refuses_empty_payload() -> None:
    with pytest.raises(InvalidArgument):
        metadata.wrap(b"", 1, IK_A.private)


def test_type_is_not_signed_but_changes_the_id() -> None:
    wrapped = messages.sign(a1_message(), IK_A.private)
    retyped = wrapped.amm[:-1] + b"\x02"
    parsed = metadata.parse(retyped)
    assert parsed.author == uncompress(IK_A.public) and parsed.message_id != wrapped.message_id


@given(st.binary(max_size=400))
def test_garbage_amm_only_raises_typed_errors(data: bytes) -> None:
    try:
        parsed = metadata.parse(data)
    except SottovoceError:
        return
    assert parsed.message_id.startswith("0x") and len(parsed.message_id) == 66


def test_wrapping_with_the_known_author_gives_the_recovered_authors_message_id() -> None:
    from engine.crypto.keys import KeyPair
    from engine.protocol.application.metadata import wrap

    key = KeyPair.from_private(bytes(range(1, 33)))
    recovered = wrap(b"\x0a\x02hi", 1, key.private)
    assert wrap(b"\x0a\x02hi", 1, key.private, key.public) == recovered
