"""Typed errors of the application layer.

``code`` is the ``error_class`` of ``status-go-app-vectors.json`` wherever the vectors name one. Receive-side
rejections (status-go drops the message) derive from :class:`RejectedMessage`; a caller that only wants to
drop such messages can catch that one class.
"""

from __future__ import annotations

from ...errors import MalformedMessage, SottovoceError


class ApplicationError(SottovoceError):
    """Base of every application-layer error."""

    code = "application_error"
    default_message = "application layer error"


class MalformedAmm(ApplicationError, MalformedMessage):
    """The bytes are not a parseable ApplicationMetadataMessage."""

    code = "malformed_amm"
    default_message = "malformed application metadata message"


class MalformedDatasync(ApplicationError, MalformedMessage):
    """The bytes are not a parseable MVDS Payload (or not one at all)."""

    code = "malformed_datasync"
    default_message = "handling non-datasync message"


class MalformedSegment(ApplicationError, MalformedMessage):
    """The bytes are not a parseable SegmentMessage, or not a valid segment."""

    code = "malformed_segment"
    default_message = "not a message segment"


class InvalidArgument(ApplicationError):
    """A builder or encoder was given a value status-go could never send (caller bug, not peer input)."""

    code = "invalid_argument"
    default_message = "invalid argument"


class RejectedMessage(ApplicationError):
    """A parsed message that status-go's handler would drop; ``code`` says why."""

    code = "rejected"
    default_message = "message rejected"


class NoHandler(RejectedMessage):
    code = "no_handler"
    default_message = "protobuf type not found"


class SyncNotFromSelf(RejectedMessage):
    code = "sync_not_from_self"
    default_message = "not coming from us, ignoring"


class FromSelfIgnored(RejectedMessage):
    code = "from_self_ignored"
    default_message = "coming from us, ignoring"


class MalformedPayload(RejectedMessage, MalformedMessage):
    code = "malformed_payload"
    default_message = "cannot parse the inner message"


class InvalidUtf8(MalformedPayload):
    code = "invalid_utf8"
    default_message = "string field contains invalid UTF-8"


class ClockZero(RejectedMessage):
    code = "clock_zero"
    default_message = "clock can't be 0"


class ClockTooHigh(RejectedMessage):
    code = "clock_too_high"
    default_message = "clock value too high"


class TimestampZero(RejectedMessage):
    code = "timestamp_zero"
    default_message = "timestamp can't be empty"


class TimestampTooHigh(RejectedMessage):
    """A timestamp no SQLite INTEGER holds (≥ 2^63 ms): status-go's store refuses such a uint64 as well."""

    code = "timestamp_too_high"
    default_message = "timestamp value too high"


class EmptyText(RejectedMessage):
    code = "empty_text"
    default_message = "text can't be empty"


class TextTooLong(RejectedMessage):
    code = "text_too_long"
    default_message = "text shouldn't be longer than 4096"


class EmptyChatId(RejectedMessage):
    code = "empty_chat_id"
    default_message = "chatId can't be empty"


class UnknownMessageType(RejectedMessage):
    code = "unknown_message_type"
    default_message = "unknown message type"


class UnknownContentType(RejectedMessage):
    code = "unknown_content_type"
    default_message = "unknown content type"


class ContentTypeNotAllowed(RejectedMessage):
    code = "content_type_not_allowed"
    default_message = "content type not allowed on receipt"


class InvalidSticker(RejectedMessage):
    code = "invalid_sticker"
    default_message = "sticker hash not set"


class InvalidDisplayName(RejectedMessage):
    code = "invalid_display_name"
    default_message = "only letters, numbers, underscores and hyphens allowed"


class MissingField(RejectedMessage):
    code = "missing_field"
    default_message = "a required field is empty"
