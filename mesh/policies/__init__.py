"""Resilience and routing policies: pure logic, no transport, no threads, clock injected.

The real mesh passes ``time.monotonic`` and the SimPy simulator passes ``lambda: env.now``; both run
the very same classes. Randomness comes from a ``numpy.random.Generator`` the caller seeds.
"""

from .balancers import (
    BALANCERS,
    Balancer,
    LeastOutstanding,
    PeakEwma,
    PowerOfChoices,
    Random,
    RingHash,
    RoundRobin,
    WeightedRoundRobin,
    make_balancer,
)
from .bulkhead import Bulkhead, Ticket
from .circuit_breaker import BreakerConfig, CallNotPermitted, CircuitBreaker, State, Transition
from .deadline import Deadline, DeadlineExceeded
from .fallback import Fallback, NoFallback
from .outlier import OutlierDetector
from .rate_limit import SlidingWindow, TokenBucket
from .release import Release, key_bucket, route, version_share
from .retry import JITTERS, Backoff, RetryBudget, RetryPolicy

__all__ = [
    "BALANCERS",
    "JITTERS",
    "Backoff",
    "Balancer",
    "BreakerConfig",
    "Bulkhead",
    "CallNotPermitted",
    "CircuitBreaker",
    "Deadline",
    "DeadlineExceeded",
    "Fallback",
    "LeastOutstanding",
    "NoFallback",
    "OutlierDetector",
    "PeakEwma",
    "PowerOfChoices",
    "Random",
    "Release",
    "RetryBudget",
    "RetryPolicy",
    "RingHash",
    "RoundRobin",
    "SlidingWindow",
    "State",
    "Ticket",
    "TokenBucket",
    "Transition",
    "WeightedRoundRobin",
    "key_bucket",
    "make_balancer",
    "route",
    "version_share",
]
