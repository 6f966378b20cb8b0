"""What a service's handlers can use: their settings, clients to other services, bounded work.

Each instance's servicer is built with an :class:`InstanceRuntime`. ``runtime.client("orders")``
is a stub whose calls carry this instance as the caller (for policies, tracing and partitions) and
the deadline of the call being handled. ``runtime.work(seconds, context)`` simulates work that
stops at the caller's deadline (a callee never works past it) or when the instance is killed.
``runtime.fan_out(...)`` runs calls in parallel and waits for all of them.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc


class InstanceRuntime:
    def __init__(self, instance, client_for: Callable[[str, Any], Any], config, pool: ThreadPoolExecutor):
        self.instance = instance
        self.config = config
        self._client_for = client_for
        self._pool = pool
        # (seconds worked, time left on the caller's deadline after): the most recent calls only
        self.work_log: deque[tuple[float, float | None]] = deque(maxlen=10_000)

    def client(self, service: str):
        """Return a stub for ``service`` whose calls come from this instance."""
        return self._client_for(service, self.instance)

    def work(self, seconds: float, context: grpc.ServicerContext) -> None:
        """Spend ``seconds`` on the request, but never past the caller's deadline."""
        remaining = context.time_remaining()
        budget = seconds if remaining is None else min(seconds, max(remaining, 0.0))
        interrupted = self.instance.stopping.wait(budget) if budget > 0 else False
        left = context.time_remaining()
        self.work_log.append((budget, left))
        if interrupted:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.instance.id} is shutting down")
        if budget < seconds:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"{self.instance.id} stopped working at the caller's deadline")

    def fan_out(self, calls: list[Callable[[], Any]]) -> list[Any]:
        """Run ``calls`` in parallel (each in a copy of this context) and return their results in order.

        Raises the first error after all of them have ended.
        """
        futures = [self._pool.submit(contextvars.copy_context().run, call) for call in calls]
        results, first_error = [], None
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(None)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return results
