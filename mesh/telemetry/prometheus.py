"""The mesh's metrics in Prometheus's exposition format (prometheus_client), RED per edge.

Every call a server serves and every attempt a client makes updates real prometheus_client
counters and histograms in a registry of the mesh's own (not the process-wide default, so that two
meshes in one kernel never mix), as an instrumented service would:

- ``mesh_client_requests_total{caller, callee, method, code}`` and
  ``mesh_client_request_duration_seconds{caller, callee, method}``: Rate, Errors and Duration of
  every caller -> callee edge, attempt by attempt (what the caller saw);
- ``mesh_server_requests_total{service, instance, method, code}`` and
  ``mesh_server_request_duration_seconds{service, method}``: the same from the servers' side;
- ``mesh_server_in_flight{instance}``: calls being served now (saturation);
- ``mesh_breaker_transitions_total{caller, breaker, to}``: circuit breakers changing state.

:meth:`PrometheusMetrics.exposition` returns the text a scrape gets; :meth:`PrometheusMetrics.serve`
starts a ``/metrics`` endpoint on loopback for a real Prometheus (or ``curl``) to scrape. Counters
only grow — ``Metrics.clear()`` empties the rows the lessons plot, never these — as Prometheus
expects; rates come from differences between scrapes.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

__all__ = ["BUCKETS", "PrometheusMetrics"]

#: Histogram buckets in seconds: from a loopback call (a millisecond) to the default deadline.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.client_requests = Counter("mesh_client_requests", "Attempts a caller made on an edge, by status",
                                       ["caller", "callee", "method", "code"], registry=self.registry)
        self.client_duration = Histogram("mesh_client_request_duration_seconds",
                                         "Latency of a caller's attempts on an edge",
                                         ["caller", "callee", "method"], buckets=BUCKETS,
                                         registry=self.registry)
        self.server_requests = Counter("mesh_server_requests", "Calls an instance served, by status",
                                       ["service", "instance", "method", "code"], registry=self.registry)
        self.server_duration = Histogram("mesh_server_request_duration_seconds", "Latency of served calls",
                                         ["service", "method"], buckets=BUCKETS, registry=self.registry)
        self.in_flight = Gauge("mesh_server_in_flight", "Calls an instance is serving now", ["instance"],
                               registry=self.registry)
        self.breaker_transitions = Counter("mesh_breaker_transitions", "Circuit breaker state changes",
                                           ["caller", "breaker", "to"], registry=self.registry)
        self._server = None
        self._lock = threading.Lock()

    def exposition(self) -> str:
        """Return what a Prometheus scrape of the mesh gets (text exposition format 0.0.4)."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int = 0) -> str:
        """Serve ``/metrics`` on 127.0.0.1 (a free port by default); return its URL. Idempotent."""
        with self._lock:
            if self._server is None:
                self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
            return f"http://127.0.0.1:{self._server.server_port}/metrics"

    def stop(self) -> None:
        """Stop the ``/metrics`` endpoint, if it was started."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
