"""Metrics (监控) of the mesh: per instance and per caller -> callee edge, as flat records.

Servers record every call they serve (instance, method, status, latency); clients record every
attempt on every edge; breakers record their state changes with timestamps. :meth:`Metrics.summary`
aggregates to one row per instance or per edge with requests, errors by status and latency
percentiles (p50/p90/p99); the raw rows (one per call) feed plots. Rows are kept up to a bound.
Every record also updates the mesh's Prometheus metrics (``prometheus``: :mod:`mesh.telemetry.prometheus`),
which a scrape reads in the exposition format.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any

import numpy as np

from ..policies import Transition
from .prometheus import PrometheusMetrics

MAX_ROWS = 200_000


class Metrics:
    """Thread-safe collection of what the mesh's servers and clients saw."""

    def __init__(self, clock=time.monotonic, max_rows: int = MAX_ROWS):
        self._clock = clock
        self._lock = threading.Lock()
        self.server_rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
        self.client_rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
        self.transitions: list[dict[str, Any]] = []
        self._in_flight: Counter = Counter()
        self.prometheus = PrometheusMetrics()

    # -- recording -------------------------------------------------------------------------------
    def server_started(self, instance: str) -> None:
        with self._lock:
            self._in_flight[instance] += 1
        self.prometheus.in_flight.labels(instance).inc()

    def server_finished(self, instance: str, service: str, method: str, code: str, latency: float) -> None:
        row = {"time": self._clock(), "instance": instance, "service": service, "method": method,
               "code": code, "latency": latency}
        with self._lock:
            self._in_flight[instance] -= 1
            self.server_rows.append(row)
        prometheus = self.prometheus
        prometheus.in_flight.labels(instance).dec()
        prometheus.server_requests.labels(service, instance, method, code).inc()
        prometheus.server_duration.labels(service, method).observe(latency)

    def client_attempt(self, caller: str, callee: str, method: str, code: str, latency: float,
                       attempt: int, instance: str) -> None:
        row = {"time": self._clock(), "caller": caller, "callee": callee, "method": method,
               "code": code, "latency": latency, "attempt": attempt, "instance": instance}
        with self._lock:
            self.client_rows.append(row)
        self.prometheus.client_requests.labels(caller, callee, method, code).inc()
        self.prometheus.client_duration.labels(caller, callee, method).observe(latency)

    def breaker_transition(self, caller: str, event: Transition) -> None:
        with self._lock:
            self.transitions.append({"time": event.time, "caller": caller, "breaker": event.breaker,
                                     "from": event.source.value, "to": event.target.value})
        self.prometheus.breaker_transitions.labels(caller, event.breaker, event.target.value).inc()

    # -- reading ---------------------------------------------------------------------------------
    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._in_flight.items() if v}

    def recent(self, seconds: float, kind: str = "server") -> list[dict[str, Any]]:
        """Return the ``server`` (or ``client``) rows of the last ``seconds``, oldest first."""
        rows = self.server_rows if kind == "server" else self.client_rows
        since = self._clock() - seconds
        found = []
        with self._lock:
            for row in reversed(rows):
                if row["time"] < since:
                    break
                found.append(row)
        return found[::-1]

    def clear(self) -> None:
        with self._lock:
            self.server_rows.clear()
            self.client_rows.clear()
            self.transitions.clear()

    def summary(self, by: str = "instance") -> list[dict[str, Any]]:
        """Return one row per instance (``by="instance"``) or per edge (``by="edge"``)."""
        with self._lock:
            rows = list(self.server_rows if by == "instance" else self.client_rows)
            in_flight = dict(self._in_flight)
        groups: dict[Any, list[dict]] = defaultdict(list)
        for row in rows:
            key = row["instance"] if by == "instance" else (row["caller"], row["callee"])
            groups[key].append(row)
        out = []
        for key, group in sorted(groups.items()):
            latencies = np.array([r["latency"] for r in group])
            codes = Counter(r["code"] for r in group)
            if by == "instance":
                entry: dict[str, Any] = {"instance": key}
            else:
                entry = {"caller": key[0], "callee": key[1]}
            entry.update({
                "requests": len(group),
                "errors": len(group) - codes.get("OK", 0),
                "by_status": dict(codes),
                "p50": float(np.percentile(latencies, 50)),
                "p90": float(np.percentile(latencies, 90)),
                "p99": float(np.percentile(latencies, 99)),
            })
            if by == "instance":
                entry["in_flight"] = in_flight.get(key, 0)
            out.append(entry)
        return out
