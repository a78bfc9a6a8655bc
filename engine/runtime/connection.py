"""Keeping a transport connected: the first connect with retries, state reports, and the embedded relay revived.

Once connected, the NATS client reconnects by itself. When the relay is the machine's embedded one and the
connection stays down, the supervisor asks :class:`~engine.transport.relay.EmbeddedRelay` to start it again
(on the same port when it is free, so the client's reconnect loop finds it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..transport.errors import RelayStartFailed, TransportClosed, TransportError
from ..transport.port import ConnectionState, Transport
from ..transport.relay import EmbeddedRelay

log = logging.getLogger(__name__)

REVIVE_AFTER_S = 2.0
"""How long the embedded relay may be unreachable before it is started again."""
MAX_BACKOFF_S = 5.0


class ConnectionSupervisor:
    """Runs until cancelled; :attr:`connected` is set while the transport is connected."""

    def __init__(self, transport: Transport, on_state: Callable[[ConnectionState], None], *,
                 embedded: EmbeddedRelay | None = None) -> None:
        self.transport = transport
        self.embedded = embedded
        self.connected = asyncio.Event()
        self._on_state = on_state
        self._down_since: float | None = time.monotonic()
        self._remove = transport.add_state_listener(self._state_changed)

    def _state_changed(self, state: ConnectionState) -> None:
        if state == ConnectionState.CONNECTED:
            self.connected.set()
            self._down_since = None
        else:
            self.connected.clear()
            if self._down_since is None:
                self._down_since = time.monotonic()
        self._on_state(state)

    async def wait_connected(self) -> None:
        await self.connected.wait()

    async def run(self) -> None:
        try:
            await self._connect()
            while True:
                await asyncio.sleep(0.5)
                await self._revive_if_needed()
        finally:
            self._remove()

    async def _connect(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self.transport.connect()
                return
            except TransportClosed:
                raise
            except TransportError as exc:
                log.info("relay not reachable (%s); retrying", exc.code)
            await self._revive_if_needed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _revive_if_needed(self) -> None:
        if self.embedded is None or self.transport.state == ConnectionState.CONNECTED:
            return
        if self._down_since is None or time.monotonic() - self._down_since < REVIVE_AFTER_S:
            return
        try:
            await self.embedded.ensure_async()
        except RelayStartFailed as exc:
            log.warning("the embedded relay could not be started: %s", exc)
        self._down_since = time.monotonic()
