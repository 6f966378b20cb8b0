"""One running object per name: making another of the same name — re-running a notebook cell —
stops the previous one first, so that no port or thread is left behind."""

from __future__ import annotations

import weakref
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


class ByName:
    """The running objects of one kind, by name (held weakly: a dropped object is forgotten)."""

    def __init__(self):
        self._running: weakref.WeakValueDictionary[str, Stoppable] = weakref.WeakValueDictionary()

    def replace(self, name: str) -> None:
        """Stop the running object called ``name``, if any."""
        previous = self._running.pop(name, None)
        if previous is not None:
            previous.stop()

    def claim(self, name: str, running: Stoppable) -> None:
        self._running[name] = running

    def release(self, name: str, stopped: Stoppable) -> None:
        """Forget ``stopped`` (if it is still the one called ``name``)."""
        if self._running.get(name) is stopped:
            del self._running[name]
