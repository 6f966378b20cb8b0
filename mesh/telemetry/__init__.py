"""What the mesh sees of its calls: traces (OpenTelemetry, spans kept in memory), metrics and their
Prometheus exposition, structured logs with trace ids, and the OTLP receiver processes send to."""

from .logs import ACCESS, CONTEXT_FIELDS, LOGGER, LogStore, TraceContextFilter
from .metrics import Metrics
from .otlp import OtlpReceiver
from .prometheus import BUCKETS, PrometheusMetrics
from .span_store import RecentSpans, SpanStore
from .tracing import CallNode, Tracing

__all__ = [
    "ACCESS",
    "BUCKETS",
    "CONTEXT_FIELDS",
    "LOGGER",
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
