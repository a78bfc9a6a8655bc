"""Typed errors of the session engine (above the encryption layer, below the Messenger)."""

from __future__ import annotations

from ..errors import SottovoceError
from ..protocol.application.errors import RejectedMessage


class SessionEngineError(SottovoceError):
    """Base of the session engine's own errors."""

    code = "session_error"
    default_message = "the session engine failed"


class NotSubscribed(SessionEngineError):
    """An envelope on a content topic this installation does not listen on (yet)."""

    code = "not_subscribed"
    default_message = "envelope on a topic this installation does not listen on"


class NotForUs(SessionEngineError):
    """An envelope on our partitioned topic that our key does not open: it is for another account."""

    code = "not_for_us"
    default_message = "envelope addressed to another account on a shared topic"


class UnknownInstallation(SessionEngineError):
    """An installation id this account does not know, or the profile has no account."""

    code = "unknown_installation"
    default_message = "unknown installation"


class UnusableRecipient(SessionEngineError):
    code = "unusable_recipient"
    default_message = "cannot send to that chat key"


class NoAccount(SessionEngineError):
    code = "no_account"
    default_message = "this profile has no account yet: create or recover one first"


class AccountExists(SessionEngineError):
    code = "account_exists"
    default_message = "this profile already holds an account"


class ForgedAuthor(RejectedMessage):
    """An application message signed by another key than the envelope's: someone claims another sender."""

    code = "forged_author"
    default_message = "message author differs from the envelope's signer"


class MisdirectedMessage(RejectedMessage):
    """A 1:1 chat message whose chat id is not this account (or, for an own copy, not a chat key)."""

    code = "misdirected"
    default_message = "chat message addressed to another chat"


class BlockedPeer(RejectedMessage):
    """An envelope signed by an account the user blocked: dropped unread, never acknowledged."""

    code = "blocked"
    default_message = "message from a blocked account"


class TooManySegments(RejectedMessage):
    """A segment of a split message beyond what is kept of incomplete messages (per sender, and in all)."""

    code = "too_many_segments"
    default_message = "too many incomplete message segments from this sender"


class NoContactRequest(SessionEngineError):
    code = "no_contact_request"
    default_message = "that account has no pending contact request"
