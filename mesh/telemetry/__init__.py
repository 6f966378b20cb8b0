"""What the mesh sees of its calls: traces (OpenTelemetry, spans kept in memory), metrics and their
Prometheus exposition, structured logs with trace ids, and the OTLP receiver processes send to."""

from ._span_store import ROOT_FLAGS, RecentSpans, SpanStore
from .logs import ACCESS, CONTEXT_FIELDS, LOGGER, LogStore, TraceContextFilter
from .metrics import Metrics
from .otlp import OtlpReceiver
from .prometheus import BUCKETS, PrometheusMetrics
from .tracing import CallNode, Tracing

__all__ = [
    "ACCESS",
    "BUCKETS",
    "CONTEXT_FIELDS",
    "LOGGER",
    "ROOT_FLAGS",
    "CallNode",
    "LogStore",
    "Metrics",
    "OtlpReceiver",
    "PrometheusMetrics",
    "RecentSpans",
    "SpanStore",
    "TraceContextFilter",
    "Tracing",
]
