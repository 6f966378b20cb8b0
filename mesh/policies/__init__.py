"""Resilience and routing policies: pure logic, no transport, no threads, clock injected.

The real mesh passes ``time.monotonic`` and the SimPy simulator passes ``lambda: env.now``; both run
the very same classes. Randomness comes from a ``numpy.random.Generator`` the caller seeds.
:class:`PolicySettings` is a caller's policy as flat settings (what the config center holds) and
:class:`PolicyState` the objects built from them.

Importing this package loads neither grpc, aiohttp nor OpenTelemetry (a test checks it), so the
simulator and its sweep workers start light.
"""

from ._uniforms import Uniforms
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
from .names import breaker_name, instance_id, parse_breaker_name, service_of
from .outlier import OutlierDetector
from .rate_limit import SlidingWindow, TokenBucket
from .release import Release, key_bucket, route, version_share
from .retry import JITTERS, Backoff, RetryBudget, RetryPolicy
from .settings import PolicySettings, PolicyState, rng_for

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
    "PolicySettings",
    "PolicyState",
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
    "Uniforms",
    "WeightedRoundRobin",
    "breaker_name",
    "instance_id",
    "key_bucket",
    "make_balancer",
    "parse_breaker_name",
    "rng_for",
    "route",
    "service_of",
    "version_share",
]
