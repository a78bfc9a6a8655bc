"""status-go's receive-side dispatch and validators: every rejection is a typed verdict, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.crypto.keys import KeyPair
from engine.protocol.application import messages, metadata, validation
from engine.protocol.application.errors import InvalidDisplayName, RejectedMessage
from proto.chat_message_pb2 import ChatMessage, ImageMessage
from proto.emoji_reaction_pb2 import EmojiReaction

IK_A = KeyPair.from_private(bytes([0x11]) * 32)
IK_B = KeyPair.from_private(bytes([0x22]) * 32)
NOW = 1_700_000_000_000


def fake_alias(name: str) -> bool:
    return name == "Able Absolute Aardvark"


def context(own: bytes = IK_B.public, whisper: int = NOW, now: int | None = None) -> validation.ReceiveContext:
    return validation.ReceiveContext(own_identity=own, whisper_timestamp_ms=whisper,
                                     is_generated_alias=fake_alias, now_ms=now)


def text(**changes: object) -> ChatMessage:
    message = messages.chat_message(clock=NOW, timestamp=NOW, text="hi there", chat_id=messages.key_id(IK_B.public),
                                    display_name="Alice")
    for name, value in changes.items():
        setattr(message, name, value)
    return message


def verdict_of(message: object, signer: KeyPair = IK_A, ctx: validation.ReceiveContext | None = None,
               amm_type: int | None = None) -> validation.Verdict:
    payload = messages.encode(message)  # type: ignore[arg-type]
    kind = amm_type if amm_type is not None else messages.amm_type_of(message)  # type: ignore[arg-type]
    wrapped = metadata.wrap(payload, kind, signer.private)
    return validation.validate(metadata.parse(wrapped.amm, signer.public), ctx or context())


def test_valid_text_is_accepted_and_decoded() -> None:
    verdict = verdict_of(text())
    assert verdict.accepted and verdict.inner_name == "ChatMessage" and verdict.error_class is None
    assert verdict.inner == text()


@pytest.mark.parametrize(("changes", "error_class"), [
    ({"clock": 0}, "clock_zero"),
    ({"clock": NOW + 120_001}, "clock_too_high"),
    ({"timestamp": 0}, "timestamp_zero"),
    ({"text": " \t\n\u3000"}, "empty_text"),
    ({"text": "é" * 4097}, "text_too_long"),
    ({"chat_id": ""}, "empty_chat_id"),
    ({"message_type": 0}, "unknown_message_type"),
    ({"message_type": 4}, "unknown_message_type"),
    ({"content_type": 0}, "unknown_content_type"),
    ({"content_type": 5}, "content_type_not_allowed"),
    ({"content_type": 6}, "content_type_not_allowed"),
    ({"content_type": 15}, "content_type_not_allowed"),
    ({"content_type": 2}, "invalid_sticker"),
    ({"content_type": 7}, "missing_field"),
    ({"content_type": 8}, "missing_field"),
    ({"content_type": 18}, "missing_field"),
    ({"display_name": "Bob"}, "invalid_display_name"),
    ({"display_name": "a" * 25}, "invalid_display_name"),
    ({"display_name": "Alice_eth"}, "invalid_display_name"),
    ({"display_name": "Alice-eth"}, "invalid_display_name"),
    ({"display_name": "Alicé Doe"}, "invalid_display_name"),
    ({"display_name": "Able Absolute Aardvark"}, "invalid_display_name"),
])
def test_chat_message_rejections(changes: dict[str, object], error_class: str) -> None:
    verdict = verdict_of(text(**changes))
    assert not verdict.accepted
    assert verdict.error_class == error_class
    with pytest.raises(RejectedMessage):
        verdict.raise_if_rejected()


def test_clock_drift_boundary_and_text_limit() -> None:
    assert verdict_of(text(clock=NOW + 120_000)).accepted
    assert verdict_of(text(text="é" * 4096)).accepted
    assert verdict_of(text(display_name="  Alice  ")).accepted
    assert verdict_of(text(display_name="")).accepted


def test_image_without_text_is_accepted() -> None:
    message = text(text="", content_type=7)
    message.image.CopyFrom(ImageMessage(payload=b"\x89PNG", format=1))
    assert verdict_of(message).accepted


def test_sync_types_only_from_own_identity() -> None:
    pair = messages.sync_pair_installation(clock=NOW, installation_id="i", device_type="linux", name="n")
    assert verdict_of(pair).error_class == "sync_not_from_self"
    mine = verdict_of(pair, signer=IK_B)
    assert mine.accepted and mine.inner_name == "SyncPairInstallation"
    blank = messages.sync_pair_installation(clock=NOW, installation_id=" ", device_type="linux", name="n")
    assert verdict_of(blank, signer=IK_B).error_class == "missing_field"


def test_unknown_and_deprecated_types_have_no_handler() -> None:
    for kind in (0, 5, 14, 26, 63, 999):
        assert verdict_of(text(), amm_type=kind).error_class == "no_handler"


def test_undecodable_and_invalid_utf8_payloads() -> None:
    wrapped = metadata.wrap(b"\x1a\x01\xff", 1, IK_A.private)
    verdict = validation.validate(metadata.parse(wrapped.amm), context())
    assert verdict.error_class == "invalid_utf8" and verdict.inner_name == "ChatMessage"
    wrapped = metadata.wrap(b"\x0a\x05\x01", 1, IK_A.private)
    assert validation.validate(metadata.parse(wrapped.amm), context()).error_class == "malformed_payload"


def test_contact_update_and_retract_from_self_are_ignored() -> None:
    update = messages.contact_update(clock=NOW, display_name="Alice", public_key="0x04",
                                     propagated_state=messages.PropagatedState())
    assert verdict_of(update, signer=IK_B).error_class == "from_self_ignored"
    assert verdict_of(update).accepted
    bad = messages.contact_update(clock=NOW, display_name="Al", public_key="0x04",
                                  propagated_state=messages.PropagatedState())
    assert verdict_of(bad).error_class == "invalid_display_name"
    assert verdict_of(messages.retract_contact_request(NOW), signer=IK_B).error_class == "from_self_ignored"
    assert verdict_of(messages.accept_contact_request("unknown-id", NOW)).accepted


def test_chat_identity_display_name() -> None:
    assert verdict_of(messages.chat_identity(clock=NOW, display_name="Alice")).accepted
    assert verdict_of(messages.chat_identity(clock=NOW, display_name="A.eth")).error_class == \
        "invalid_display_name"


def test_emoji_reaction_uses_receiver_clock() -> None:
    reaction = messages.emoji_reaction(clock=NOW + 200_000, chat_id="0x04", message_id="0x01", emoji=1)
    assert verdict_of(reaction, ctx=context(now=NOW + 100_000)).accepted
    assert verdict_of(reaction, ctx=context(now=NOW)).error_class == "clock_too_high"
    assert verdict_of(EmojiReaction(clock=NOW, chat_id="c", message_id="m", message_type=1)).error_class == \
        "missing_field"
    assert verdict_of(EmojiReaction(clock=NOW, message_id="m", type=1, message_type=1)).error_class == \
        "empty_chat_id"


def test_sendable_display_name() -> None:
    assert messages.sendable_display_name(" Alice ", fake_alias) == "Alice"
    assert messages.sendable_display_name("Bob", fake_alias) == ""
    with pytest.raises(InvalidDisplayName):
        validation.validate_display_name("Able Absolute Aardvark", fake_alias)


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=100))
def test_any_inner_payload_gives_a_verdict(payload: bytes, kind: int) -> None:
    amm = metadata.ApplicationMetadataMessage(payload=payload, type=kind).SerializeToString()  # type: ignore[arg-type]
    parsed = metadata.parse(amm, IK_A.public)
    verdict = validation.validate(parsed, context())
    assert verdict.accepted or verdict.error is not None
