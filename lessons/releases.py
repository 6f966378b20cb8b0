"""Lesson 12 (releases): 灰度发布 canary release and 蓝绿部署 blue-green deployment on the real mesh,
one call each, and their picture.

- :func:`blue_green`: two full sets of replicas, "blue" (v1) and "green" (v2), under steady load;
  the callers' release routing switches from blue to green, then back (the rollback) — all at
  once, through the config center, and without a failed call.
- :func:`canary_rollout`: a new version takes a growing share of calls in steps; after each step
  :func:`canary_analysis` compares the canary's error rate with the stable version's, from the
  servers' own metrics (as a canary controller reads Prometheus), and promotes or rolls back.
- :func:`versions_served`: which version answered each of a list of requests (to see a sticky
  canary keep each user on one version).
- :func:`mirror_release`: before any user meets v2, a share of real calls is copied to it
  (traffic mirroring, :class:`mesh.Mirror`) and its errors and latency are compared with v1's;
  :func:`plot_mirror` draws the comparison.

Both start their own mesh, drive it with the closed-loop load generator for a bounded time, stop
it, and return a :class:`ReleaseExperiment` whose ``versions`` map each instance to its version, so
every record says which version served it; :func:`plot_release` draws it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from mesh import Mesh, Mirror
from mesh.workload.load import closed_loop
from mesh.workload.traffic import burst

from .experiment import HELLO, Experiment, at

__all__ = ["MirrorRun", "ReleaseExperiment", "blue_green", "canary_analysis", "canary_rollout",
           "mirror_release", "plot_mirror", "plot_release", "versions_served"]


@dataclass
class ReleaseExperiment(Experiment):
    """An experiment whose runs were served by several versions of one service."""

    versions: dict[str, str] = field(default_factory=dict)  # instance id -> version


def canary_analysis(rows: Iterable[dict[str, Any]], versions: dict[str, str], stable: str, canary: str,
                    max_increase: float = 2.0, min_calls: int = 20) -> dict[str, Any]:
    """Judge one step of a canary from server rows (``instance``, ``code``) of that step.

    Return calls and error rate (percent) per version, and ``decision``: ``rollback`` when the
    canary's error rate exceeds the stable one's by more than ``max_increase`` percentage points,
    ``promote`` when it does not, ``wait`` while the canary has served fewer than ``min_calls``.
    """
    calls = {stable: 0, canary: 0}
    errors = {stable: 0, canary: 0}
    for row in rows:
        version = versions.get(row["instance"])
        if version in calls:
            calls[version] += 1
            errors[version] += row["code"] != "OK"
    rate = {v: 100.0 * errors[v] / calls[v] if calls[v] else 0.0 for v in calls}
    if calls[canary] < min_calls:
        decision = "wait"
    elif rate[canary] - rate[stable] > max_increase:
        decision = "rollback"
    else:
        decision = "promote"
    return {"stable_calls": calls[stable], "canary_calls": calls[canary],
            "stable_error_pct": round(rate[stable], 2), "canary_error_pct": round(rate[canary], 2),
            "decision": decision}


def blue_green(replicas: int = 2, duration: float = 3.0, switch_at: float = 1.0, rollback_at: float = 2.0,
               users: int = 4, seed: int = 0, mode: str = "kernel") -> Experiment:
    """Switch a steady load from blue (v1) to green (v2) at ``switch_at`` and back at ``rollback_at``.

    The run's notes say when each switch was in force in every caller (seconds into the run): a
    call that started after that went to the new colour. ``mode="processes"`` runs every replica as
    its own OS process (see :class:`mesh.Mesh`)."""
    if not 0 < switch_at < rollback_at < duration:
        raise ValueError("need 0 < switch_at < rollback_at < duration")
    with Mesh(name="blue-green", seed=seed, mode=mode) as mesh:
        mesh.add_service("greeter", replicas, version="v1")
        mesh.add_service("greeter", replicas, version="v2")
        mesh.wait_until_passing()
        mesh.set_policy("greeter", release_version="v1")
        experiment = ReleaseExperiment("blue-green", versions=_versions(mesh, "greeter"))
        run = closed_loop(mesh.client("greeter").SayHello, HELLO, users=users, duration=duration,
                          rng=np.random.default_rng(seed))
        applied: dict[str, float] = {}  # seconds into the run at which every caller had the switch

        def switch(version: str, what: str) -> None:
            mesh.set_policy("greeter", release_version=version)
            applied[what] = round(time.perf_counter() - run.started, 4)

        timers = [at(switch_at, lambda: switch("v2", "green in force at s")),
                  at(rollback_at, lambda: switch("v1", "blue back in force at s"))]
        experiment.runs["blue-green"] = run.wait()
        for timer in timers:
            timer.join()
        experiment.notes["blue-green"] = applied
        experiment.marks["blue-green"] = [(switch_at, "switch to green (v2)"),
                                          (rollback_at, "roll back to blue")]
    return experiment


def canary_rollout(steps: Sequence[float] = (5, 25, 50, 100), step_duration: float = 1.0,
                   canary_faults: dict[str, Any] | None = None, stable_replicas: int = 3,
                   canary_replicas: int = 1, max_increase: float = 2.0, min_calls: int = 20,
                   users: int = 4, sticky: bool = False, seed: int = 0, mode: str = "kernel") -> Experiment:
    """Roll v2 out in ``steps`` (percent of calls), judging each step; stop at the first rollback.

    ``canary_faults`` are injected into every v2 replica (e.g. ``{"abort_code": "INTERNAL",
    "abort_percent": 20}``: a release with a bug). After the last step passes, v2 is pinned
    (the release is complete); after a rollback — or a step in which the canary served fewer than
    ``min_calls`` calls, too few to judge — half a step more shows the calls back on v1.
    Each step is one run of the experiment; its notes hold the analysis, made from the replicas'
    own records of the calls they served (their spans, in ``mode="processes"``).
    """
    if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
        raise ValueError("steps must be rising percentages in (0, 100]")
    with Mesh(name="canary", seed=seed, mode=mode) as mesh:
        mesh.add_service("greeter", stable_replicas, version="v1")
        canaries = mesh.add_service("greeter", canary_replicas, version="v2")
        mesh.wait_until_passing()
        for instance in canaries:
            if canary_faults:
                mesh.inject(instance, **canary_faults)
        experiment = ReleaseExperiment("canary", versions=_versions(mesh, "greeter"))
        client = mesh.client("greeter").SayHello
        rng = np.random.default_rng(seed)
        elapsed = 0.0
        for percent in tqdm(steps, desc="canary steps"):
            mesh.set_policy("greeter", canary_version="v2", canary_percent=percent, canary_sticky=sticky)
            mesh.metrics.clear()
            run = closed_loop(client, HELLO, users=users, duration=step_duration, rng=rng)
            label = f"{percent:g}%"
            experiment.runs[label] = [dataclasses.replace(r, start=r.start + elapsed) for r in run.wait()]
            mesh.settle_telemetry()
            verdict = canary_analysis(list(mesh.metrics.server_rows), experiment.versions, "v1", "v2",
                                      max_increase, min_calls)
            experiment.notes[label] = {"canary_percent": percent, **verdict}
            elapsed += step_duration
            experiment.marks.setdefault("canary", []).append((elapsed, f"{label}: {verdict['decision']}"))
            if verdict["decision"] != "promote":  # a step too small to judge promotes nothing either
                mesh.set_policy("greeter", canary_percent=0)
                after = closed_loop(client, HELLO, users=users, duration=step_duration / 2, rng=rng)
                experiment.runs["after rollback"] = [dataclasses.replace(r, start=r.start + elapsed)
                                                     for r in after.wait()]
                break
        else:
            mesh.set_policy("greeter", release_version="v2", canary_version="", canary_percent=0)
            experiment.notes[label]["decision"] = "promote: v2 pinned"
    return experiment


@dataclass
class MirrorRun:
    """A mirrored run: the comparison (:meth:`mesh.Mirror.summary`), every mirrored call's record,
    and what the callers themselves saw (``failed``: calls that failed for a caller)."""

    summary: dict[str, Any]
    records: list
    calls: int
    failed: int


def mirror_release(calls: int = 200, percent: float = 50.0, v2_faults: dict[str, Any] | None = None,
                   seed: int = 0, mode: str = "kernel") -> MirrorRun:
    """Serve ``calls`` calls from v1 (pinned) while ``percent`` of them are copied to v2, whose
    replica carries ``v2_faults`` (by default a bug: 10% INTERNAL, and 30 ms slower).
    ``mode="processes"`` runs every replica as its own OS process."""
    bug = {"abort_code": "INTERNAL", "abort_percent": 10, "delay": 0.03}
    faults = bug if v2_faults is None else v2_faults
    with Mesh(name="mirror", seed=seed, mode=mode) as mesh:
        mesh.add_service("greeter", 2, version="v1")
        (v2,) = mesh.add_service("greeter", 1, version="v2")
        mesh.wait_until_passing()
        mesh.set_policy("greeter", release_version="v1")
        if faults:
            mesh.inject(v2, **faults)
        failed = 0
        with Mirror(mesh.client("greeter").SayHello, "v2", percent, np.random.default_rng(seed)) as mirror:
            for _ in tqdm(range(calls), desc="mirrored calls"):
                try:
                    mirror(HELLO)
                except grpc.RpcError:  # counted: what a caller would have seen
                    failed += 1
    return MirrorRun(mirror.summary(), mirror.records(), calls, failed)


def plot_mirror(run: MirrorRun, axes=None):
    """Draw v1 (what callers got) against v2 (the shadow copies): latency of the calls that
    succeeded as a distribution, and the share that failed."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2), width_ratios=(2.2, 1), layout="constrained")
    latency_ax, error_ax = axes
    sides = {"v1 (primary)": [(r.primary_code, r.primary_latency) for r in run.records],
             "v2 (shadow)": [(r.shadow_code, r.shadow_latency) for r in run.records]}
    for (label, outcomes), colour in zip(sides.items(), (VERSION_COLOURS["v1"], VERSION_COLOURS["v2"]),
                                         strict=True):
        ok = np.sort([lat * 1e3 for code, lat in outcomes if code == "OK"])
        if len(ok):
            latency_ax.plot(ok, np.arange(1, len(ok) + 1) / len(ok), color=colour, label=label)
        failed = 100 * sum(code != "OK" for code, _ in outcomes) / max(len(outcomes), 1)
        error_ax.bar(label, failed, color=colour)
    latency_ax.set_xlabel("latency of the calls that succeeded (ms)")
    latency_ax.set_ylabel("share of calls at or under")
    latency_ax.legend(loc="lower right")
    error_ax.set_ylabel("failed (%)")
    error_ax.set_title(f"{run.summary['compared']} mirrored calls; callers saw {run.failed} failures",
                       fontsize=9)
    return axes


def versions_served(mesh: Mesh, method, requests: Iterable[Any], timeout: float = 2.0) -> list[str]:
    """Call ``method`` once per request; return the version that served each ("" if none did)."""
    served = []
    for request in requests:
        (record,) = burst(method, request, calls=1, timeout=timeout)
        served.append(mesh.instance(record.served_by).version if record.served_by else "")
    return served


def _versions(mesh: Mesh, service: str) -> dict[str, str]:
    return {instance.id: instance.version for instance in mesh.instances(service)}


VERSION_COLOURS = {"v1": "#1565c0", "v2": "#2e7d32", "": "#9e9e9e"}


def plot_release(experiment, bucket: float = 0.1, axes=None):
    """Draw a release over time: which version served each share of the calls (top), and the
    failed calls by version (bottom), with the switches and decisions marked.

    Takes a :class:`ReleaseExperiment`: its runs in time order, ``versions``
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

