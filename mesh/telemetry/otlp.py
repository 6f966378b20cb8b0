"""An OTLP trace receiver: spans sent by instances running as processes, into the mesh's span store.

An instance in its own process (:mod:`mesh.serve`) exports its spans with OpenTelemetry's standard
OTLP/gRPC exporter. :class:`OtlpReceiver` serves OTLP's ``TraceService.Export`` (the service an
OpenTelemetry Collector or Jaeger serves) on loopback and records each span it receives in the
mesh's store, as if the span had been made in the kernel: the call trees, the map and the trace
explorer read them the same way. Given the mesh's :class:`~mesh.telemetry.metrics.Metrics`, it also records
a metrics row for each call a span describes — the client side of every attempt, the server side
of every call — as the Collector's span-metrics connector derives metrics from spans, so that the
console and the map see the calls made between processes. Given the mesh's
:class:`~mesh.telemetry.logs.LogStore`, it serves OTLP's ``LogsService`` too: the processes' log lines (each
with its trace id) join the kernel's in ``mesh.logs``. Point the processes at a real collector
instead by its address.

Written here because a receiver is the one part of OTLP that OpenTelemetry's Python packages do
not ship (they export; the Collector receives); the message types are ``opentelemetry-proto``'s.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ..client.servers import listen, new_server
from ._span_store import SpanStore
from .logs import CONTEXT_FIELDS, LogStore
from .metrics import Metrics

__all__ = ["OtlpReceiver"]

#: OTLP's span kinds (SPAN_KIND_UNSPECIFIED = 0, INTERNAL = 1, ...) as OpenTelemetry's.
_KINDS = {Span.SPAN_KIND_INTERNAL: trace.SpanKind.INTERNAL, Span.SPAN_KIND_SERVER: trace.SpanKind.SERVER,
          Span.SPAN_KIND_CLIENT: trace.SpanKind.CLIENT, Span.SPAN_KIND_PRODUCER: trace.SpanKind.PRODUCER,
          Span.SPAN_KIND_CONSUMER: trace.SpanKind.CONSUMER}
#: The most spans one export may carry (the exporter sends at most 512 a batch by default).
MAX_SPANS_PER_EXPORT = 10_000


def _value(value: AnyValue):
    which = value.WhichOneof("value")
    if which in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, which)
    if which == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return str(value)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: SpanStore, metrics: Metrics | None):
        self._store = store
        self._metrics = metrics
        self.received = 0

    def _measure(self, kind: trace.SpanKind, attributes: dict, latency: float) -> None:
        """The metrics row the span stands for (spans of the mesh's interceptors only)."""
        status, method = str(attributes.get("rpc.grpc.status", "OK")), str(attributes.get("rpc.method", ""))
        if kind == trace.SpanKind.CLIENT and "mesh.callee" in attributes:
            caller, callee = str(attributes.get("mesh.caller", "")), str(attributes["mesh.callee"])
            self._metrics.client_attempt(caller, callee, method, status, latency,
                                         int(attributes.get("mesh.attempt", 1)),
                                         str(attributes.get("mesh.instance", "")))
        elif kind == trace.SpanKind.SERVER and "mesh.instance" in attributes:
            instance = str(attributes["mesh.instance"])
            self._metrics.server_started(instance)
            self._metrics.server_finished(instance, str(attributes.get("mesh.service", "")), method, status,
                                          latency)

    def Export(self, request, context):
        spans = [span for resource in request.resource_spans for scope in resource.scope_spans
                 for span in scope.spans]
        if len(spans) > MAX_SPANS_PER_EXPORT:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"at most {MAX_SPANS_PER_EXPORT} spans an export, got {len(spans)}")
        rejected = 0
        for span in spans:
            if len(span.trace_id) != 16 or len(span.span_id) != 8 or len(span.parent_span_id) not in (0, 8):
                rejected += 1
                continue
            trace_id = int.from_bytes(span.trace_id, "big")
            flags = trace.TraceFlags(trace.TraceFlags.SAMPLED)
            parent = (trace.SpanContext(trace_id, int.from_bytes(span.parent_span_id, "big"), is_remote=True,
                                        trace_flags=flags) if span.parent_span_id else None)
            failed = span.status.code == Status.STATUS_CODE_ERROR
            error = (span.status.message or "ERROR") if failed else ""
            kind = _KINDS.get(span.kind, trace.SpanKind.INTERNAL)
            attributes = {a.key: _value(a.value) for a in span.attributes}
            span_id = int.from_bytes(span.span_id, "big")
            self._store.finished(span.name, kind, trace_id, span_id, flags, parent,
                                 span.start_time_unix_nano, span.end_time_unix_nano, attributes, error)
            if self._metrics is not None:
                latency = max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e9
                # an attribute of the wrong type: the span stays a trace, without a metrics row
                with contextlib.suppress(TypeError, ValueError):
                    self._measure(kind, attributes, latency)
            self.received += 1
        response = trace_service_pb2.ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = "a trace id must be 16 bytes, a span id 8"
        return response


#: Log record attributes that say where in the source a line was logged: not kept (the kernel's
#: own records do not carry them either).
_SOURCE_ATTRIBUTES = ("code.",)


def _level(severity: int, text: str) -> str:
    """The standard library's level name for an OTLP severity (whose ranges of four are TRACE,
    DEBUG, INFO, WARN, ERROR, FATAL, from 1; 0 is unset)."""
    if not severity:
        return text.upper() or "INFO"
    for below, name in ((9, "DEBUG"), (13, "INFO"), (17, "WARNING"), (21, "ERROR")):
        if severity < below:
            return name
    return "CRITICAL"


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    """Each log record received becomes a record of the mesh's :class:`~mesh.telemetry.logs.LogStore`, with
    the fields a record made in the kernel has (its attributes carry them: the processes attach
    :class:`~mesh.telemetry.logs.TraceContextFilter` to their OTLP log handler)."""

    def __init__(self, logs: LogStore):
        self._logs = logs
        self.received = 0

    def Export(self, request, context):
        records = [(scope.scope.name, record) for resource in request.resource_logs
                   for scope in resource.scope_logs for record in scope.log_records]
        if len(records) > MAX_SPANS_PER_EXPORT:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"at most {MAX_SPANS_PER_EXPORT} log records an export, got {len(records)}")
        for logger, record in records:
            attributes = {a.key: _value(a.value) for a in record.attributes
                          if not a.key.startswith(_SOURCE_ATTRIBUTES)}
            entry = {"time": (record.time_unix_nano or record.observed_time_unix_nano) / 1e9,
                     "level": _level(record.severity_number, record.severity_text),
                     "logger": logger, "message": str(_value(record.body))}
            entry.update({field: str(attributes.pop(field, "")) for field in CONTEXT_FIELDS})
            if not entry["trace_id"] and len(record.trace_id) == 16:
                entry["trace_id"], entry["span_id"] = record.trace_id.hex(), record.span_id.hex()
            entry.update(attributes)
            self._logs.add(entry)
            self.received += 1
        return logs_service_pb2.ExportLogsServiceResponse()


class OtlpReceiver:
    """OTLP/gRPC ``TraceService`` (and, given ``logs``, ``LogsService``) on ``127.0.0.1`` (a free
    port), feeding ``store`` (and ``metrics``, and ``logs``)."""

    def __init__(self, store: SpanStore, metrics: Metrics | None = None, host: str = "127.0.0.1",
                 logs: LogStore | None = None):
        self._service = _TraceService(store, metrics)
        self._logs = _LogsService(logs) if logs is not None else None
        self._server = new_server(ThreadPoolExecutor(4, thread_name_prefix="otlp-receiver"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._service, self._server)
        if self._logs is not None:
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self._logs, self._server)
        self.port = listen(self._server, host, 0, "the OTLP receiver")
        self.host = host
        self._server.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def received(self) -> int:
        """Spans (and log records) received so far."""
        return self._service.received + (self._logs.received if self._logs is not None else 0)

    def stop(self) -> None:
        self._server.stop(grace=0.5).wait()
