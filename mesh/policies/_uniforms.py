"""Uniform [0, 1) numbers handed out from batches of a seeded ``numpy.random.Generator``.

A numpy call costs about a microsecond whatever it draws, so policies that flip a coin on every
request (balancers picking instances) draw 8192 at a time. The stream is fixed by the seed.
"""

from __future__ import annotations

import numpy as np

BATCH = 8192


class Uniforms:
    __slots__ = ("_buf", "_i", "_rng")

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(BATCH).tolist()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value

    def index(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return min(int(self() * n), n - 1)
