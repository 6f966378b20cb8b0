"""Deadlines (超时) that travel with a call: a callee never works past its caller's deadline.

gRPC Python does not pass a deadline downstream by itself: a handler reads
``context.time_remaining()`` and gives what is left to the calls it makes. :class:`Deadline` is that
value on an injected clock, with the arithmetic a caller needs (the per-try timeout is the smaller
of the try's own timeout and what is left of the whole call).
"""

from __future__ import annotations

import math
from collections.abc import Callable


class DeadlineExceeded(Exception):
    """The call's deadline passed before (or while) the work was done."""


class Deadline:
    """An absolute point on ``clock`` by which the work must be done (``inf`` for none)."""

    def __init__(self, at: float, clock: Callable[[], float]):
        self.at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float | None, clock: Callable[[], float]) -> Deadline:
        return cls(math.inf if seconds is None else clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self._clock()

    def timeout(self) -> float | None:
        """What to pass as a gRPC ``timeout`` (None when there is no deadline)."""
        return None if math.isinf(self.at) else max(self.remaining(), 0.0)

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def limit(self, seconds: float | None) -> float | None:
        """Return the smaller of ``seconds`` and the time left (None if both are unbounded)."""
        left = self.timeout()
        if seconds is None:
            return left
        return seconds if left is None else min(seconds, left)

    def check(self) -> None:
        if self.expired:
            raise DeadlineExceeded(f"deadline passed {-self.remaining():.3f} s ago")
