"""Plots of what the mesh recorded: call trees, the dependency graph, load runs over time.

Each function takes an optional matplotlib ``ax`` and returns it, so notebooks can put pictures
side by side. The load-run plots take records with ``start``, ``latency`` and ``code`` (the
mesh's :class:`mesh.load.LoadRecord` and the simulator's records alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.patches import Patch

from .tracing import CallNode

BREAKER_STATES = {"open": "#c62828", "half_open": "#f9a825", "closed": "#2e7d32"}
STATUS_COLOURS = {"OK": "#2e7d32", "DEADLINE_EXCEEDED": "#ef6c00", "UNAVAILABLE": "#c62828",
                  "RESOURCE_EXHAUSTED": "#6a1b9a", "SHED": "#9e9e9e"}


def _colour(code: str) -> str:
    return STATUS_COLOURS.get(code, "#ad1457")


def plot_trace(root: CallNode, ax=None):
    """Draw one request's call tree as a waterfall: a bar per attempt, indented by depth."""
    rows = list(root.walk())
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1))
    t0 = root.start
    for y, (_, node) in enumerate(rows):
        left = (node.start - t0) * 1e3
        ax.barh(y, node.duration * 1e3, left=left, color=_colour(node.status), height=0.6)
        retry = f"  attempt {node.attempt}" if node.attempt > 1 else ""
        ax.text(left + node.duration * 1e3, y, f" {node.instance}{retry}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{'  ' * d}{n.service}.{n.method}" for d, n in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds since the request started")
    ax.set_title(f"trace {root.trace_id[:8]}: {root.service}.{root.method} ({root.status})")
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
        ax.scatter([r.start for r in chosen], latencies, s=6, color=_colour(code),
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


def plot_experiment(experiment, runs: Sequence[str] | None = None):
    """Draw each run of an :class:`mesh.experiments.Experiment` on its own timeline, same scales."""
    labels = list(runs or experiment.runs)
    figure, axes = plt.subplots(len(labels), 1, figsize=(9, 2.6 * len(labels)), sharex=True, sharey=True,
                                squeeze=False)
    for ax, label in zip(axes[:, 0], labels, strict=True):
        plot_run(experiment.runs[label], ax=ax, title=label, marks=experiment.marks.get(label, ()))
    figure.suptitle(experiment.name)
    figure.tight_layout()
    return figure


def plot_balancers(experiment):
    """Latency percentiles and each replica's share of the calls, per balancer."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
    compare_latencies(experiment.runs, ax=left, title="latency of OK calls")
    left.tick_params(axis="x", labelrotation=30)
    names = list(experiment.runs)
    replicas = sorted({k for n in names for k in experiment.notes[n]["share"]})
    bottom = np.zeros(len(names))
    for replica in replicas:
        counts = np.array([experiment.notes[n]["share"].get(replica, 0) for n in names], dtype=float)
        totals = np.array([max(sum(experiment.notes[n]["share"].values()), 1) for n in names])
        right.bar(names, counts / totals, bottom=bottom, label=replica)
        bottom += counts / totals
    for x, name in enumerate(names):
        right.text(x, 1.02, f"{experiment.notes[name]['calls_per_s']}/s", ha="center", fontsize=8)
    right.set_ylim(0, 1.12)
    right.set_ylabel("share of calls")
    right.tick_params(axis="x", labelrotation=30)
    right.legend(fontsize=8, loc="lower right")
    right.set_title("who served the calls (and calls per second)")
    figure.tight_layout()
    return figure


def plot_formats(rows: Sequence[dict[str, Any]], axes=None):
    """Draw protobuf against JSON per message: bytes on the wire, and encode + decode time
    (rows from :func:`mesh.wire.compare_formats`)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 0.7 * len(rows) + 1.6), sharey=True,
                               layout="constrained")
    labels = [r["message"] for r in rows]
    y = np.arange(len(rows))
    size_ax, time_ax = axes
    size_ax.barh(y - 0.2, [r["protobuf_bytes"] for r in rows], height=0.4, label="protobuf", color="#1565c0")
    size_ax.barh(y + 0.2, [r["json_bytes"] for r in rows], height=0.4, label="JSON", color="#ef6c00")
    size_ax.set_yticks(y, labels)
    size_ax.set_xlabel("bytes on the wire")
    size_ax.set_title("size", fontsize=10)
    size_ax.legend(loc="lower right")
    ways = [("protobuf", "protobuf", "#1565c0"), ("json", "JSON (json_format)", "#ef6c00"),
            ("json_stdlib", "JSON (json module, from a dict)", "#ffb74d")]
    for offset, (key, label, colour) in zip((-0.27, 0, 0.27), ways, strict=True):
        total = [r[f"{key}_encode_us"] + r[f"{key}_decode_us"] for r in rows]
        time_ax.barh(y + offset, total, height=0.27, label=label, color=colour)
    time_ax.set_xscale("log")
    time_ax.set_xlabel("encode + decode, µs per message (log scale)")
    time_ax.set_title("time", fontsize=10)
    time_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return axes


def plot_conversation(rows: Sequence[dict[str, Any]], ax=None):
    """Draw a bidirectional stream as a timeline: requests sent above, answers received below
    (rows from :func:`mesh.rpc.converse`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.4))
    ax.set_title("a bidirectional stream: each answer comes while the client is still sending", fontsize=10)
    for row in rows:
        up = row["direction"] == "sent"
        seq = getattr(row["message"], "seq", "")
        ax.plot([row["t"] * 1e3] * 2, [0, 1 if up else -1], color="#1565c0" if up else "#2e7d32")
        label = f"{'sent' if up else 'got'} {seq}"
        ax.text(row["t"] * 1e3, 1.08 if up else -1.25, label, ha="center", fontsize=8)
    ax.axhline(0, color="#9e9e9e", linewidth=0.8)
    ax.set_ylim(-1.6, 1.5)
    ax.set_yticks([])
    ax.set_xlabel("ms since the call started")
    return ax


VERSION_COLOURS = {"v1": "#1565c0", "v2": "#2e7d32", "": "#9e9e9e"}


def plot_release(experiment, bucket: float = 0.1, axes=None):
    """Draw a release over time: which version served each share of the calls (top), and the
    failed calls by version (bottom), with the switches and decisions marked.

    Takes a release experiment (:mod:`mesh.releases`): its runs in time order, ``versions``
    mapping each instance to its version.
    """
    records = [r for run in experiment.runs.values() for r in run]
    versions = sorted({experiment.versions.get(r.served_by, "") for r in records})
    end = max((r.start for r in records), default=0.0) + bucket
    edges = np.arange(0.0, end + bucket, bucket)
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, height_ratios=(3, 1.3),
                               layout="constrained")
    share_ax, error_ax = axes
    totals = np.histogram([r.start for r in records], edges)[0].astype(float)
    bottom = np.zeros(len(edges) - 1)
    for version in versions:
        starts = [r.start for r in records if experiment.versions.get(r.served_by, "") == version]
        counts = np.histogram(starts, edges)[0]
        share = np.divide(counts, totals, out=np.zeros_like(totals), where=totals > 0)
        share_ax.bar(edges[:-1], share, width=bucket, bottom=bottom, align="edge",
                     color=VERSION_COLOURS.get(version, "#6a1b9a"), label=version or "no answer")
        failed = [r.start for r in records
                  if not r.ok and experiment.versions.get(r.served_by, "") == version]
        if failed:
            error_ax.hist(failed, edges, color=VERSION_COLOURS.get(version, "#6a1b9a"), label=version)
        bottom += share
    share_ax.set_ylabel("share of calls")
    share_ax.set_ylim(0, 1)
    share_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    error_ax.set_ylabel("failed calls")
    error_ax.set_xlabel("seconds")
    for marks in experiment.marks.values():
        for t, label in marks:
            for ax in axes:
                ax.axvline(t, color="black", linewidth=0.8, linestyle="--")
            share_ax.text(t, 1.02, label, fontsize=8, ha="right", rotation=0)
    return axes


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


def plot_bus(runs: Sequence[Any], axes=None):
    """Draw bus runs (:class:`mesh.bus.BusRun`) side by side: the subscription's backlog over
    time (top) and each handling's lag from publish to consumer (bottom), a second handling of
    the same message in red, a skipped duplicate in grey."""
    if axes is None:
        _, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 4.6), sharey="row",
                               squeeze=False, layout="constrained")
    for column, run in enumerate(runs):
        backlog_ax, lag_ax = axes[0][column], axes[1][column]
        if run.backlog:
            times, sizes = zip(*run.backlog, strict=True)
            backlog_ax.step(times, sizes, where="post", color="#1565c0")
        backlog_ax.set_title(run.label, fontsize=9)
        seen: set[str] = set()
        colours, xs, ys = [], [], []
        for handled in run.handled:
            again = handled.message_id in seen and not handled.skipped
            seen.add(handled.message_id)
            colours.append("#9e9e9e" if handled.skipped else "#c62828" if again else "#2e7d32")
            xs.append(handled.handled_at - run.start)
            ys.append(handled.lag * 1e3)
        lag_ax.scatter(xs, ys, c=colours, s=6)
        lag_ax.set_xlabel("seconds")
    axes[0][0].set_ylabel("backlog (messages)")
    axes[1][0].set_ylabel("publish → handled, ms")
    kinds = [Patch(color="#2e7d32", label="handled"), Patch(color="#c62828", label="handled again"),
             Patch(color="#9e9e9e", label="seen: skipped")]
    axes[1][-1].legend(handles=kinds, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return axes
