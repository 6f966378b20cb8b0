"""Where a mesh's spans go, and how a client attempt's span is made once its call has returned.

Server spans are made by the OpenTelemetry SDK as usual (they must be current while a handler
runs, so the calls it makes become their children). A client attempt's span is different:
nothing nests under it on the caller's side, and everything about it — ids, parent, times,
attributes, status — is known when the call returns. Building it through the SDK's tracer takes
about 30 µs of Python (sampler, attribute checks, locks, a copy on end); made directly as the
SDK's own finished-span type, :class:`ReadableSpan`, it takes about 4 µs, and every microsecond
spent around a call delays the caller (bench/client_stack.py measures it). Such spans go to the
same processors as the tracer's (:attr:`SpanStore.processors`), so an exporter added there sees
both kinds.
"""

from __future__ import annotations

import threading
from collections import deque

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

MAX_SPANS = 100_000

#: Flags of a new trace under the mesh's ParentBased(ALWAYS_ON) sampler: sampled, random trace id.
ROOT_FLAGS = trace.TraceFlags(trace.TraceFlags.SAMPLED | trace.TraceFlags.RANDOM_TRACE_ID)
_UNSET = trace.Status(trace.StatusCode.UNSET)


class RecentSpans(SpanProcessor):
    """Keep the most recent ``max_spans`` finished spans in memory.

    A processor rather than the SDK's ``SimpleSpanProcessor`` + ``InMemorySpanExporter``: that pair
    grows without bound over a long load run, and wraps every export in a context switch meant for
    exporters that do I/O, which costs each span microseconds on the call path.
    """

    def __init__(self, max_spans: int = MAX_SPANS):
        self._spans: deque[ReadableSpan] = deque(maxlen=max_spans)
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._spans.append(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def get_finished_spans(self, ended_since_ns: int | None = None) -> tuple[ReadableSpan, ...]:
        """Return the spans kept, oldest first; with ``ended_since_ns``, only those that ended then
        or later (spans arrive as they end, so this reads only the newest end of the store)."""
        with self._lock:
            if ended_since_ns is None:
                return tuple(self._spans)
            newest = []
            for span in reversed(self._spans):
                if span.end_time < ended_since_ns:
                    break
                newest.append(span)
        return tuple(reversed(newest))

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        self.clear()


class SpanStore:
    """The processors every span of one mesh goes to (the recent-span store first), and the maker
    of client spans after their calls."""

    def __init__(self, resource: Resource, scope: InstrumentationScope, max_spans: int = MAX_SPANS):
        self.recent = RecentSpans(max_spans)
        self.processors = SynchronousMultiSpanProcessor()
        self.processors.add_span_processor(self.recent)
        self._resource = resource
        self._scope = scope
        self._ids = RandomIdGenerator()

    def new_span_id(self) -> int:
        return self._ids.generate_span_id()

    def new_trace_id(self) -> int:
        return self._ids.generate_trace_id()

    def finished(self, name: str, kind: trace.SpanKind, trace_id: int, span_id: int,
                 flags: trace.TraceFlags, parent: trace.SpanContext | None, start_ns: int, end_ns: int,
                 attributes: dict, error: str = "") -> None:
        """Record a span that has already ended; ``error`` (a status name) marks it failed.

        As the SDK's ParentBased sampler would, a span whose flags say "not sampled" is dropped.
        """
        if not flags.sampled:
            return
        context = trace.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags)
        status = trace.Status(trace.StatusCode.ERROR, error) if error else _UNSET
        self.processors.on_end(ReadableSpan(
            name=name, context=context, parent=parent, resource=self._resource, attributes=attributes,
            kind=kind, status=status, start_time=start_ns, end_time=end_ns,
            instrumentation_scope=self._scope))
