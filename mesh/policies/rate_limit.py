"""Rate limiters (限流): a token bucket and a sliding window, on an injected clock.

``acquire(timeout)`` answers how long the caller must wait before it may proceed (0.0 for at once),
or ``None`` when it would have to wait longer than ``timeout`` — then nothing is taken, and the
caller rejects the request. ``timeout=0`` is "reject at once". The limiter never sleeps: the
real mesh sleeps the returned delay, the simulator yields a timeout of it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; a call takes one token.

    A call that must wait reserves its token now (the bucket may go negative), so waiting callers
    are served in order and the long-run rate stays ``rate``.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self.admitted = self.rejected = 0

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def acquire(self, timeout: float = 0.0, tokens: float = 1.0) -> float | None:
        self._refill()
        wait = 0.0 if self._tokens >= tokens else (tokens - self._tokens) / self.rate
        if wait > timeout + 1e-12:
            self.rejected += 1
            return None
        self._tokens -= tokens
        self.admitted += 1
        return wait

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens


class SlidingWindow:
    """At most ``limit`` calls in any ``window`` seconds (an exact sliding log of admissions)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]):
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: deque[float] = deque()
        self.admitted = self.rejected = 0

    def acquire(self, timeout: float = 0.0) -> float | None:
        now = self._clock()
        while self._log and self._log[0] <= now - self.window:
            self._log.popleft()
        if len(self._log) < self.limit:
            self._log.append(now)
            self.admitted += 1
            return 0.0
        # The call may go when the admission `limit` places back leaves the window.
        start = self._log[-self.limit] + self.window
        wait = start - now
        if wait > timeout + 1e-12:
            self.rejected += 1
            return None
        self._log.append(start)
        self.admitted += 1
        return wait
