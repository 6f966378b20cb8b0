"""Work that runs beside the caller's thread: an asyncio loop on a thread of its own."""

from .loop_thread import LoopThread

__all__ = ["LoopThread"]
