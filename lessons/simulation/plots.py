"""Pictures of simulation experiments: load sweeps, amplification, timelines, queues."""

from __future__ import annotations

import itertools
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from mesh.policies import service_of


def plot_balancer_sweep(experiment):
    """p99 latency against load for each balancer, and the slow replicas' share of the calls."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    by_balancer: dict[str, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in experiment.rows:
        by_balancer[row["balancer"]][row["load"]].append(row)
    for balancer, loads in by_balancer.items():
        xs = sorted(loads)
        left.plot(xs, [1e3 * np.mean([r["p99"] for r in loads[x]]) for x in xs], marker="o", label=balancer)
        right.plot(xs, [np.mean([r["slow_share"] for r in loads[x]]) for x in xs], marker="o", label=balancer)
    left.set_yscale("log")
    left.set_xlabel("load (share of total capacity)")
    left.set_ylabel("p99 latency (ms)")
    left.set_title("tail latency as load grows")
    left.legend(fontsize=8)
    right.set_xlabel("load (share of total capacity)")
    right.set_ylabel("share of completed calls")
    right.set_title("calls the slow replicas completed")
    figure.tight_layout()
    return figure


def plot_amplification(experiment, ax=None):
    """Calls per request reaching each tier, per policy (a retry storm)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    policies = list(dict.fromkeys(r["policy"] for r in experiment.rows))
    tiers = list(dict.fromkeys(r["tier"] for r in experiment.rows))
    width = 0.8 / len(policies)
    for i, policy in enumerate(policies):
        values = [
            next(r["calls_per_request"] for r in experiment.rows if r["policy"] == policy and r["tier"] == t)
            for t in tiers
        ]
        bars = ax.bar(
            np.arange(len(tiers)) + (i - (len(policies) - 1) / 2) * width, values, width, label=policy
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_ylabel("calls per request")
    ax.set_title(experiment.name)
    ax.legend(fontsize=8)
    return ax


def _spans_a_decade(ax) -> bool:
    """Whether the positive values drawn on ``ax`` differ by 10x or more (else a log axis has no tick)."""
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [[]])
    values = values[np.isfinite(values) & (values > 0)]
    return len(values) > 0 and values.max() >= 10 * values.min()


def plot_timelines(experiment, metric: str = "goodput", bucket: float = 1.0, ax=None):
    """One line per run of ``metric`` (goodput, sent or mean_latency) over time, with the marks."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.4))
    # Runs often coincide (before the trigger, or when a setting changes little): different dashes
    # and widths keep every run visible where it lies on another.
    styles = [("-", 3.0), ("--", 2.2), (":", 2.2), ("-.", 1.6), ((0, (5, 1)), 1.2)]
    for (label, results), (dashes, width) in zip(experiment.runs.items(), itertools.cycle(styles),
                                                 strict=False):
        line = results.timeline(bucket)
        values = line[metric] * (1e3 if metric == "mean_latency" else 1.0)
        ax.plot(line["time"], values, label=label, drawstyle="steps-post", linestyle=dashes, linewidth=width)
    log = metric == "mean_latency" and _spans_a_decade(ax)  # before the marks add lines of their own
    for n, (at, label) in enumerate(experiment.marks):
        ax.axvline(at, color="#424242", linestyle="--", linewidth=1)
        # staggered, so that marks close together do not write over each other
        ax.text(at, 0.97 - 0.09 * (n % 2), f" {label}", va="top", fontsize=8,
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel(
        {"goodput": "OK requests / s", "sent": "requests / s", "mean_latency": "mean latency (ms)"}[metric]
    )
    if log:
        # log, ticked at 1-2-5 steps: a slowdown of 100x and one of 2x are both readable
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(experiment.name)
    ax.legend(fontsize=8)
    return ax


def plot_queues(results, ax=None, title: str = "queued requests per service"):
    """Total queue length of each service's instances over time (needs ``sample_every``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    per_service: dict[str, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for sample in results.series:
        per_service[service_of(sample.instance)][sample.time] += sample.queue
    for service, points in per_service.items():
        times = sorted(points)
        ax.plot(times, [points[t] for t in times], label=service)
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel("queued")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_twin(comparison, ax=None):
    """Latency distributions of the same scenario on the mesh and in the model."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    bins = (
        np.linspace(
            0, np.percentile(np.concatenate([comparison.mesh_latencies, comparison.sim_latencies]), 99.5), 40
        )
        * 1e3
    )
    ax.hist(comparison.sim_latencies * 1e3, bins=bins, density=True, alpha=0.5, label="simulation")
    ax.hist(comparison.mesh_latencies * 1e3, bins=bins, density=True, alpha=0.5, label="real mesh")
    ax.axvline(comparison.sim_mean * 1e3, color="C0")
    ax.axvline(comparison.mesh_mean * 1e3, color="C1")
    ax.set_xlabel("latency (ms)")
    ax.set_title(
        f"mesh {comparison.mesh_mean * 1e3:.1f} ms vs model {comparison.sim_mean * 1e3:.1f} ms "
        f"({100 * comparison.difference:+.1f}%)"
    )
    ax.legend(fontsize=8)
    return ax
