"""Fault injection on one instance, switched at runtime (as Envoy's fault filter and Toxiproxy do).

- ``delay`` (+ up to ``delay_jitter``, on ``delay_percent`` of calls): added latency.
- ``abort_code`` on ``abort_percent`` of calls: answer with that status at once.
- ``hang_percent``: hold the call until the caller's deadline passes (at most ``max_hang`` s).
- ``workers`` > 0 with ``service_time``: a worker pool smaller than the load — each call holds one
  of ``workers`` slots for ``service_time`` s, so calls queue once load exceeds workers/service_time.
- ``partitioned_from``: caller services whose calls are dropped (held until their deadline, then
  UNAVAILABLE), as a network partition between those callers and this instance would.
Crashing an instance is ``Mesh.kill``, not a filter. Waits end at once when the instance stops.
Randomness comes from the instance's seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import grpc
import numpy as np

from ..client.headers import CALLER
from ._wrap import WrappedHandlers, metadata_value

T = TypeVar("T")


@dataclass(frozen=True)
class Faults:
    delay: float = 0.0
    delay_jitter: float = 0.0
    delay_percent: float = 100.0
    abort_code: str = ""
    abort_percent: float = 0.0
    hang_percent: float = 0.0
    max_hang: float = 10.0
    workers: int = 0
    service_time: float = 0.0
    partitioned_from: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.abort_code and self.abort_code not in grpc.StatusCode.__members__:
            raise ValueError(f"unknown gRPC status {self.abort_code!r}")
        for name in ("delay_percent", "abort_percent", "hang_percent"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be a percentage in [0, 100]")
        if min(self.delay, self.delay_jitter, self.service_time, self.max_hang) < 0 or self.workers < 0:
            raise ValueError("delays, times and workers must not be negative")

    @property
    def active(self) -> bool:
        return self != NO_FAULTS


NO_FAULTS = Faults()


class NoWorkerInTime(Exception):
    """No worker came free before the caller's deadline."""


class WorkerLimit:
    """At most ``workers`` calls at once, each holding its worker for a service time; a call beyond
    waits its turn, and one whose deadline passes while it waits is refused (a slow query on a
    small connection pool, say). The fault ``workers`` and the monolith's ``limit`` both use it."""

    def __init__(self, workers: int, wait: Callable[[float], object] = time.sleep):
        self._slots = threading.Semaphore(workers)
        self._wait = wait

    def run(self, call: Callable[[], T], service_time: float, time_left: float | None) -> T:
        """Wait at most ``time_left`` s (None: for ever) for a worker, spend ``service_time`` s on it,
        then return ``call()``; raise :class:`NoWorkerInTime` if none came free in time."""
        if not self._slots.acquire(timeout=time_left):
            raise NoWorkerInTime()
        try:
            if service_time > 0:
                self._wait(service_time)
            return call()
        finally:
            self._slots.release()


class FaultInjector(grpc.ServerInterceptor):
    def __init__(self, rng: np.random.Generator, stopping: threading.Event):
        self._rng = rng
        self._stopping = stopping
        self._lock = threading.Lock()
        self._faults = Faults()
        self._pool: WorkerLimit | None = None
        self.injected: dict[str, int] = {}
        self._handlers = WrappedHandlers()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults | None = None, **changes) -> Faults:
        """Replace the faults (or change some fields of them); return what is now in force."""
        new = replace(faults or self._faults, **changes)
        with self._lock:
            if new.workers != self._faults.workers:
                self._pool = WorkerLimit(new.workers, self._wait) if new.workers > 0 else None
            self._faults = new
        return new

    def _chance(self, percent: float) -> bool:
        if percent <= 0:
            return False
        with self._lock:
            return percent >= 100 or float(self._rng.random()) * 100 < percent

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def intercept_service(self, continuation, handler_call_details):
        return self._handlers.wrap(continuation(handler_call_details), handler_call_details.method,
                                   lambda: self._around)

    def _around(self, behaviour, request, context: grpc.ServicerContext):
        f = self._faults
        if not f.active:
            return behaviour(request, context)
        if f.partitioned_from and metadata_value(context, CALLER, "client") in f.partitioned_from:
            self._count("partition")
            self._wait(min(context.time_remaining() or f.max_hang, f.max_hang))
            context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned from this caller")
        if self._chance(f.hang_percent):
            self._count("hang")
            self._wait(min(context.time_remaining() or f.max_hang, f.max_hang))
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "injected hang")
        if self._chance(f.abort_percent) and f.abort_code:
            self._count("abort")
            context.abort(grpc.StatusCode[f.abort_code], f"injected {f.abort_code}")
        if (f.delay or f.delay_jitter) and self._chance(f.delay_percent):
            self._count("delay")
            with self._lock:
                jitter = float(self._rng.uniform(0, f.delay_jitter)) if f.delay_jitter else 0.0
            self._wait(f.delay + jitter)
        pool = self._pool
        if pool is None:
            return behaviour(request, context)
        try:
            return pool.run(lambda: behaviour(request, context), f.service_time, context.time_remaining())
        except NoWorkerInTime:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "waited for a worker past the deadline")
