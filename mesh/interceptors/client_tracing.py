"""Client side: one OpenTelemetry CLIENT span and one metrics row per attempt of every call.

Injects the W3C ``traceparent`` into the call's metadata, and records caller, callee, method,
attempt, the instance tried (from the balanced channel) and the status.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from opentelemetry import trace

from .._outcome import status_of
from .client_resilience import _Details


class ClientTracing(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, stack, clock: Callable[[], float] = time.perf_counter):
        self._stack = stack
        self._clock = clock

    def intercept_unary_unary(self, continuation, client_call_details, request):
        stack = self._stack
        method = client_call_details.method.rsplit("/", 1)[-1]
        metadata = list(client_call_details.metadata or ())
        attempt = int(dict(metadata).get("x-attempt", 1))
        attributes = {"rpc.system": "grpc", "rpc.method": method, "mesh.caller": stack.caller,
                      "mesh.caller_instance": stack.caller_instance, "mesh.callee": stack.callee,
                      "mesh.attempt": attempt}
        with stack.tracing.tracer.start_as_current_span(
                f"{stack.callee}/{method}", kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
            details = _Details(client_call_details.method, client_call_details.timeout,
                               stack.tracing.inject(metadata), client_call_details.credentials,
                               client_call_details.wait_for_ready, client_call_details.compression)
            stack.last_pick.set("")
            start = self._clock()
            outcome = continuation(details, request)
            latency = self._clock() - start
            code = status_of(outcome)
            instance = stack.last_pick.get() or ""
            span.set_attribute("mesh.instance", instance)
            span.set_attribute("rpc.grpc.status", code)
            if code != "OK":
                span.set_status(trace.Status(trace.StatusCode.ERROR, code))
            stack.metrics.client_attempt(stack.caller, stack.callee, method, code, latency, attempt, instance)
            return outcome
