"""gRPC interceptors of the mesh, one concern each.

Client side: :class:`ResilienceInterceptor` (deadline, rate limit, bulkhead, breaker, retries,
fallback), which runs each attempt through :class:`AttemptTracer` (a span and metrics per attempt),
then the balanced channel (balancer and outlier detection). Server side, outermost first:
:class:`ServerContext` (caller's deadline, refuse expired calls), :class:`ServerTracing`,
:class:`ServerMetrics` (with ``x-served-by``), :class:`FaultInjector`.
"""

from .client_resilience import ResilienceInterceptor
from .client_tracing import AttemptTracer
from .faults import FaultInjector, Faults
from .server_context import ServerContext
from .server_metrics import SERVED_BY, ServerMetrics
from .server_tracing import ServerTracing

__all__ = [
    "SERVED_BY",
    "AttemptTracer",
    "FaultInjector",
    "Faults",
    "ResilienceInterceptor",
    "ServerContext",
    "ServerMetrics",
    "ServerTracing",
]
