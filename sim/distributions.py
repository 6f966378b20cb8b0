"""Service-time distributions, drawn in batches from a seeded ``numpy.random.Generator``.

Drawing one number at a time from numpy costs about a microsecond; a simulation draws millions,
so every distribution hands out numbers from a pre-drawn batch (the sequence is the same as
drawing one at a time would be only up to batching, but it is fixed by the seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mesh.policies import Uniforms

__all__ = ["BATCH", "Bimodal", "Deterministic", "Distribution", "Exponential", "LogNormal", "Sampler",
           "Uniforms"]

BATCH = 8192


class Distribution:
    """A distribution of service times (seconds); ``mean`` is its theoretical mean."""

    mean: float

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean^2), for queueing formulas."""
        raise NotImplementedError


@dataclass(frozen=True)
class Exponential(Distribution):
    mean: float

    def draw(self, rng, size):
        return rng.exponential(self.mean, size)

    def scv(self) -> float:
        return 1.0


@dataclass(frozen=True)
class Deterministic(Distribution):
    mean: float

    def draw(self, rng, size):
        return np.full(size, self.mean)

    def scv(self) -> float:
        return 0.0


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Lognormal with the given mean and ``sigma`` of the underlying normal."""

    mean: float
    sigma: float = 0.5

    def draw(self, rng, size):
        mu = np.log(self.mean) - self.sigma**2 / 2
        return rng.lognormal(mu, self.sigma, size)

    def scv(self) -> float:
        return float(np.exp(self.sigma**2) - 1)


@dataclass(frozen=True)
class Bimodal(Distribution):
    """Mostly ``fast``, with probability ``p_slow`` a ``slow`` call (a heavy tail)."""

    fast: float
    slow: float
    p_slow: float = 0.05

    @property
    def mean(self) -> float:  # type: ignore[override]
        return (1 - self.p_slow) * self.fast + self.p_slow * self.slow

    def draw(self, rng, size):
        return np.where(rng.random(size) < self.p_slow, self.slow, self.fast)

    def scv(self) -> float:
        second = (1 - self.p_slow) * self.fast**2 + self.p_slow * self.slow**2
        return second / self.mean**2 - 1


class Sampler:
    """Hand out draws of one distribution from batches (fast; deterministic per seed)."""

    __slots__ = ("_buf", "_dist", "_i", "_rng")

    def __init__(self, dist: Distribution, rng: np.random.Generator):
        self._dist, self._rng = dist, rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._dist.draw(self._rng, BATCH).tolist()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value
