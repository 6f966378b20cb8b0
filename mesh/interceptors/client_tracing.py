"""Client side: one OpenTelemetry CLIENT span and one metrics row per attempt of every call.

Injects the W3C ``traceparent`` into the attempt's metadata, and records caller, callee, method,
attempt, the instance the call plan chose and the status; the span is made when
the call returns (:mod:`mesh.telemetry._span_store`). The resilience
interceptor runs each attempt through :meth:`AttemptTracer.run` rather than through a second gRPC
interceptor: every interceptor layer costs a call tens of microseconds (see bench/client_stack.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from opentelemetry import trace

from ..client.headers import TRACEPARENT
from ..client.outcome import status_of
from ..telemetry import ROOT_FLAGS


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """Return a W3C ``traceparent`` header (version 00)."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


class AttemptTracer:
    def __init__(self, stack, clock: Callable[[], float] = time.perf_counter):
        self._stack = stack
        self._clock = clock

    def run(self, continuation, details: grpc.ClientCallDetails, request, method: str, attempt: int,
            instance: str, call_trace: tuple | None = None):
        """Run one attempt on ``instance`` (``details`` are its own: timeout, metadata) and record its
        span; return the outcome and the span's (trace id, flags).

        The span's ids are drawn first and sent as the ``traceparent``; the span is made when the
        call returns (see :mod:`mesh.telemetry._span_store`). It need not be current while the call runs:
        nothing nests under it on this side of the wire. A call made outside any traced call (from
        the notebook) starts a trace with its first attempt; its later attempts pass that attempt's
        ``call_trace`` and join the same trace.
        """
        stack = self._stack
        store = stack.tracing.store
        trace_id, span_id, flags, parent = self._ids(store, call_trace)
        details.metadata.append((TRACEPARENT, traceparent(trace_id, span_id, flags)))
        start_ns = time.time_ns()
        start = self._clock()
        outcome = continuation(details, request)
        latency = self._clock() - start
        end_ns = time.time_ns()
        code = status_of(outcome)
        attributes = {"rpc.method": method, "mesh.caller": stack.caller, "mesh.callee": stack.callee,
                      "mesh.attempt": attempt, "mesh.instance": instance, "rpc.grpc.status": code}
        store.finished(f"{stack.callee}/{method}", trace.SpanKind.CLIENT, trace_id, span_id, flags, parent,
                       start_ns, end_ns, attributes, "" if code == "OK" else code)
        stack.metrics.client_attempt(stack.caller, stack.callee, method, code, latency, attempt, instance)
        return outcome, (trace_id, flags)

    def refused(self, method: str, attempt: int, cause: str, code: str, fallback: str = "",
                call_trace: tuple | None = None) -> None:
        """Record a call that its plan ended without sending it — a breaker open, a limit reached, a
        bulkhead full, no instance, the deadline gone — as a span of no length marked ``mesh.refused``
        (and ``mesh.fallback`` when a fallback answered), so traces show where calls stopped."""
        stack = self._stack
        store = stack.tracing.store
        trace_id, span_id, flags, parent = self._ids(store, call_trace)
        now_ns = time.time_ns()
        attributes = {"rpc.method": method, "mesh.caller": stack.caller, "mesh.callee": stack.callee,
                      "mesh.attempt": attempt, "mesh.instance": "", "rpc.grpc.status": code,
                      "mesh.refused": cause}
        if fallback:
            attributes["mesh.fallback"] = fallback
        store.finished(f"{stack.callee}/{method}", trace.SpanKind.CLIENT, trace_id, span_id, flags, parent,
                       now_ns, now_ns, attributes, "" if code == "OK" else code)

    @staticmethod
    def _ids(store, call_trace: tuple | None) -> tuple:
        """Return (trace id, span id, flags, parent) of a new client span in the current context: a
        child inherits its parent's trace and flags (ParentBased sampling); a later attempt of a
        call with no parent joins its first attempt's trace; else a new trace starts."""
        parent = trace.get_current_span().get_span_context()
        span_id = store.new_span_id()
        if parent.is_valid:
            return parent.trace_id, span_id, parent.trace_flags, parent
        if call_trace is not None:
            return call_trace[0], span_id, call_trace[1], None
        return store.new_trace_id(), span_id, ROOT_FLAGS, None
