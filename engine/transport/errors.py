"""Typed errors of the transport layer.

Every error carries a stable ``code`` and a one-line message. ``retryable`` tells an outbox whether the same
envelope (same message id, so the relay de-duplicates it) may simply be sent again later.
"""

from __future__ import annotations

from engine.errors import SottovoceError


class TransportError(SottovoceError):
    """Base of every transport error."""

    code = "transport_error"
    default_message = "transport error"
    retryable = False


class InvalidEnvelope(TransportError):
    """An envelope or topic the transport cannot carry (bad topic length, empty message id...)."""

    code = "invalid_envelope"
    default_message = "invalid envelope"


class RelayUnavailable(TransportError):
    """No usable connection to the relay right now (down, unreachable, reconnecting, no stream leader)."""

    code = "relay_unavailable"
    default_message = "relay unavailable"
    retryable = True


class PublishFailed(TransportError):
    """The relay did not acknowledge a publish."""

    code = "publish_failed"
    default_message = "the relay did not store the message"


class PublishTimeout(PublishFailed):
    """No acknowledgement in time; the message may or may not be stored, resend with the same id."""

    code = "publish_timeout"
    default_message = "the relay did not acknowledge the message in time"
    retryable = True


class PublishRejected(PublishFailed):
    """The relay refused the message (too large, no stream, bad headers...); resending will not help."""

    code = "publish_rejected"
    default_message = "the relay refused the message"


class TransportClosed(TransportError):
    """The transport was closed by its owner."""

    code = "transport_closed"
    default_message = "transport closed"


class StreamConfigConflict(TransportError):
    """The relay holds a stream of the same name whose configuration we cannot use."""

    code = "stream_config_conflict"
    default_message = "the relay's message stream has an incompatible configuration"


class RelayStartFailed(TransportError):
    """The local relay server could not be started (binary missing, port taken, crash on start)."""

    code = "relay_start_failed"
    default_message = "the local relay could not be started"


class RelayVersionUnsupported(RelayStartFailed):
    """The nats-server binary is older than the minimum this transport needs."""

    code = "relay_version_unsupported"
    default_message = "the nats-server binary is too old"
