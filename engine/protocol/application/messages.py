"""Typed builders for the messages a 1:1 client sends (spec §6–§8), and their AMM types.

Builders return the protobuf message; :func:`encode` gives status-go's exact bytes and :func:`sign`
wraps them in a signed AMM. Nothing here reads a clock: callers pass ``clock``/``timestamp`` (see
:func:`next_clock`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.message import Message

from proto.chat_identity_pb2 import ChatIdentity, IdentityImage
from proto.chat_message_pb2 import ChatMessage, StickerMessage
from proto.contact_pb2 import (
    AcceptContactRequest,
    ContactRequestPropagatedState,
    ContactUpdate,
    RetractContactRequest,
)
from proto.emoji_reaction_pb2 import EmojiReaction
from proto.enums_pb2 import MessageType
from proto.pairing_pb2 import SyncContactRequestDecision, SyncInstallationContactV2, SyncPairInstallation

from ...crypto.keys import uncompress
from . import metadata, wire
from .errors import InvalidArgument, InvalidDisplayName
from .metadata import AmmType, WrappedMessage
from .validation import AliasCheck, go_trim_space, validate_display_name

ContentType = ChatMessage.ContentType
DEFAULT_CONTACT_REQUEST_TEXT = "Please add me to your contacts"
PROTOCOL_VERSION = 1

# ContactRequestState values (spec §7.1)
STATE_NONE, STATE_MUTUAL, STATE_SENT, STATE_RECEIVED, STATE_DISMISSED = 0, 1, 2, 3, 4

AMM_TYPES: dict[str, int] = {
    "ChatMessage": AmmType.CHAT_MESSAGE,
    "ContactUpdate": AmmType.CONTACT_UPDATE,
    "SyncPairInstallation": AmmType.SYNC_PAIR_INSTALLATION,
    "EmojiReaction": AmmType.EMOJI_REACTION,
    "ChatIdentity": AmmType.CHAT_IDENTITY,
    "AcceptContactRequest": AmmType.ACCEPT_CONTACT_REQUEST,
    "RetractContactRequest": AmmType.RETRACT_CONTACT_REQUEST,
    "SyncContactRequestDecision": AmmType.SYNC_CONTACT_REQUEST_DECISION,
    "SyncInstallationContactV2": AmmType.SYNC_INSTALLATION_CONTACT_V2,
}
"""AMM type of each inner message a builder here makes."""


def key_id(public_key: bytes) -> str:
    """status-go's contact / 1:1 chat id: ``"0x"`` + hex of the 65-byte uncompressed key."""
    return "0x" + uncompress(public_key).hex()


def default_contact_request_id(public_key: bytes) -> str:
    """The id status-go makes up for a contact request inferred from a ContactUpdate: key id + ``"20"``."""
    return key_id(public_key) + "20"


def next_clock(last_clock: int, now_ms: int) -> int:
    """Lamport clock for the next message of a chat (spec §6.4)."""
    return now_ms if last_clock == 0 or last_clock < now_ms else last_clock + 1


def sendable_display_name(name: str, is_generated_alias: AliasCheck) -> str:
    """``name`` if status-go would accept it, else ``""`` (a bad name makes status-go drop the message)."""
    try:
        validate_display_name(name, is_generated_alias)
    except InvalidDisplayName:
        return ""
    return go_trim_space(name)


@dataclass(frozen=True, slots=True)
class PropagatedState:
    """The sender's contact-request state for the peer (spec §7.1), attached to chat messages and updates."""

    local_clock: int = 0
    local_state: int = STATE_NONE
    remote_clock: int = 0
    remote_state: int = STATE_NONE

    def to_proto(self) -> ContactRequestPropagatedState:
        return ContactRequestPropagatedState(local_clock=self.local_clock, local_state=self.local_state,
                                             remote_clock=self.remote_clock, remote_state=self.remote_state)


def chat_message(*, clock: int, timestamp: int, text: str, chat_id: str, display_name: str = "",
                 propagated_state: PropagatedState = PropagatedState(), response_to: str = "",
                 customization_color: int = 0, content_type: int = ContentType.TEXT_PLAIN,
                 ens_name: str = "") -> ChatMessage:
    """A 1:1 ChatMessage as ``sendChatMessage`` builds it; the propagated state is always set (§6.2)."""
    message = ChatMessage(clock=clock, timestamp=timestamp, text=text, response_to=response_to,
                          ens_name=ens_name, chat_id=chat_id, message_type=MessageType.ONE_TO_ONE,
                          content_type=content_type,  # type: ignore[arg-type]
                          display_name=display_name, customization_color=customization_color)
    message.contact_request_propagated_state.CopyFrom(propagated_state.to_proto())
    return message


def sticker_message(*, clock: int, timestamp: int, text: str, chat_id: str, sticker_hash: str, pack: int = 0,
                    display_name: str = "", propagated_state: PropagatedState = PropagatedState()) -> ChatMessage:
    """A 1:1 sticker message (``sticker`` is a oneof member: :func:`encode` writes it last, as Go does)."""
    message = chat_message(clock=clock, timestamp=timestamp, text=text, chat_id=chat_id,
                           display_name=display_name, propagated_state=propagated_state,
                           content_type=ContentType.STICKER)
    message.sticker.CopyFrom(StickerMessage(hash=sticker_hash, pack=pack))
    return message


def contact_request(*, clock: int, timestamp: int, chat_id: str, display_name: str, request_clock: int,
                    text: str = DEFAULT_CONTACT_REQUEST_TEXT, remote_clock: int = 0,
                    remote_state: int = STATE_NONE, customization_color: int = 0) -> ChatMessage:
    """A contact request (content type 11, spec §7.2): ``request_clock`` is ``c0``, the request's clock."""
    if not text:
        raise InvalidArgument("a contact request needs a text")
    state = PropagatedState(request_clock, STATE_SENT, remote_clock, remote_state)
    return chat_message(clock=clock, timestamp=timestamp, text=text, chat_id=chat_id, display_name=display_name,
                        propagated_state=state, customization_color=customization_color,
                        content_type=ContentType.CONTACT_REQUEST)


def accept_contact_request(request_id: str, clock: int) -> AcceptContactRequest:
    """Acceptance of the contact request whose message id is ``request_id`` (spec §7.4)."""
    return AcceptContactRequest(id=request_id, clock=clock)


def retract_contact_request(clock: int) -> RetractContactRequest:
    """Retraction / removal sent to the contact (spec §7.6); status-go sets only the clock."""
    return RetractContactRequest(clock=clock)


def contact_request_decision(*, clock: int, request_id: str, declined: bool,
                             contact_id: str = "") -> SyncContactRequestDecision:
    """Own-device record of accepting or declining a request (spec §7.5, §8.4); a decline is never sent
    to the requester."""
    status = SyncContactRequestDecision.DECLINED if declined else SyncContactRequestDecision.ACCEPTED
    return SyncContactRequestDecision(clock=clock, requestId=request_id, decision_status=status,
                                      contactId=contact_id)


def contact_update(*, clock: int, display_name: str, public_key: str, propagated_state: PropagatedState,
                   customization_color: int = 0, ens_name: str = "") -> ContactUpdate:
    """A ContactUpdate (spec §7.8); ``contact_request_clock`` is the propagated ``local_clock`` (never more)."""
    message = ContactUpdate(clock=clock, ens_name=ens_name, display_name=display_name,
                            contact_request_clock=propagated_state.local_clock, public_key=public_key,
                            customization_color=customization_color)
    message.contact_request_propagated_state.CopyFrom(propagated_state.to_proto())
    return message


def sync_pair_installation(*, clock: int, installation_id: str, device_type: str, name: str,
                           target_installation_id: str = "") -> SyncPairInstallation:
    """Installation metadata for the account's own devices (spec §8.1)."""
    return SyncPairInstallation(clock=clock, installation_id=installation_id, device_type=device_type, name=name,
                                version=PROTOCOL_VERSION, target_installation_id=target_installation_id)


def sync_installation_contact(*, clock: int, public_key: bytes, state: PropagatedState, nickname: str = "",
                              display_name: str = "", verified: bool = False, blocked: bool = False,
                              last_updated: int = 0, customization_color: int = 0) -> SyncInstallationContactV2:
    """A contact's record for the account's own devices (spec §8.4); ``state`` is our state towards it."""
    return SyncInstallationContactV2(
        last_updated_locally=clock, id=key_id(public_key), last_updated=last_updated, local_nickname=nickname,
        added=state.local_state == STATE_SENT, blocked=blocked, has_added_us=state.remote_state == STATE_RECEIVED,
        verification_status=2 if verified else 0, contact_request_local_state=state.local_state,
        contact_request_local_clock=state.local_clock, contact_request_remote_state=state.remote_state,
        contact_request_remote_clock=state.remote_clock, display_name=display_name,
        customization_color=customization_color)


def chat_identity(*, clock: int, display_name: str, description: str = "", customization_color: int = 0,
                  images: Mapping[str, IdentityImage] | None = None) -> ChatIdentity:
    """A standalone ChatIdentity (spec §7.8); ``images`` keyed ``"thumbnail"`` / ``"large"``."""
    message = ChatIdentity(clock=clock, display_name=display_name, description=description,
                           customization_color=customization_color)
    for key, image in (images or {}).items():
        message.images[key].CopyFrom(image)
    return message


def emoji_reaction(*, clock: int, chat_id: str, message_id: str, emoji: int,
                   retracted: bool = False) -> EmojiReaction:
    """A 1:1 emoji reaction; ``chat_id`` is the reactor's chat id (the peer's key id)."""
    return EmojiReaction(clock=clock, chat_id=chat_id, message_id=message_id,
                         message_type=MessageType.ONE_TO_ONE, type=emoji,  # type: ignore[arg-type]
                         retracted=retracted)


def encode(message: Message) -> bytes:
    """status-go's exact bytes for ``message`` (oneof members last)."""
    return wire.go_marshal(message)


def amm_type_of(message: Message) -> int:
    name = message.DESCRIPTOR.name
    if name not in AMM_TYPES:
        raise InvalidArgument(f"no AMM type for {name}")
    return AMM_TYPES[name]


def sign(message: Message, identity_private: bytes, author: bytes | None = None) -> WrappedMessage:
    """Encode ``message`` and wrap it in an AMM signed by the identity key (``author``: its public key)."""
    return metadata.wrap(encode(message), amm_type_of(message), identity_private, author)
