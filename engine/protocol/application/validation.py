"""status-go's receive-side dispatch and validators (spec §2 steps 7–8, §6.5, §7.8, §8.1).

:func:`validate` decides what status-go's generated dispatcher and each handler's first validation would
do with a parsed AMM: no handler for the type, a ``SYNC_*`` type from someone else, an unparseable inner
message, or one of the validator rejections. It never raises for peer input; the verdict carries a typed
error whose ``code`` is the vectors' ``error_class``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from proto.chat_identity_pb2 import ChatIdentity
from proto.chat_message_pb2 import ChatMessage
from proto.contact_pb2 import AcceptContactRequest, ContactUpdate, RetractContactRequest
from proto.emoji_reaction_pb2 import EmojiReaction
from proto.enums_pb2 import MessageType
from proto.pairing_pb2 import (
    SyncChat,
    SyncChatMessagesRead,
    SyncChatRemoved,
    SyncClearHistory,
    SyncContactRequestDecision,
    SyncInstallationContactV2,
    SyncPairInstallation,
)
from proto.push_notifications_pb2 import ContactCodeAdvertisement
from proto.status_update_pb2 import StatusUpdate

from ...crypto.keys import uncompress
from . import wire
from .errors import (
    ClockTooHigh,
    ClockZero,
    ContentTypeNotAllowed,
    EmptyChatId,
    EmptyText,
    FromSelfIgnored,
    InvalidDisplayName,
    InvalidSticker,
    MissingField,
    NoHandler,
    RejectedMessage,
    SyncNotFromSelf,
    TextTooLong,
    TimestampTooHigh,
    TimestampZero,
    UnknownContentType,
    UnknownMessageType,
)
from .metadata import AmmType, ParsedMessage, type_name

AliasCheck = Callable[[str], bool]
"""Whether a display name is a three-word generated alias (identity.md §7 ``IsAlias``)."""

MAX_TEXT_RUNES = 4096
MAX_FUTURE_DRIFT_MS = 120_000
MAX_STORED_INT = (1 << 63) - 1
"""The largest SQLite INTEGER: a received value the store keeps must not exceed it (go-sqlite3 refuses a
uint64 with the high bit set, so status-go cannot store such a message either)."""
DISPLAY_NAME_MIN, DISPLAY_NAME_MAX = 5, 24

# AMM types the generated dispatcher skips: no handler, like any number the enum does not define
NOT_DISPATCHED = frozenset({AmmType.UNKNOWN, AmmType.DEPRECATED_SYNC_INSTALLATION,
                            AmmType.COMMUNITY_INVITATION, AmmType.SYNC_SOCIAL_LINKS})

INNER_MESSAGES: dict[int, type[Message]] = {
    AmmType.CHAT_MESSAGE: ChatMessage,
    AmmType.CONTACT_UPDATE: ContactUpdate,
    AmmType.SYNC_PAIR_INSTALLATION: SyncPairInstallation,
    AmmType.SYNC_INSTALLATION_CONTACT_V2: SyncInstallationContactV2,
    AmmType.CONTACT_CODE_ADVERTISEMENT: ContactCodeAdvertisement,
    AmmType.EMOJI_REACTION: EmojiReaction,
    AmmType.CHAT_IDENTITY: ChatIdentity,
    AmmType.STATUS_UPDATE: StatusUpdate,
    AmmType.SYNC_CHAT_REMOVED: SyncChatRemoved,
    AmmType.SYNC_CHAT_MESSAGES_READ: SyncChatMessagesRead,
    AmmType.SYNC_CLEAR_HISTORY: SyncClearHistory,
    AmmType.ACCEPT_CONTACT_REQUEST: AcceptContactRequest,
    AmmType.RETRACT_CONTACT_REQUEST: RetractContactRequest,
    AmmType.SYNC_CONTACT_REQUEST_DECISION: SyncContactRequestDecision,
    AmmType.SYNC_CHAT: SyncChat,
}
"""Inner message of each AMM type Sottovoce decodes; other dispatched types are accepted undecoded."""


@dataclass(frozen=True, slots=True)
class ReceiveContext:
    """What the receiver knows when it validates one message."""

    own_identity: bytes
    """the receiving account's identity public key (compressed or uncompressed)"""
    whisper_timestamp_ms: int
    """(Waku timestamp in seconds, truncated) × 1000"""
    is_generated_alias: AliasCheck
    now_ms: int | None = None
    """receiver's clock, ms (EmojiReaction is checked against it); defaults to the Waku timestamp"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of status-go's dispatch and first validation of one AMM."""

    accepted: bool
    inner_name: str | None = None
    """protobuf name of the inner message, when the handler got as far as decoding it"""
    inner: Message | None = None
    error: RejectedMessage | None = None

    @property
    def error_class(self) -> str | None:
        return None if self.error is None else self.error.code

    def raise_if_rejected(self) -> None:
        if self.error is not None:
            raise self.error


def validate(parsed: ParsedMessage, context: ReceiveContext) -> Verdict:
    """Dispatch ``parsed`` as status-go would and run the handler's validation; never raises."""
    amm_type = parsed.type
    name = type_name(amm_type)
    if not name or amm_type in NOT_DISPATCHED:
        return Verdict(False, error=NoHandler())
    if name.startswith("SYNC_") and not _is_self(parsed.effective_sender, context.own_identity):
        return Verdict(False, error=SyncNotFromSelf())
    cls = INNER_MESSAGES.get(amm_type)
    if cls is None:
        return Verdict(True)
    inner_name = cls.DESCRIPTOR.name
    try:
        inner = wire.parse(cls, parsed.payload)
    except RejectedMessage as rejection:
        return Verdict(False, inner_name, None, rejection)
    try:
        _VALIDATORS.get(amm_type, _no_validation)(inner, parsed, context)
    except RejectedMessage as rejection:
        return Verdict(False, inner_name, inner, rejection)
    return Verdict(True, inner_name, inner)


def _is_self(sender: bytes | None, own: bytes) -> bool:
    return sender is not None and uncompress(sender) == uncompress(own)


# --- validators ------------------------------------------------------------------------------------------

_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
_DISPLAY_NAME = re.compile(r"[A-Za-z0-9_\-\t\n\f\r ]{5,24}")


def go_trim_space(text: str) -> str:
    """Go's ``strings.TrimSpace`` (Unicode white space as ``unicode.IsSpace`` defines it)."""
    return text.strip(_GO_SPACE)


def validate_clock(clock: int, whisper_timestamp_ms: int) -> None:
    """status-go ``validateClockValue``: non-zero and at most 120 000 ms ahead of the Waku timestamp."""
    if clock == 0:
        raise ClockZero()
    if clock > whisper_timestamp_ms and clock - whisper_timestamp_ms > MAX_FUTURE_DRIFT_MS:
        raise ClockTooHigh()


def validate_text(text: str) -> None:
    """status-go ``ValidateText``: a non-space character, at most 4096 code points."""
    if not go_trim_space(text):
        raise EmptyText()
    if len(text) > MAX_TEXT_RUNES:
        raise TextTooLong()


def validate_display_name(name: str, is_generated_alias: AliasCheck) -> None:
    """status-go ``ValidateDisplayName`` (identity.md §9.2); empty (after trimming) is allowed."""
    name = go_trim_space(name)
    if not name:
        return
    if _DISPLAY_NAME.fullmatch(name) is None:
        raise InvalidDisplayName()
    if name.endswith((".eth", "_eth", "-eth")):
        raise InvalidDisplayName("ens names are not allowed as display names")
    if is_generated_alias(name):
        raise InvalidDisplayName("generated names are not allowed as display names")


_CT = ChatMessage.ContentType
_NOT_ALLOWED = frozenset({_CT.TRANSACTION_COMMAND, _CT.SYSTEM_MESSAGE_CONTENT_PRIVATE_GROUP,
                          _CT.SYSTEM_MESSAGE_MUTUAL_EVENT_SENT, _CT.SYSTEM_MESSAGE_MUTUAL_EVENT_ACCEPTED,
                          _CT.SYSTEM_MESSAGE_MUTUAL_EVENT_REMOVED})


def validate_chat_message(message: ChatMessage, whisper_timestamp_ms: int, is_generated_alias: AliasCheck) -> None:
    """status-go ``ValidateReceivedChatMessage`` (spec §6.5), in its order; raises a RejectedMessage."""
    validate_clock(message.clock, whisper_timestamp_ms)
    if message.timestamp == 0:
        raise TimestampZero()
    if message.timestamp > MAX_STORED_INT:
        raise TimestampTooHigh()
    content = message.content_type
    image_without_text = content == _CT.IMAGE and message.text == ""
    if content not in (_CT.DISCORD_MESSAGE, _CT.BRIDGE_MESSAGE) and not image_without_text:
        validate_text(message.text)
    if not message.chat_id:
        raise EmptyChatId()
    if message.message_type in (MessageType.UNKNOWN_MESSAGE_TYPE, MessageType.SYSTEM_MESSAGE_PRIVATE_GROUP):
        raise UnknownMessageType()
    _validate_content(message)
    if message.display_name:
        validate_display_name(message.display_name, is_generated_alias)


def _validate_content(message: ChatMessage) -> None:
    content = message.content_type
    member = message.WhichOneof("payload")
    if content == _CT.UNKNOWN_CONTENT_TYPE:
        raise UnknownContentType()
    if content in _NOT_ALLOWED:
        raise ContentTypeNotAllowed()
    if content == _CT.STICKER and (member != "sticker" or not message.sticker.hash):
        raise InvalidSticker()
    if content == _CT.IMAGE and (member != "image" or not message.image.payload or not message.image.format):
        raise MissingField("image payload empty or image format unknown")
    if content == _CT.AUDIO and (member != "audio" or not message.audio.payload or not message.audio.type):
        raise MissingField("audio payload empty or audio type unknown")
    if content == _CT.BRIDGE_MESSAGE:
        bridge = message.bridge_message
        if member != "bridge_message" or not (bridge.userName and bridge.bridgeName and bridge.content):
            raise MissingField("bridge message is incomplete")


def validate_pair_installation(message: SyncPairInstallation, whisper_timestamp_ms: int) -> None:
    """status-go ``ValidateReceivedPairInstallation`` (spec §8.1)."""
    validate_clock(message.clock, whisper_timestamp_ms)
    for field in ("name", "device_type", "installation_id"):
        if not go_trim_space(getattr(message, field)):
            raise MissingField(f"{field} can't be empty")


def validate_emoji_reaction(message: EmojiReaction, now_ms: int) -> None:
    """status-go ``ValidateReceivedEmojiReaction`` (clock checked against the receiver's own clock)."""
    validate_clock(message.clock, now_ms)
    if not message.message_id:
        raise MissingField("message-id can't be empty")
    if not message.chat_id:
        raise EmptyChatId("chat-id can't be empty")
    if message.type == EmojiReaction.UNKNOWN_EMOJI_REACTION_TYPE:
        raise MissingField("unknown emoji reaction type")
    if message.message_type == MessageType.UNKNOWN_MESSAGE_TYPE:
        raise UnknownMessageType()


def _chat_message(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    validate_chat_message(inner, context.whisper_timestamp_ms, context.is_generated_alias)


def _contact_update(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    if _is_self(parsed.effective_sender, context.own_identity):
        raise FromSelfIgnored()
    validate_display_name(inner.display_name, context.is_generated_alias)


def _retract(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    if _is_self(parsed.effective_sender, context.own_identity):
        raise FromSelfIgnored()


def _chat_identity(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    validate_display_name(inner.display_name, context.is_generated_alias)


def _pair_installation(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    validate_pair_installation(inner, context.whisper_timestamp_ms)


def _emoji_reaction(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    now = context.now_ms if context.now_ms is not None else context.whisper_timestamp_ms
    validate_emoji_reaction(inner, now)


def _no_validation(inner: Any, parsed: ParsedMessage, context: ReceiveContext) -> None:
    return None


_VALIDATORS: dict[int, Callable[[Any, ParsedMessage, ReceiveContext], None]] = {
    AmmType.CHAT_MESSAGE: _chat_message,
    AmmType.CONTACT_UPDATE: _contact_update,
    AmmType.RETRACT_CONTACT_REQUEST: _retract,
    AmmType.CHAT_IDENTITY: _chat_identity,
    AmmType.SYNC_PAIR_INSTALLATION: _pair_installation,
    AmmType.EMOJI_REACTION: _emoji_reaction,
}
