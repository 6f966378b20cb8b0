"""Arrival processes: how requests reach the edge of the topology.

Each gives ``next_gap(now, uniform)`` — the time to the next arrival after ``now`` — using
uniforms from the simulation's seeded stream. Non-constant rates use thinning (Lewis–Shedler):
draw candidates at the peak rate and keep each with probability rate(t) / peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Arrivals:
    def rate(self, t: float) -> float:
        raise NotImplementedError

    def peak(self) -> float:
        raise NotImplementedError

    def next_gap(self, now: float, uniform: Callable[[], float]) -> float:
        """Time from ``now`` to the next arrival (math.inf when the rate stays 0)."""
        peak = self.peak()
        if peak <= 0:
            return math.inf
        t = now
        for _ in range(1_000_000):
            t += -math.log(1.0 - uniform()) / peak
            if uniform() * peak <= self.rate(t):
                return t - now
        return math.inf


@dataclass(frozen=True)
class Poisson(Arrivals):
    """A constant rate (requests per second)."""

    rate_per_s: float

    def rate(self, t: float) -> float:
        return self.rate_per_s

    def peak(self) -> float:
        return self.rate_per_s

    def next_gap(self, now, uniform):
        return -math.log(1.0 - uniform()) / self.rate_per_s if self.rate_per_s > 0 else math.inf


@dataclass(frozen=True)
class OnOff(Arrivals):
    """Bursty: ``on_rate`` for ``on`` seconds, then ``off_rate`` for ``off`` seconds, repeating."""

    on_rate: float
    off_rate: float
    on: float
    off: float

    def rate(self, t: float) -> float:
        return self.on_rate if t % (self.on + self.off) < self.on else self.off_rate

    def peak(self) -> float:
        return max(self.on_rate, self.off_rate)


@dataclass(frozen=True)
class Steps(Arrivals):
    """Piecewise-constant: ``rates[i]`` from ``times[i]`` on (``times[0]`` is 0)."""

    times: Sequence[float]
    rates: Sequence[float]

    def rate(self, t: float) -> float:
        rate = self.rates[0]
        for start, r in zip(self.times, self.rates, strict=True):
            if t >= start:
                rate = r
        return rate

    def peak(self) -> float:
        return max(self.rates)


@dataclass(frozen=True)
class Ramp(Arrivals):
    """A linear change from ``start_rate`` to ``end_rate`` over ``duration`` seconds, then flat."""

    start_rate: float
    end_rate: float
    duration: float

    def rate(self, t: float) -> float:
        f = min(max(t / self.duration, 0.0), 1.0)
        return self.start_rate + f * (self.end_rate - self.start_rate)

    def peak(self) -> float:
        return max(self.start_rate, self.end_rate)
