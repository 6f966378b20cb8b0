"""Server side: count and time every call an instance serves; say who served it.

Sends ``x-served-by: <instance id>`` in the initial metadata (so a caller can see which replica
answered) and records instance, method, status and latency in the mesh's :class:`Metrics`.
"""

from __future__ import annotations

import time

import grpc

from ..headers import SERVED_BY
from ..metrics import Metrics
from ._wrap import WrappedHandlers, run_reporting


class ServerMetrics(grpc.ServerInterceptor):
    def __init__(self, metrics: Metrics, service: str, instance: str, on_call=None):
        self._metrics = metrics
        self._service = service
        self._instance = instance
        self._on_call = on_call
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):
        full = handler_call_details.method
        return self._handlers.wrap(continuation(handler_call_details), full, lambda: self._around(full))

    def _around(self, full_method: str):
        method = full_method.rsplit("/", 1)[-1]

        def around(behaviour, request, context):
            context.send_initial_metadata(((SERVED_BY, self._instance),))
            if self._on_call is not None:
                self._on_call()
            self._metrics.server_started(self._instance)
            start = time.perf_counter()
            return run_reporting(behaviour, request, context, lambda status: self._metrics.server_finished(
                self._instance, self._service, method, status, time.perf_counter() - start))

        return around
