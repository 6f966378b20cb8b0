"""Retries: which failures to retry, how long to back off, and a budget that bounds the extra load.

- :class:`Backoff` — exponential (``base * multiplier**n`` capped at ``cap``) with the jitters of
  AWS's "Exponential Backoff and Jitter": ``none``, ``full`` (uniform in [0, d]), ``equal``
  (d/2 + uniform in [0, d/2]) and ``decorrelated`` (uniform in [base, 3 x previous], capped).
- :class:`RetryBudget` — gRPC's retryThrottling: a token count starting at ``max_tokens``; each
  failure takes 1, each success gives back ``token_ratio``; retries are allowed only while the
  count is above half of ``max_tokens``. So under widespread failure retries stop by themselves.
- :class:`RetryPolicy` — max attempts, retryable status codes, per-try timeout, backoff and budget.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

JITTERS = ("none", "full", "equal", "decorrelated")


class Backoff:
    """Delays before retry 1, 2, ... of one call (make one per call: decorrelated keeps state)."""

    def __init__(self, rng: np.random.Generator, base: float = 0.025, cap: float = 1.0,
                 multiplier: float = 2.0, jitter: str = "full"):
        if jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}")
        if base <= 0 or cap < base or multiplier < 1:
            raise ValueError("need 0 < base <= cap and multiplier >= 1")
        self._rng = rng
        self.base, self.cap, self.multiplier, self.jitter = base, cap, multiplier, jitter
        self._previous = base

    def delay(self, retry: int) -> float:
        """Return the delay before retry number ``retry`` (1 for the first retry)."""
        if self.jitter == "decorrelated":
            self._previous = min(self.cap, float(self._rng.uniform(self.base, self._previous * 3)))
            return self._previous
        ceiling = min(self.cap, self.base * self.multiplier ** (retry - 1))
        if self.jitter == "none":
            return ceiling
        if self.jitter == "full":
            return float(self._rng.uniform(0, ceiling))
        return ceiling / 2 + float(self._rng.uniform(0, ceiling / 2))


class RetryBudget:
    """gRPC's retry throttling: retries allowed only while tokens > max_tokens / 2."""

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1):
        if not 0 < max_tokens <= 1000 or token_ratio <= 0:
            raise ValueError("need 0 < max_tokens <= 1000 and token_ratio > 0")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self.tokens = max_tokens
        self.denied = 0

    def on_success(self) -> None:
        self.tokens = min(self.max_tokens, self.tokens + self.token_ratio)

    def on_failure(self) -> None:
        self.tokens = max(0.0, self.tokens - 1.0)

    def allow_retry(self) -> bool:
        if self.tokens > self.max_tokens / 2:
            return True
        self.denied += 1
        return False


@dataclass
class RetryPolicy:
    """When and how to try a call again."""

    max_attempts: int = 3
    retryable: Collection[str] = ("UNAVAILABLE",)
    per_try_timeout: float | None = None
    backoff_base: float = 0.025
    backoff_cap: float = 1.0
    jitter: str = "full"
    budget: RetryBudget | None = field(default=None)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}")

    def backoff(self, rng: np.random.Generator) -> Backoff:
        return Backoff(rng, self.backoff_base, self.backoff_cap, jitter=self.jitter)

    def should_retry(self, code: str, attempt: int, time_left: float | None) -> bool:
        """Whether attempt ``attempt`` (1-based) that ended with ``code`` may be followed by another."""
        if code not in self.retryable or attempt >= self.max_attempts:
            return False
        if time_left is not None and time_left <= 0:
            return False
        return self.budget is None or self.budget.allow_retry()
