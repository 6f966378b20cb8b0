"""The declarative policy of a caller towards one service (or one method of it).

:class:`PolicySettings` is flat — every field a number or a short string, 0 meaning "off" — so it
lives in the config center (``config/policy.<service>/<field>``, or ``policy.<service>.<method>``
for one method), changes at runtime, and maps one field to one slider. :class:`PolicyState` is the
set of policy objects built from it (breaker, limiter, bulkhead, budget, retry, outlier detector,
release routing) that the call plan (:mod:`mesh.policies.plan`) runs a call through.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .balancers import BALANCERS
from .bulkhead import Bulkhead
from .circuit_breaker import BreakerConfig, CircuitBreaker
from .outlier import OutlierDetector
from .rate_limit import SlidingWindow, TokenBucket
from .release import Release
from .retry import JITTERS, RetryBudget, RetryPolicy
from .statuses import CLIENT_ERRORS


@dataclass(frozen=True)
class PolicySettings:
    """How a caller treats calls to a service. Durations are in seconds; 0 turns a policy off."""

    balancer: str = "round_robin"
    choice_count: int = 2  # instances that p2c samples, distinct (Envoy's choice_count; JSQ(d))
    timeout: float = 10.0  # the whole call's deadline when the caller sets none (0: none)
    max_attempts: int = 1  # 1 = no retries
    per_try_timeout: float = 0.0
    retry_on: str = "UNAVAILABLE"  # comma-separated gRPC status codes
    backoff_base: float = 0.025
    backoff_cap: float = 1.0
    jitter: str = "full"
    budget_tokens: float = 0.0  # gRPC retryThrottling maxTokens; 0 = no budget
    budget_ratio: float = 0.1
    breaker_failure_rate: float = 0.0  # percent; 0 = no breaker
    breaker_slow_rate: float = 100.0
    breaker_slow_call: float = 60.0
    breaker_window_type: str = "count"
    breaker_window: int = 20
    breaker_minimum_calls: int = 10
    breaker_wait: float = 5.0
    breaker_half_open_calls: int = 3
    rate_limit: float = 0.0  # calls per second; 0 = no limit
    rate_limiter: str = "token_bucket"  # or "sliding_window" (at most rate_limit calls in any 1 s)
    rate_burst: float = 1.0
    rate_wait: float = 0.0  # how long a call may wait for a token; 0 = reject at once
    bulkhead: int = 0  # max concurrent calls; 0 = no bulkhead
    bulkhead_wait: float = 0.0
    outlier_errors: int = 0  # consecutive errors that eject an instance; 0 = off
    outlier_ejection: float = 30.0
    outlier_max_percent: float = 10.0
    # Release routing is per service: set on one method, these four are ignored.
    release_version: str = ""  # blue-green: only this version serves; "" = any
    canary_version: str = ""  # a version that gets canary_percent of the calls
    canary_percent: float = 0.0
    canary_sticky: bool = False  # split by request key (one user, one version) instead of by call

    def __post_init__(self) -> None:
        if self.balancer not in BALANCERS:
            raise ValueError(f"balancer must be one of {sorted(BALANCERS)}")
        if self.choice_count < 1:
            raise ValueError("choice_count must be at least 1")
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {JITTERS}")
        if self.rate_limiter not in ("token_bucket", "sliding_window"):
            raise ValueError("rate_limiter must be 'token_bucket' or 'sliding_window'")
        if self.breaker_window_type not in ("count", "time"):
            raise ValueError("breaker_window_type must be 'count' or 'time'")
        numbers = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if isinstance(getattr(self, f.name), (int, float))}
        negative = sorted(name for name, value in numbers.items() if value < 0)
        if negative:
            raise ValueError(f"settings must not be negative: {', '.join(negative)}")
        if self.breaker_failure_rate > 100 or self.breaker_slow_rate > 100 or self.outlier_max_percent > 100:
            raise ValueError("rates and percentages must be at most 100")
        self.release()  # checks the canary share

    def release(self) -> Release:
        """Return the release routing these settings describe."""
        return Release(self.release_version, self.canary_version, self.canary_percent, self.canary_sticky)

    def replace(self, **changes) -> PolicySettings:
        return dataclasses.replace(self, **changes)


_GROUPS = {
    "breaker": [f.name for f in dataclasses.fields(PolicySettings) if f.name.startswith("breaker_")],
    "limiter": ["rate_limit", "rate_limiter", "rate_burst"],
    "bulkhead": ["bulkhead", "bulkhead_wait"],
    "budget": ["budget_tokens", "budget_ratio"],
    "outlier": ["outlier_errors", "outlier_ejection", "outlier_max_percent"],
}


class PolicyState:
    """The live policy objects for one (caller, service[, method]); rebuilt piece by piece.

    When the settings change, only the pieces whose settings changed are rebuilt: a new rate limit
    does not reset the breaker's window.
    """

    def __init__(self, settings: PolicySettings, name: str, clock: Callable[[], float],
                 on_transition: Callable | None = None):
        self.name = name
        self._clock = clock
        self._on_transition = on_transition
        self.settings = settings
        self.breaker: CircuitBreaker | None = None
        self.limiter: TokenBucket | None = None
        self.bulkhead: Bulkhead | None = None
        self.budget: RetryBudget | None = None
        self.outlier: OutlierDetector | None = None
        for group in _GROUPS:
            self._build(group)
        self._derive()

    def update(self, settings: PolicySettings) -> None:
        old, self.settings = self.settings, settings
        for group, fields in _GROUPS.items():
            if any(getattr(old, f) != getattr(settings, f) for f in fields):
                self._build(group)
        self._derive()

    def _derive(self) -> None:
        self.retry = self._retry()
        self.release = self.settings.release()
        # What each attempt of the call plan reads, in one piece (a simulation reads it per call).
        release = self.release
        self.for_attempts = (self.retry, self.breaker, self.budget, self.outlier, release, release.active,
                             release.sticky)
        # A call under this policy is one attempt on the balancer's pick and nothing else.
        self.direct = (self.retry.max_attempts == 1 and not release.active and self.breaker is None
                       and self.limiter is None and self.bulkhead is None and self.budget is None
                       and self.outlier is None)

    def _retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(
            max_attempts=max(1, s.max_attempts),
            retryable={c.strip().upper() for c in s.retry_on.split(",") if c.strip()},
            per_try_timeout=s.per_try_timeout or None, backoff_base=s.backoff_base,
            backoff_cap=max(s.backoff_cap, s.backoff_base), jitter=s.jitter, budget=self.budget,
        )

    def _build(self, group: str) -> None:
        s = self.settings
        if group == "breaker":
            self.breaker = None
            if s.breaker_failure_rate > 0:
                config = BreakerConfig(
                    failure_rate_threshold=s.breaker_failure_rate,
                    slow_call_rate_threshold=s.breaker_slow_rate, slow_call_duration=s.breaker_slow_call,
                    window_type=s.breaker_window_type, window_size=s.breaker_window,
                    minimum_calls=s.breaker_minimum_calls, wait_in_open=s.breaker_wait,
                    permitted_in_half_open=s.breaker_half_open_calls,
                    is_failure=lambda code: code not in CLIENT_ERRORS,
                )
                self.breaker = CircuitBreaker(self.name, config, self._clock)
                if self._on_transition is not None:
                    self.breaker.add_listener(self._on_transition)
        elif group == "limiter":
            self.limiter = None
            if s.rate_limit > 0 and s.rate_limiter == "sliding_window":
                self.limiter = SlidingWindow(max(1, round(s.rate_limit)), 1.0, self._clock)
            elif s.rate_limit > 0:
                self.limiter = TokenBucket(s.rate_limit, max(s.rate_burst, 1.0), self._clock)
        elif group == "bulkhead":
            self.bulkhead = Bulkhead(s.bulkhead, s.bulkhead_wait) if s.bulkhead > 0 else None
        elif group == "budget":
            self.budget = RetryBudget(s.budget_tokens, s.budget_ratio) if s.budget_tokens > 0 else None
        elif group == "outlier":
            self.outlier = None
            if s.outlier_errors > 0:
                self.outlier = OutlierDetector(self._clock, s.outlier_errors, s.outlier_ejection,
                                               max(300.0, s.outlier_ejection), s.outlier_max_percent)


def rng_for(seed: int | None, *names: str) -> np.random.Generator:
    """Return a generator seeded from ``seed`` and names (so each policy gets its own stream)."""
    if seed is None:
        return np.random.default_rng()
    digests = [int.from_bytes(hashlib.blake2b(n.encode(), digest_size=8).digest(), "big") for n in names]
    return np.random.default_rng([seed, *digests])
