"""gRPC interceptors of the mesh, one concern each.

Client side: :class:`ResilienceInterceptor` (runs each call's plan: deadline, rate limit, bulkhead,
breaker, pick, retries, fallback), run by an :class:`InterceptedChannel` (gRPC's interceptor
contract without ``grpc.intercept_channel``'s per-call wrappers); it runs each attempt through
:class:`AttemptTracer` (a span and metrics per attempt), then the balanced channel (a channel to
the instance the plan chose). Server side, outermost first:
:class:`ServerContext` (caller's deadline, refuse expired calls), :class:`ServerTracing`,
:class:`ServerMetrics` (with ``x-served-by``), :class:`ServerIdentity` (who may call),
:class:`FaultInjector`.
"""

from ._wrap import WrappedHandlers
from .client_resilience import ResilienceInterceptor
from .client_tracing import AttemptTracer
from .faults import FaultInjector, Faults, NoWorkerInTime, WorkerLimit
from .intercepted_channel import CallDetails, InterceptedChannel
from .server_context import ServerContext
from .server_identity import ServerIdentity
from .server_metrics import ServerMetrics
from .server_tracing import ServerTracing

__all__ = [
    "AttemptTracer",
    "CallDetails",
    "FaultInjector",
    "Faults",
    "InterceptedChannel",
    "NoWorkerInTime",
    "ResilienceInterceptor",
    "ServerContext",
    "ServerIdentity",
    "ServerMetrics",
    "ServerTracing",
    "WorkerLimit",
    "WrappedHandlers",
]
