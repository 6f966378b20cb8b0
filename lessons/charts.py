"""Pictures several lessons share: a request's call tree, the dependency graph, load runs over time,
who answered.

Each function takes an optional matplotlib ``ax`` and returns it, so notebooks can put pictures
side by side. The load-run plots take records with ``start``, ``latency`` and ``code`` (the
mesh's :class:`mesh.workload.CallRecord`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.patches import Patch

from mesh.telemetry.tracing import CallNode
from mesh.workload.traffic import CallRecord, tally

__all__ = [
    "BREAKER_STATES",
    "STATUS_COLOURS",
    "compare_latencies",
    "plot_dependencies",
    "plot_goodput",
    "plot_run",
    "plot_spread",
    "plot_trace",
    "status_colour",
]

BREAKER_STATES = {"open": "#c62828", "half_open": "#f9a825", "closed": "#2e7d32"}


STATUS_COLOURS = {"OK": "#2e7d32", "DEADLINE_EXCEEDED": "#ef6c00", "UNAVAILABLE": "#c62828",
                  "RESOURCE_EXHAUSTED": "#6a1b9a", "SHED": "#9e9e9e"}



def status_colour(code: str) -> str:
    """Return the colour a status code is drawn in."""
    return STATUS_COLOURS.get(code, "#ad1457")


def plot_trace(request: CallNode | Sequence[CallNode], ax=None):
    """Draw one request as a waterfall: a bar per attempt on a time axis, indented by depth and
    coloured by status; a retry says which attempt it was, a call its plan refused (breaker open,
    limited, no instance) is a diamond at the moment it was refused, a fallback's answer says so.

    ``request`` is a call tree, or the attempts of one call (``mesh.telemetry.Tracing.requests``).
    """
    roots = [request] if isinstance(request, CallNode) else list(request)
    rows = [(depth, node) for root in roots for depth, node in root.walk()]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    t0 = min(root.start for root in roots)
    for y, (_, node) in enumerate(rows):
        left = (node.start - t0) * 1e3
        colour = status_colour(node.status)
        notes = [node.instance] if node.instance else []
        if node.attempt > 1:
            notes.append(f"attempt {node.attempt}")
        if node.refused:
            notes.append(f"refused: {node.refused}")
            ax.plot(left, y, marker="D", color=colour, markersize=8)
        else:
            ax.barh(y, max(node.duration * 1e3, 0.05), left=left, color=colour, height=0.6,
                    hatch="//" if node.attempt > 1 else None, edgecolor="white")
        if node.fallback:
            notes.append(f"fallback: {node.fallback}")
        ax.text(left + node.duration * 1e3, y, "  " + ", ".join(notes), va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{'  ' * d}{n.service}.{n.method}" for d, n in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds since the request started")
    last = roots[-1]
    retried = f", {len(roots)} attempts" if len(roots) > 1 else ""
    ax.set_title(f"trace {last.trace_id[:8]}: {last.service}.{last.method} ({last.status}{retried})")
    return ax


def plot_dependencies(graph: nx.DiGraph, ax=None):
    """Draw services and calls; an edge's width follows its calls, its colour its error share."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    layers: dict[str, int] = {}
    for node in nx.topological_sort(graph) if nx.is_directed_acyclic_graph(graph) else graph.nodes:
        layers[node] = max((layers[p] + 1 for p in graph.predecessors(node) if p in layers), default=0)
    nx.set_node_attributes(graph, layers, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer")
    calls = np.array([d["calls"] for *_, d in graph.edges(data=True)] or [1])
    widths = 1 + 4 * calls / calls.max()
    errors = [d["errors"] / max(d["calls"], 1) for *_, d in graph.edges(data=True)]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color="#e3f2fd", edgecolors="#1565c0", node_size=2200)
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=8)
    nx.draw_networkx_edges(graph, pos, ax=ax, width=widths, edge_color=errors, edge_cmap=plt.cm.RdYlGn_r,
                           edge_vmin=0, edge_vmax=1, node_size=2200, arrows=True)
    labels = {(a, b): f"{d['calls']}" + (f" ({d['errors']} err)" if d["errors"] else "")
              for a, b, d in graph.edges(data=True)}
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=labels, ax=ax, font_size=7)
    ax.set_title("service dependencies (from traces)")
    ax.axis("off")
    return ax


def plot_run(records: Iterable[Any], ax=None, title: str = "", marks: Sequence[tuple[float, str]] = ()):
    """Draw each request's latency at the time it started, coloured by outcome; mark events."""
    records = list(records)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2))
    for code in sorted({r.code for r in records}):
        chosen = [r for r in records if r.code == code]
        latencies = [max(r.latency * 1e3, 0.01) for r in chosen]  # shed requests took no time
        ax.scatter([r.start for r in chosen], latencies, s=6, color=status_colour(code),
                   label=f"{code} ({len(chosen)})")
    states = sorted((at, label) for at, label in marks if label in BREAKER_STATES)
    end = max((r.start + r.latency for r in records), default=0.0)
    for (at, label), (until, _) in zip(states, [*states[1:], (end, "")][: len(states)], strict=True):
        if label != "closed":
            ax.axvspan(at, until, color=BREAKER_STATES[label], alpha=0.18, linewidth=0)
    for at, label in marks:
        if label not in BREAKER_STATES:
            ax.axvline(at, color="#424242", linestyle="--", linewidth=1)
            ax.text(at, ax.get_ylim()[1], f" {label}", va="top", fontsize=8)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    for state, colour in BREAKER_STATES.items():
        if state != "closed" and any(label == state for _, label in states):
            handles.append(Patch(color=colour, alpha=0.18))
            labels.append(f"breaker {state}")
    ax.legend(handles, labels, loc="upper right", fontsize=8, markerscale=2)
    ax.set_title(title)
    return ax


def plot_goodput(records: Iterable[Any], bucket: float = 0.25, ax=None, title: str = ""):
    """Draw requests per second sent and answered OK, in time buckets."""
    records = list(records)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.8))
    end = max((r.start for r in records), default=0.0) + bucket
    edges = np.arange(0, end + bucket, bucket)
    sent, _ = np.histogram([r.start for r in records if r.code != "SHED"], bins=edges)
    good, _ = np.histogram([r.start for r in records if r.code == "OK"], bins=edges)
    ax.step(edges[:-1], sent / bucket, where="post", label="sent", color="#1565c0")
    ax.step(edges[:-1], good / bucket, where="post", label="answered OK (goodput)", color="#2e7d32")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("requests / s")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title)
    return ax


def compare_latencies(runs: dict[str, Iterable[Any]], ax=None, title: str = "latency percentiles"):
    """Draw p50/p90/p99 of OK requests for several runs side by side (one group per run)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    names = list(runs)
    width = 0.27
    for i, q in enumerate((50, 90, 99)):
        values = []
        for name in names:
            ok = [r.latency * 1e3 for r in runs[name] if r.code == "OK"]
            values.append(np.percentile(ok, q) if ok else np.nan)
        bars = ax.bar(np.arange(len(names)) + (i - 1) * width, values, width, label=f"p{q}")
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return ax



def plot_spread(calls: Iterable[CallRecord] | Counter, instances: Sequence[str] = (),
                ax=None, title: str = "Which replica answered"):
    """Draw a bar per replica (calls it served) and a red bar per error code."""
    counts = calls if isinstance(calls, Counter) else tally(calls)
    names = list(instances) or sorted(k for k in counts if "-" in k)
    errors = sorted(k for k in counts if k not in names and k.isupper())
    labels = names + errors
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    colours = ["#1565c0"] * len(names) + ["#c62828"] * len(errors)
    bars = ax.bar(labels, [counts.get(k, 0) for k in labels], color=colours)
    ax.bar_label(bars)
    ax.set_ylabel("calls")
    ax.set_title(title)
    ax.margins(y=0.15)
    return ax

