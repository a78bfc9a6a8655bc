"""Group commit of sends: the messages asked for in one turn of the event loop share one store transaction.

A store transaction costs about as much as the SQLCipher pages it writes, and the pages a send writes (the
ratchet session, the chat clock, the ends of the message and outbox tables) are mostly the same for the next
send: committing sends that come together together writes each of those pages once. Sends come together when
a bot answers a burst, or when a program sends to many chats at once; a lone send waits for nothing (its batch
is committed on the loop's next turn) and pays only its own pages.

Each send still gets its own result: its message, or the error that refused it (the other messages of the
batch are sent). A failure of the transaction fails every send of the batch, and sends none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..errors import SottovoceError
from ..sessions.core import SentMessage

MAX_BATCH = 32
"""Sends per transaction at most (the receive side's burst size): a longer queue is committed in turns."""

SendMany = Callable[[Sequence[tuple[bytes, str]]], list[SentMessage | SottovoceError]]
"""Store and queue several ``(peer, text)`` in one transaction (:meth:`SessionEngine.send_texts`)."""


class SendBatcher:
    """Collects the sends of one loop turn and commits them with ``send_many``, :data:`MAX_BATCH` at a time."""

    def __init__(self, send_many: SendMany, *, closed: Callable[[], SottovoceError | None]) -> None:
        self._send_many = send_many
        self._closed = closed
        """Why nothing can be sent any more (the messenger closed), or None."""
        self._pending: list[tuple[bytes, str, asyncio.Future[SentMessage]]] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        """The loop a commit is scheduled on (a loop that ended before running it must not block the next)."""

    async def send(self, peer: bytes, text: str) -> SentMessage:
        """Queue ``text`` to ``peer``; returns once it is committed (raises what refused it). A send cancelled
        before its batch is committed is not sent."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SentMessage] = loop.create_future()
        self._pending.append((peer, text, future))
        if self._scheduled_on is not loop:
            self._scheduled_on = loop
            loop.call_soon(self._commit)
        return await future

    def _commit(self) -> None:
        loop = asyncio.get_running_loop()
        # A send whose loop ended before its batch was committed has no caller left: it is dropped, not sent.
        batch = [entry for entry in self._pending[:MAX_BATCH]
                 if not entry[2].cancelled() and entry[2].get_loop() is loop]
        del self._pending[:MAX_BATCH]
        self._scheduled_on = loop if self._pending else None
        if self._pending:
            loop.call_soon(self._commit)
        if not batch:
            return
        refused = self._closed()
        if refused is not None:
            for _, _, future in batch:
                future.set_exception(refused)
            return
        try:
            results = self._send_many([(peer, text) for peer, text, _ in batch])
        except Exception as exc:  # the transaction failed: every send of it fails the same way
            for _, _, future in batch:
                future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if isinstance(result, SottovoceError):
                future.set_exception(result)
            else:
                future.set_result(result)
