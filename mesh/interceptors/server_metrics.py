"""Server side: count, time and log every call an instance serves; say who served it.

Sends ``x-served-by: <instance id>`` in the initial metadata (so a caller can see which replica
answered), records instance, method, status and latency in the mesh's :class:`Metrics`, and writes
an access-log line (``mesh.service.access``, INFO; WARNING for a failed call) inside the call's
trace (see :mod:`mesh.telemetry.logs`).
"""

from __future__ import annotations

import logging
import time

import grpc

from ..client.headers import SERVED_BY
from ..telemetry.logs import ACCESS
from ..telemetry.metrics import Metrics
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
            return run_reporting(behaviour, request, context,
                                 lambda status: self._finished(method, status, time.perf_counter() - start))

        return around

    def _finished(self, method: str, status: str, latency: float) -> None:
        self._metrics.server_finished(self._instance, self._service, method, status, latency)
        if _access.isEnabledFor(logging.INFO):
            fields = {"method": method, "code": status, "latency_ms": round(latency * 1e3, 2)}
            _access.log(logging.INFO if status == "OK" else logging.WARNING, "%s %s %.1f ms", method, status,
                        latency * 1e3, extra=fields)


_access = logging.getLogger(ACCESS)
