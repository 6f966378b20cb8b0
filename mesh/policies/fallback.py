"""Fallback / degradation (降级): what to answer when the real call may not or cannot happen.

A :class:`Fallback` answers with the last good response for the same request key (a cache, when
``cache`` is on) or else a static response; with neither it re-raises. It is used when the
breaker is open, the limiter rejects, the bulkhead is full, or the deadline passes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class NoFallback(Exception):
    """There was nothing to fall back to."""


class Fallback:
    def __init__(self, static: Any = None, cache: bool = False, key: Callable[[Any], Any] = repr,
                 max_entries: int = 1000):
        self.static = static
        self.cache = cache
        self._key = key
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._max = max_entries
        self.used: dict[str, int] = {}

    def remember(self, request: Any, response: Any) -> None:
        """Keep a good response for the request (when caching is on)."""
        if not self.cache:
            return
        key = self._key(request)
        self._entries[key] = response
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def respond(self, request: Any, reason: str) -> Any:
        """Return the degraded response for ``request``, or raise :class:`NoFallback`."""
        key = self._key(request)
        if self.cache and key in self._entries:
            answer = self._entries[key]
        elif self.static is not None:
            answer = self.static
        else:
            raise NoFallback(reason)
        self.used[reason] = self.used.get(reason, 0) + 1
        return answer
