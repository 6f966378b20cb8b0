"""Load balancers: pick one of the currently healthy instances for each request.

Every balancer offers ``pick(instances, request)``, and ``on_start(instance)`` /
``on_end(instance, latency, ok)`` to hear how each call went (the load-aware ones use it).
Instances are any hashable objects with an ``id`` (and a ``weight`` where weights matter), so the
real mesh passes discovery endpoints and the simulator passes its own instances. Randomness comes
from a ``numpy.random.Generator`` and time from a ``clock`` callable, both given by the caller.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from ._uniforms import Uniforms

T = TypeVar("T")


class Balancer(Protocol):
    """What every load balancer offers: a pick, and feedback around each call."""

    def pick(self, instances: Sequence[T], request: Any = None) -> T: ...

    def on_start(self, instance: Any) -> None: ...

    def on_end(self, instance: Any, latency: float, ok: bool) -> None: ...


def _require(instances: Sequence) -> None:
    if not instances:
        raise LookupError("no instances to pick from")


class _NoFeedback:
    def on_start(self, instance: Any) -> None:
        pass

    def on_end(self, instance: Any, latency: float, ok: bool) -> None:
        pass


class RoundRobin(_NoFeedback):
    """Take the instances in turn.

    The position is a counter taken modulo the current number of instances, so a change of the
    list shifts the rotation but never resets it to the first instance on every change.
    """

    def __init__(self) -> None:
        self._next = 0

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        n = len(instances)
        if not n:
            _require(instances)
        position = self._next % n
        self._next = (position + 1) % n
        return instances[position]


class Random(_NoFeedback):
    """Pick uniformly at random."""

    def __init__(self, rng: np.random.Generator):
        self._uniform = Uniforms(rng)

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        _require(instances)
        return instances[self._uniform.index(len(instances))]


class WeightedRoundRobin(_NoFeedback):
    """Smooth weighted round robin, as nginx does it: weights 5,1,1 give a a b a c a a, not a a a a a b c.

    Each pick adds every instance's weight to its current score, takes the highest score, and
    subtracts the total weight from the winner. Weights come from ``instance.weight``.
    """

    def __init__(self) -> None:
        self._current: dict[Any, float] = {}

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        _require(instances)
        total = 0.0
        best, best_score = None, -math.inf
        present = set()
        for instance in instances:
            weight = max(float(getattr(instance, "weight", 1)), 0.0)
            score = self._current.get(instance, 0.0) + weight
            self._current[instance] = score
            present.add(instance)
            total += weight
            if score > best_score:
                best, best_score = instance, score
        for gone in [i for i in self._current if i not in present]:
            del self._current[gone]
        self._current[best] -= total
        return best


class _Outstanding:
    """Count calls in flight per instance from on_start/on_end."""

    def __init__(self) -> None:
        self.active: dict[Any, int] = {}

    def on_start(self, instance: Any) -> None:
        self.active[instance] = self.active.get(instance, 0) + 1

    def on_end(self, instance: Any, latency: float, ok: bool) -> None:
        count = self.active.get(instance, 0) - 1
        if count > 0:
            self.active[instance] = count
        else:
            self.active.pop(instance, None)


class LeastOutstanding(_Outstanding):
    """Pick the instance with the fewest calls in flight (ties broken at random)."""

    def __init__(self, rng: np.random.Generator):
        super().__init__()
        self._uniform = Uniforms(rng)

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        _require(instances)
        fewest = min(self.active.get(i, 0) for i in instances)
        tied = [i for i in instances if self.active.get(i, 0) == fewest]
        return tied[self._uniform.index(len(tied))] if len(tied) > 1 else tied[0]


class PowerOfChoices(_Outstanding):
    """Power of d choices (P2C for d=2), as Envoy's least-request: sample d distinct instances, take
    the least loaded.

    ``choices`` is Envoy's ``choice_count``. The sample is drawn without replacement (JSQ(d)); with
    no more instances than choices, all of them are compared. A tie goes to the instance sampled
    first, which is a random one, so equal instances share the calls evenly. With unequal weights
    Envoy divides by the weight; so does this (load = in-flight / weight).
    """

    def __init__(self, rng: np.random.Generator, choices: int = 2):
        super().__init__()
        if choices < 1:
            raise ValueError("choices must be at least 1")
        self._uniform = Uniforms(rng)
        self.choices = choices

    def _load(self, instance: Any) -> float:
        weight = getattr(instance, "weight", 1)
        active = self.active.get(instance, 0)
        return active if weight == 1 else active / max(float(weight), 1e-9)

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        n = len(instances)
        if n < 2:
            _require(instances)
            return instances[0]
        uniform = self._uniform
        if self.choices == 2:  # the common case, kept lean: it runs on every request
            a = int(uniform() * n) % n
            b = (a + 1 + int(uniform() * (n - 1)) % (n - 1)) % n  # a different instance
            first, second = instances[a], instances[b]
            if getattr(first, "weight", 1) == 1 and getattr(second, "weight", 1) == 1:
                active = self.active
                return first if active.get(first, 0) <= active.get(second, 0) else second
            return first if self._load(first) <= self._load(second) else second
        order = list(range(n))
        best, best_load = None, math.inf
        for i in range(min(self.choices, n)):  # a partial Fisher-Yates shuffle: distinct samples
            j = i + uniform.index(n - i)
            order[i], order[j] = order[j], order[i]
            candidate = instances[order[i]]
            load = self._load(candidate)
            if load < best_load:
                best, best_load = candidate, load
        return best


class RingHash(_NoFeedback):
    """Consistent hashing on a request key, with virtual nodes on a ring (as Envoy's ring_hash).

    ``key(request)`` gives the hash key (a user id, a cart id). Each instance owns ``replicas``
    points on the ring (times its weight); a key goes to the first point clockwise. When an
    instance leaves, only the keys it owned move.
    """

    def __init__(self, key: Callable[[Any], str] = str, replicas: int = 100):
        self._key = key
        self._replicas = replicas
        self._members: tuple = ()
        self._points: list[int] = []
        self._owners: list[Any] = []

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def _build(self, instances: Sequence[Any]) -> None:
        ring = []
        for instance in instances:
            count = max(1, round(self._replicas * float(getattr(instance, "weight", 1))))
            ident = getattr(instance, "id", instance)
            ring += [(self._hash(f"{ident}#{v}"), instance) for v in range(count)]
        ring.sort(key=lambda point: point[0])
        self._points = [p for p, _ in ring]
        self._owners = [o for _, o in ring]
        self._members = tuple(instances)

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        _require(instances)
        if tuple(instances) != self._members:
            self._build(instances)
        slot = bisect.bisect(self._points, self._hash(self._key(request))) % len(self._points)
        return self._owners[slot]


class PeakEwma(_Outstanding):
    """Latency-aware balancing, after Finagle's and Linkerd's peak-EWMA.

    Each instance keeps an exponentially weighted moving average of its response time that jumps
    up at once to a slower observation (the "peak") and decays towards faster ones with time
    constant ``decay`` seconds. Cost = EWMA x (in flight + 1); P2C over that cost picks the
    instance. New instances start at ``initial`` seconds so that they get tried. Time is ``clock()``.
    """

    def __init__(self, rng: np.random.Generator, clock: Callable[[], float], decay: float = 10.0,
                 initial: float = 0.01):
        super().__init__()
        self._uniform = Uniforms(rng)
        self._clock = clock
        self._decay = decay
        self._initial = initial
        self.ewma: dict[Any, float] = {}
        self._stamp: dict[Any, float] = {}

    def cost(self, instance: Any) -> float:
        return self.ewma.get(instance, self._initial) * (self.active.get(instance, 0) + 1)

    def on_end(self, instance: Any, latency: float, ok: bool) -> None:
        super().on_end(instance, latency, ok)
        now = self._clock()
        previous = self.ewma.get(instance)
        if previous is None or latency > previous:
            self.ewma[instance] = latency
        else:
            elapsed = max(now - self._stamp.get(instance, now), 0.0)
            weight = math.exp(-elapsed / self._decay)
            self.ewma[instance] = previous * weight + latency * (1.0 - weight)
        self._stamp[instance] = now

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        _require(instances)
        if len(instances) == 1:
            return instances[0]
        n = len(instances)
        a = self._uniform.index(n)
        b = (a + 1 + self._uniform.index(n - 1)) % n  # a different instance
        first, second = instances[a], instances[b]
        return first if self.cost(first) <= self.cost(second) else second


BALANCERS = {
    "round_robin": lambda rng, clock, choices: RoundRobin(),
    "random": lambda rng, clock, choices: Random(rng),
    "weighted_round_robin": lambda rng, clock, choices: WeightedRoundRobin(),
    "least_outstanding": lambda rng, clock, choices: LeastOutstanding(rng),
    "p2c": lambda rng, clock, choices: PowerOfChoices(rng, choices),
    "ring_hash": lambda rng, clock, choices: RingHash(),
    "peak_ewma": lambda rng, clock, choices: PeakEwma(rng, clock),
}


def make_balancer(name: str, rng: np.random.Generator, clock: Callable[[], float],
                  choices: int = 2) -> Balancer:
    """Return a balancer by its name in :data:`BALANCERS` (what a policy spec names); ``choices`` is
    how many instances ``p2c`` compares."""
    try:
        return BALANCERS[name](rng, clock, choices)
    except KeyError:
        raise ValueError(f"unknown balancer {name!r}; choose one of {sorted(BALANCERS)}") from None
