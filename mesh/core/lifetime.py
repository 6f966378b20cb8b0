"""One running object per name: making another of the same name — re-running a notebook cell —
stops the previous one first, so that no port or thread is left behind."""

from __future__ import annotations

import threading
import weakref
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


class ByName:
    """The running objects of one kind, by name (held weakly: a dropped object is forgotten)."""

    def __init__(self):
        self._running: weakref.WeakValueDictionary[str, Stoppable] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()  # cells run in the kernel's thread; stops come from any

    def replace(self, name: str) -> None:
        """Stop the running object called ``name``, if any."""
        with self._lock:
            previous = self._running.pop(name, None)
        if previous is not None:
            previous.stop()

    def claim(self, name: str, running: Stoppable) -> None:
        with self._lock:
            self._running[name] = running

    def release(self, name: str, stopped: Stoppable) -> None:
        """Forget ``stopped`` (if it is still the one called ``name``)."""
        with self._lock:
            if self._running.get(name) is stopped:
                del self._running[name]

    def running(self) -> list[Stoppable]:
        """The objects running now."""
        with self._lock:
            return list(self._running.values())
