"""An asyncio loop on a thread of its own: how the embedded registry and the API gateway serve
beside the notebook's kernel, whose own thread must stay free for the learner's cells.

Written once because both need the same care: ``start`` returns only once the server listens, and
raises in the caller's thread what stopped it from starting (a port in use), while an error after
that is the thread's own; ``stop`` ends the loop from any thread and waits for it; the loop's
async generators are shut down before it closes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

__all__ = ["LoopThread"]

#: ``serve(ready, stopping)``: start serving, call ``ready()``, then return once ``stopping`` is set.
Serve = Callable[[Callable[[], None], asyncio.Event], Awaitable[None]]


class LoopThread:
    """Runs ``serve`` on a new event loop in a daemon thread called ``name``."""

    def __init__(self, serve: Serve, name: str):
        self._serve, self.name = serve, name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start the loop and return once ``serve`` is ready; raise what kept it from starting."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self, timeout: float | None = None) -> None:
        """Ask ``serve`` to end and wait for the thread (at most ``timeout`` seconds). Safe twice."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and thread.is_alive():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(), or raised in this thread once serving
            if not self._ready.is_set():
                self._error = exc
            else:
                raise
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        await self._serve(self._ready.set, self._stopping)
