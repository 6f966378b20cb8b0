"""Call-chain tracing (链路追踪) with OpenTelemetry: spans, W3C ``traceparent``, call trees.

Each mesh has its own ``TracerProvider`` whose finished spans go to an in-memory span processor
that keeps the most recent 100,000. A client span is recorded for every attempt of every call
(made when the call returns: see :mod:`mesh.telemetry._span_store`) and a server span for every call an
instance serves; the ``traceparent`` header travels in gRPC metadata, so a server
span is the child of the client span that caused it, and the calls a handler makes are children
of its server span.

:meth:`Tracing.calls` turns finished spans into one call tree per request (service, instance,
method, start, duration, status, retry attempt); :meth:`Tracing.dependency_graph` into the service
dependency graph (a networkx DiGraph with call and error counts on each edge).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._span_store import MAX_SPANS, SpanStore

if TYPE_CHECKING:
    import networkx as nx


@dataclass
class CallNode:
    """One attempt of one call in a request's call tree."""

    service: str
    method: str
    instance: str
    caller: str
    start: float
    duration: float
    status: str
    attempt: int
    trace_id: str
    children: list[CallNode] = field(default_factory=list)
    refused: str = ""  # why the plan ended the call without sending it (breaker, rate_limit, ...)
    fallback: str = ""  # why a fallback answered instead of a server

    def walk(self, depth: int = 0):
        """Yield (depth, node) for this node and everything below it, in call order."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children), default=0)

    def __str__(self) -> str:
        lines = []
        for depth, node in self.walk():
            retry = f" (attempt {node.attempt})" if node.attempt > 1 else ""
            refused = f" refused: {node.refused}" if node.refused else ""
            fallback = f" fallback: {node.fallback}" if node.fallback else ""
            lines.append(f"{'  ' * depth}{node.service}.{node.method} @ {node.instance or '-'} "
                         f"{node.duration * 1e3:.1f} ms {node.status}{retry}{refused}{fallback}")
        return "\n".join(lines)


class Tracing:
    """A tracer provider, its in-memory span store, and W3C trace-context propagation."""

    def __init__(self, name: str = "mesh", max_spans: int = MAX_SPANS):
        resource = Resource.create({"service.name": name})
        self.store = SpanStore(resource, InstrumentationScope("mesh"), max_spans)
        # Sampler fixed here (not from OTEL_TRACES_SAMPLER): client spans (`_span_store`) follow it.
        self.provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))
        self.provider.add_span_processor(self.store.processors)
        self.tracer = self.provider.get_tracer("mesh")
        self.propagator = TraceContextTextMapPropagator()

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Send every span of this mesh, client and server, to ``processor`` too (an exporter)."""
        self.store.processors.add_span_processor(processor)

    # -- propagation (the client writes traceparent itself: interceptors/client_tracing.py) --------
    def extract(self, metadata) -> otel_context.Context:
        """Return the context a call's ``traceparent`` names (metadata: a dict or (key, value) pairs)."""
        return self.propagator.extract(metadata if isinstance(metadata, dict) else dict(metadata))

    # -- results ----------------------------------------------------------------------------------
    def spans(self, within: float | None = None) -> tuple[ReadableSpan, ...]:
        """Return the spans kept (at most ``max_spans``), oldest first; with ``within``, those that
        ended in the last ``within`` seconds."""
        if within is None:
            return self.store.recent.get_finished_spans()
        return self.store.recent.get_finished_spans(time.time_ns() - int(within * 1e9))

    def _whole_requests(self, within: float | None) -> tuple[ReadableSpan, ...]:
        """The spans of every request that began in the last ``within`` seconds (all: None). A
        request begun earlier is left out whole, so no call tree is cut short."""
        if within is None:
            return self.spans()
        since = time.time_ns() - int(within * 1e9)
        spans = self.store.recent.get_finished_spans(since)
        older = {s.context.trace_id for s in spans if s.start_time < since}
        return tuple(s for s in spans if s.context.trace_id not in older)

    def clear(self) -> None:
        self.store.recent.clear()

    def shutdown(self) -> None:
        self.provider.shutdown()

    def calls(self, within: float | None = None) -> list[CallNode]:
        """Return one tree per request: each root is a call that no traced call made (with
        ``within``, only requests that began in the last ``within`` seconds). A request still in
        flight is left out until its first call ends, so that no tree is shown cut short."""
        spans = self._whole_requests(within)
        by_id = {s.context.span_id: s for s in spans}
        server_of: dict[int, ReadableSpan] = {}
        nodes: dict[int, CallNode] = {}
        for span in spans:
            if span.kind == trace.SpanKind.SERVER and span.parent is not None:
                server_of[span.parent.span_id] = span
        for span in spans:
            if span.kind != trace.SpanKind.CLIENT:
                continue
            attrs = span.attributes or {}
            server = server_of.get(span.context.span_id)
            served = (server.attributes or {}).get("mesh.instance") if server else None
            instance = attrs.get("mesh.instance") or served
            nodes[span.context.span_id] = CallNode(
                service=str(attrs.get("mesh.callee", "")), method=str(attrs.get("rpc.method", "")),
                instance=str(instance or ""),
                caller=str(attrs.get("mesh.caller", "")), start=span.start_time / 1e9,
                duration=(span.end_time - span.start_time) / 1e9,
                status=str(attrs.get("rpc.grpc.status", "OK")), attempt=int(attrs.get("mesh.attempt", 1)),
                trace_id=f"{span.context.trace_id:032x}", refused=str(attrs.get("mesh.refused", "")),
                fallback=str(attrs.get("mesh.fallback", "")),
            )
        roots = []
        for span_id, node in nodes.items():
            parent = by_id[span_id].parent
            # The parent of a downstream client span is the server span of the call that made it.
            owner = None
            if parent is not None and parent.span_id in by_id:
                server = by_id[parent.span_id]
                if server.kind == trace.SpanKind.SERVER and server.parent is not None:
                    owner = nodes.get(server.parent.span_id)
                elif server.kind == trace.SpanKind.CLIENT:
                    owner = nodes.get(server.context.span_id)
            if owner is not None:
                owner.children.append(node)
            elif parent is None or parent.span_id in by_id:
                roots.append(node)
            # else: a call made by a call still in flight (spans are kept as they end) or by one
            # dropped from the bounded store; it is shown with its whole request, or not at all.
        for node in nodes.values():
            node.children.sort(key=lambda n: n.start)
        return sorted(roots, key=lambda n: n.start)

    def requests(self, within: float | None = None) -> list[list[CallNode]]:
        """Return the traced requests, oldest first: each the attempts (call trees) of one call made
        outside any traced call — one, or more when it was retried (with ``within``, only those
        begun in the last ``within`` seconds)."""
        by_trace: dict[str, list[CallNode]] = defaultdict(list)
        for root in self.calls(within):
            by_trace[root.trace_id].append(root)
        return sorted(by_trace.values(), key=lambda roots: roots[0].start)

    def dependency_graph(self, within: float | None = None) -> nx.DiGraph:
        """Return services as nodes and caller -> callee edges with ``calls`` and ``errors`` (with
        ``within``, of the calls that ended in the last ``within`` seconds)."""
        import networkx as nx  # here: an instance's process never draws the graph

        graph = nx.DiGraph()
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for span in self.spans(within):
            if span.kind != trace.SpanKind.CLIENT:
                continue
            attrs = span.attributes or {}
            edge = (str(attrs.get("mesh.caller", "client")), str(attrs.get("mesh.callee", "?")))
            counts[edge][0] += 1
            counts[edge][1] += attrs.get("rpc.grpc.status", "OK") != "OK"
        for (caller, callee), (calls, errors) in counts.items():
            graph.add_edge(caller, callee, calls=calls, errors=errors)
        return graph

    def records(self) -> list[dict[str, Any]]:
        """Return one row per attempt of every call (for plots and tables)."""
        rows = []
        for root in self.calls():
            for depth, node in root.walk():
                rows.append({"trace": node.trace_id, "depth": depth, "caller": node.caller,
                             "service": node.service, "method": node.method, "instance": node.instance,
                             "start": node.start, "duration": node.duration, "status": node.status,
                             "attempt": node.attempt})
        return rows
