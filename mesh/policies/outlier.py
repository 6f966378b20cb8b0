"""Outlier detection (passive health checking), as Envoy's: eject instances that keep failing.

After ``consecutive_errors`` failures in a row an instance is ejected for ``base_ejection_time``
times the number of times it has been ejected (capped at ``max_ejection_time``), so a repeat
offender stays out longer. At most ``max_ejection_percent`` of the instances are out at once, but
at least one may always be ejected. Time comes from ``clock``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class OutlierDetector:
    def __init__(self, clock: Callable[[], float], consecutive_errors: int = 5,
                 base_ejection_time: float = 30.0, max_ejection_time: float = 300.0,
                 max_ejection_percent: float = 10.0):
        if consecutive_errors < 1 or base_ejection_time <= 0 or not 0 <= max_ejection_percent <= 100:
            raise ValueError("bad outlier-detection settings")
        self._clock = clock
        self.consecutive_errors = consecutive_errors
        self.base_ejection_time = base_ejection_time
        self.max_ejection_time = max_ejection_time
        self.max_ejection_percent = max_ejection_percent
        self._streak: dict[Any, int] = {}
        self._times_ejected: dict[Any, int] = {}
        self._ejected_until: dict[Any, float] = {}
        self.ejections: list[tuple[float, Any, float]] = []  # (time, instance, seconds)

    def is_ejected(self, instance: Any) -> bool:
        until = self._ejected_until.get(instance)
        if until is None:
            return False
        if self._clock() >= until:
            del self._ejected_until[instance]
            return False
        return True

    def available(self, instances: Sequence[T]) -> list[T]:
        """Return the instances not ejected now (all of them if every one is ejected)."""
        kept = [i for i in instances if not self.is_ejected(i)]
        return kept or list(instances)

    def on_result(self, instance: Any, ok: bool, pool_size: int) -> bool:
        """Record one call's outcome; return True if it ejected the instance."""
        if ok:
            self._streak[instance] = 0
            return False
        streak = self._streak.get(instance, 0) + 1
        self._streak[instance] = streak
        if streak < self.consecutive_errors or self.is_ejected(instance):
            return False
        ejected_now = sum(1 for i in list(self._ejected_until) if self.is_ejected(i))
        allowed = max(1, math.floor(pool_size * self.max_ejection_percent / 100))
        if ejected_now >= allowed:
            return False
        times = self._times_ejected.get(instance, 0) + 1
        self._times_ejected[instance] = times
        seconds = min(self.base_ejection_time * times, max(self.max_ejection_time, self.base_ejection_time))
        now = self._clock()
        self._ejected_until[instance] = now + seconds
        self._streak[instance] = 0
        self.ejections.append((now, instance, seconds))
        return True
