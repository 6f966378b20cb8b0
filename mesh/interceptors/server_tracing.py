"""Server side: one OpenTelemetry SERVER span per call, child of the caller's ``traceparent``.

The span names the caller (``x-caller``) and which attempt of the caller's call this is
(``x-attempt``, sent by retries only: none means the first).
"""

from __future__ import annotations

import grpc
from opentelemetry import trace

from ..client.headers import ATTEMPT, CALLER
from ..telemetry.tracing import Tracing
from ._wrap import WrappedHandlers, run_reporting


class ServerTracing(grpc.ServerInterceptor):
    def __init__(self, tracing: Tracing, service: str, instance: str):
        self._tracing = tracing
        self._service = service
        self._instance = instance
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        return self._handlers.wrap(continuation(handler_call_details), method, lambda: self._around(method))

    def _around(self, method: str):
        name = method.rsplit("/", 1)[-1]

        def around(behaviour, request, context):
            metadata = dict(context.invocation_metadata())
            attempt = metadata.get(ATTEMPT, "1")
            attributes = {"rpc.system": "grpc", "rpc.method": name,
                          "mesh.service": self._service, "mesh.instance": self._instance,
                          "mesh.caller": metadata.get(CALLER, "client"),
                          "mesh.attempt": int(attempt) if attempt.isdigit() else 1}
            with self._tracing.tracer.start_as_current_span(
                    f"{self._service}/{name}", context=self._tracing.extract(metadata),
                    kind=trace.SpanKind.SERVER, attributes=attributes) as span:

                def report(status: str) -> None:
                    span.set_attribute("rpc.grpc.status", status)
                    if status != "OK":
                        span.set_status(trace.Status(trace.StatusCode.ERROR, status))

                return run_reporting(behaviour, request, context, report)

        return around
