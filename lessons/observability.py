"""Lesson 10 (监控, 日志, 链路追踪: monitoring, logs and tracing): find the cause of a latency
regression on the real demo shop from the three signals the mesh emits.

:func:`regression_run` runs the shop under steady load and, half-way, slows one service a little
— which one, the run keeps to itself (``culprit``) until the learner has found it. It keeps three
Prometheus scrapes (start, the moment of the change, end: :mod:`mesh.telemetry.prometheus`), every traced
request, and every log line (:mod:`mesh.telemetry.logs`).

- **Metrics**: :func:`red` turns two scrapes into Rate, Errors and Duration per caller -> callee
  edge, the latency percentiles estimated from histogram buckets as PromQL's
  ``histogram_quantile`` does; :func:`plot_red` draws a percentile per edge before and after.
- **Traces**: a waterfall (``lessons.charts.plot_trace``) shows where a request's time went; a
  service's *self time* — its own time, its children's taken out — separates the service that got
  slower from the callers that only waited (exercise 10 computes it over many requests).
- **Logs**: :func:`trace_logs` gives the lines of one request, from every service, by trace id.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from mesh import Mesh, SteadyLoad
from mesh.services import shop_topology
from mesh.telemetry.tracing import CallNode

from .experiment import CHECKOUT, HOME

__all__ = ["SUSPECTS", "RegressionRun", "plot_red", "red", "regression_run", "trace_logs"]

#: The services a regression may hide in (each is a leaf or an inner service of a call chain).
SUSPECTS = ("orders", "inventory", "payments", "fraud", "recommendations")
Request = Sequence[CallNode]


@dataclass
class RegressionRun:
    """What a regression run left behind: scrapes, requests before and after the change, logs."""

    scrapes: dict[str, str]  # "start", "change", "end" -> the exposition text at that moment
    seconds: dict[str, float]  # "before", "after" -> the length of each window
    before: list[Request]
    after: list[Request]
    logs: list[dict[str, Any]]
    culprit: str = field(repr=False)  # the service that was slowed: no peeking


def regression_run(culprit: str | None = None, delay: float = 0.02, duration: float = 6.0,
                   work_ms: dict[str, float] | None = None, seed: int = 0) -> RegressionRun:
    """Run the shop (one replica each) under checkouts and home pages for ``duration`` s; at half
    time add ``delay`` s to every call of ``culprit`` (by default one of :data:`SUSPECTS` chosen
    by ``seed``). ``work_ms`` sets services' own work per call (how slow they are to begin with)."""
    rng = np.random.default_rng(seed)
    culprit = culprit or str(rng.choice(SUSPECTS))
    if culprit not in SUSPECTS:
        raise ValueError(f"culprit must be one of {SUSPECTS}, got {culprit!r}")
    with Mesh(shop_topology(1), name="observability", seed=seed) as mesh:
        mesh.wait_until_passing()
        for service, ms in (work_ms or {}).items():
            mesh.config(service).set("work_ms", ms)
        frontend = mesh.client("frontend")
        scrapes = {"start": mesh.metrics.prometheus.exposition()}
        loads = [SteadyLoad(frontend.Checkout, CHECKOUT, 20.0, np.random.default_rng(seed)),
                 SteadyLoad(frontend.Home, HOME, 10.0, np.random.default_rng(seed + 1))]
        began = time.monotonic()
        time.sleep(duration / 2)
        scrapes["change"] = mesh.metrics.prometheus.exposition()
        changed_at, changed = time.time(), time.monotonic()
        mesh.inject(f"{culprit}-1", delay=delay)
        time.sleep(duration / 2)
        for load in loads:
            load.stop(wait=True)
        scrapes["end"] = mesh.metrics.prometheus.exposition()
        ended = time.monotonic()
        requests = mesh.tracing.requests()
        logs = mesh.logs.records()
    before = [r for r in requests if r[-1].start + r[-1].duration < changed_at]
    after = [r for r in requests if r[0].start > changed_at + 0.5]  # settled: no call in flight at the change
    return RegressionRun(scrapes, {"before": changed - began, "after": ended - changed}, before, after, logs,
                         culprit)


def red(earlier: str, later: str, seconds: float) -> list[dict[str, Any]]:
    """Return Rate (calls/s), Errors (%) and Duration (p50, p99 in ms) per caller -> callee edge
    over the ``seconds`` between two scrapes of the mesh's metrics."""
    first, second = _edge_samples(earlier), _edge_samples(later)
    rows = []
    for edge in sorted(second):
        calls = {code: n - first.get(edge, {}).get("codes", {}).get(code, 0)
                 for code, n in second[edge]["codes"].items()}
        total = sum(calls.values())
        if total <= 0:
            continue
        buckets = sorted((le, n - first.get(edge, {}).get("buckets", {}).get(le, 0))
                         for le, n in second[edge]["buckets"].items())
        rows.append({"caller": edge[0], "callee": edge[1], "calls_per_s": round(total / seconds, 1),
                     "error_pct": round(100 * (total - calls.get("OK", 0)) / total, 1),
                     "p50_ms": _quantile(0.5, buckets), "p99_ms": _quantile(0.99, buckets)})
    return rows


def _edge_samples(text: str) -> dict[tuple[str, str], dict[str, dict]]:
    edges: dict[tuple[str, str], dict[str, dict]] = defaultdict(lambda: {"codes": {}, "buckets": {}})
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "mesh_client_requests_total":
                codes = edges[(labels["caller"], labels["callee"])]["codes"]
                codes[labels["code"]] = codes.get(labels["code"], 0) + sample.value
            elif sample.name == "mesh_client_request_duration_seconds_bucket":
                buckets = edges[(labels["caller"], labels["callee"])]["buckets"]
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0) + sample.value
    return edges


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate a quantile from cumulative histogram buckets, as ``histogram_quantile`` does:
    linear interpolation inside the bucket the rank falls in (the last finite bound if +Inf)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return round(lower_bound * 1e3, 1)
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return round((lower_bound + (bound - lower_bound) * share) * 1e3, 1)
        lower_bound, lower_count = bound, count
    return None


def plot_red(before: list[dict[str, Any]], after: list[dict[str, Any]], percentile: str = "p50", ax=None):
    """Draw each edge's ``percentile`` (``p50`` or ``p99``) before and after the change, side by
    side. The median is the default: over a few seconds, a p99 rests on a handful of calls."""
    key = f"{percentile}_ms"
    edges = [f"{r['caller']} → {r['callee']}" for r in before]
    later = {f"{r['caller']} → {r['callee']}": r for r in after}
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(edges) + 1.2), layout="constrained")
    y = np.arange(len(edges))
    ax.barh(y - 0.2, [r[key] or 0 for r in before], height=0.4, label="before", color="#90a4ae")
    ax.barh(y + 0.2, [(later.get(e) or {}).get(key) or 0 for e in edges], height=0.4, label="after",
            color="#e65100")
    ax.set_yticks(y, edges)
    ax.invert_yaxis()
    ax.set_xlabel(f"{percentile} latency of the edge (ms, from the histogram buckets)")
    ax.legend(loc="lower right")
    return ax


def trace_logs(run: RegressionRun, trace_id: str) -> list[dict[str, Any]]:
    """Return the log lines of one request, from every service, in time order (a few fields)."""
    keep = ("service", "level", "logger", "message")
    return [{k: r[k] for k in keep} for r in sorted(run.logs, key=lambda r: r["time"])
            if r["trace_id"] == trace_id]
