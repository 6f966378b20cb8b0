"""A TCP forwarder that adds latency: what stands in for ``tc netem`` where the kernel lacks it.

:class:`DelayProxy` listens on one address and forwards every connection to a target, holding each
chunk of bytes, in each direction, for ``delay()`` seconds before passing it on — in order, and
without holding up the reading of the next chunk, so it adds latency, not a bandwidth limit. The
delay is read for every chunk, so changing it acts at once on open connections. At most
``MAX_QUEUED`` chunks wait per direction (then reading pauses: memory stays bounded). All proxies
share one event loop on a thread of their own.

Written here because the well-kept proxies for this (Toxiproxy, a Go binary; Envoy) cannot be
installed from the package registries these machines reach, and the job is small: asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

__all__ = ["DelayProxy"]

MAX_QUEUED = 64
CHUNK = 64 * 1024

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="delay-proxies", daemon=True).start()
        return _loop


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: Callable[[], float]) -> None:
    queue: asyncio.Queue = asyncio.Queue(MAX_QUEUED)

    async def deliver() -> None:
        broken = False  # the far side is gone: keep emptying the queue, so the reader never blocks
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0 and not broken:
                await asyncio.sleep(wait)
            if data is None:
                break
            if not broken:
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    broken = True
        if not broken and writer.can_write_eof():
            with contextlib.suppress(ConnectionError, OSError):
                writer.write_eof()

    delivering = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic() + max(delay(), 0.0), data or None))
            if not data:
                break
        await delivering
    except (ConnectionError, OSError):
        pass
    finally:
        delivering.cancel()


class DelayProxy:
    """Forward ``listen_host:port`` (port 0: any) to ``target``, adding ``delay()`` seconds each way.

    ``target`` may be set later (a connection before then is closed at once): a proxy can be
    placed before the server it fronts knows its port."""

    def __init__(self, listen_host: str, target: tuple[str, int] | None, delay: Callable[[], float],
                 port: int = 0):
        self.target, self._delay = target, delay
        self._loop = _shared_loop()
        self._connections: set[asyncio.Task] = set()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, listen_host, port), self._loop).result(timeout=10)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        upstream = None
        try:
            if self.target is None:
                return
            target_reader, upstream = await asyncio.wait_for(asyncio.open_connection(*self.target),
                                                             timeout=10)
            await asyncio.gather(_pump(reader, upstream, self._delay),
                                 _pump(target_reader, writer, self._delay))
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()
            self._connections.discard(task)

    def close(self) -> None:
        """Stop listening and cut the connections it carries."""

        async def shut() -> None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
