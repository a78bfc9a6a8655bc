"""Transport layer: opaque Waku envelopes to and from a relay (NATS JetStream, or in memory for tests).

Import adapters from their modules (``engine.transport.nats``, ``engine.transport.memory``,
``engine.transport.relay``); this package exports the port.
"""

from engine.transport.errors import (
    InvalidEnvelope,
    PublishFailed,
    PublishRejected,
    PublishTimeout,
    RelayStartFailed,
    RelayUnavailable,
    StreamConfigConflict,
    TransportClosed,
    TransportError,
)
from engine.transport.port import (
    ConnectionState,
    Envelope,
    History,
    ReceivedEnvelope,
    Subscription,
    Transport,
)

__all__ = [
    "ConnectionState",
    "Envelope",
    "History",
    "InvalidEnvelope",
    "PublishFailed",
    "PublishRejected",
    "PublishTimeout",
    "ReceivedEnvelope",
    "RelayStartFailed",
    "RelayUnavailable",
    "StreamConfigConflict",
    "Subscription",
    "Transport",
    "TransportClosed",
    "TransportError",
]
