"""Load balancers: pick one instance from the currently healthy ones for each request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Balancer(Protocol):
    """What every load balancer offers: a pick, and optional feedback around each call."""

    def pick(self, instances: Sequence[T], request: Any = None) -> T: ...

    def on_start(self, instance: Any) -> None: ...

    def on_end(self, instance: Any, latency: float, ok: bool) -> None: ...


class RoundRobin:
    """Take the instances in turn.

    The position is a counter taken modulo the current number of instances, so a change of the
    list shifts the rotation but never resets it to the first instance on every change.
    """

    def __init__(self) -> None:
        self._next = 0

    def pick(self, instances: Sequence[T], request: Any = None) -> T:
        if not instances:
            raise LookupError("no instances to pick from")
        chosen = instances[self._next % len(instances)]
        self._next = (self._next + 1) % len(instances)
        return chosen

    def on_start(self, instance: Any) -> None:
        pass

    def on_end(self, instance: Any, latency: float, ok: bool) -> None:
        pass
