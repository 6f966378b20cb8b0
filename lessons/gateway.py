"""Lesson 08 (API gateway): the gateway's requests over time, by how each one ended.

The dependency graph that starts at the gateway is :func:`lessons.charts.plot_dependencies`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .charts import plot_dependencies
from .display import table

__all__ = ["GATEWAY_OUTCOMES", "gateway_outcome", "plot_dependencies", "plot_gateway", "table"]


GATEWAY_OUTCOMES = {"answered": "#2e7d32", "from cache": "#81c784", "degraded": "#f9a825",
                    "rate limited": "#6a1b9a", "refused (4xx)": "#9e9e9e", "failed (5xx)": "#c62828"}


def gateway_outcome(record: dict[str, Any]) -> str:
    """Return how the gateway ended one request (a key of :data:`GATEWAY_OUTCOMES`)."""
    note, status = record["note"], record["status"]
    if note == "cache hit":
        return "from cache"
    if note.startswith("degraded"):
        return "degraded"
    if status == 429:
        return "rate limited"
    if status >= 500:
        return "failed (5xx)"
    return "refused (4xx)" if status >= 400 else "answered"


def plot_gateway(records: Sequence[dict[str, Any]], bucket: float = 0.1, ax=None, title: str = ""):
    """Draw the gateway's requests over time, stacked by how each ended (rows from
    :meth:`mesh.gateway.Gateway.records`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3), layout="constrained")
    if not records:
        return ax
    t0 = min(r["time"] for r in records)
    end = max(r["time"] for r in records) - t0 + bucket
    edges = np.arange(0.0, end + bucket, bucket)
    bottom = np.zeros(len(edges) - 1)
    for outcome, colour in GATEWAY_OUTCOMES.items():
        times = [r["time"] - t0 for r in records if gateway_outcome(r) == outcome]
        if not times:
            continue
        counts = np.histogram(times, edges)[0]
        ax.bar(edges[:-1], counts, width=bucket, bottom=bottom, align="edge", color=colour, label=outcome)
        bottom += counts
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"requests per {bucket * 1e3:g} ms")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return ax

