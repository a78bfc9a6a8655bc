"""A slow relay: a TCP proxy on 127.0.0.1 in front of a nats-server that delays and throttles every byte.

Each direction of each connection is forwarded in order, every chunk ``delay`` seconds after it was read, at most
``rate`` bytes per second; :meth:`SlowProxy.stall` holds all traffic (both ways, connections stay open) for a
while, as a congested or flapping link does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class SlowProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float, rate: float) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.rate = rate
        self.port = 0
        self.forwarded = 0
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def stall(self, seconds: float) -> None:
        """Forward nothing for ``seconds``."""
        self._open.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._open.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while data := await src.read(4096):
                chunks.put_nowait((time.monotonic(), data))
            chunks.put_nowait((time.monotonic(), b""))

        reading = asyncio.create_task(read())
        try:
            while True:
                at, data = await chunks.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, at + self.delay - time.monotonic()))
                await self._open.wait()
                dst.write(data)
                await dst.drain()
                self.forwarded += len(data)
                await asyncio.sleep(len(data) / self.rate)
        except (OSError, ConnectionError):
            pass
        finally:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading
            dst.close()
