"""Releases on the real mesh (灰度发布 canary release, 蓝绿部署 blue-green deployment), one call each
for notebook 06.

- :func:`blue_green`: two full sets of replicas, "blue" (v1) and "green" (v2), under steady load;
  the callers' release routing switches from blue to green, then back (the rollback) — all at
  once, through the config center, and without a failed call.
- :func:`canary_rollout`: a new version takes a growing share of calls in steps; after each step
  :func:`canary_analysis` compares the canary's error rate with the stable version's, from the
  servers' own metrics (as a canary controller reads Prometheus), and promotes or rolls back.
- :func:`versions_served`: which version answered each of a list of requests (to see a sticky
  canary keep each user on one version).

Both start their own mesh, drive it with the closed-loop load generator for a bounded time, stop
it, and return an :class:`~mesh.experiments.Experiment` whose ``versions`` map each instance to
its version, so every record says which version served it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._mesh import Mesh
from .experiments import HELLO, Experiment, _at
from .load import closed_loop
from .traffic import burst


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
               users: int = 4, seed: int = 0) -> Experiment:
    """Switch a steady load from blue (v1) to green (v2) at ``switch_at`` and back at ``rollback_at``."""
    if not 0 < switch_at < rollback_at < duration:
        raise ValueError("need 0 < switch_at < rollback_at < duration")
    with Mesh(name="blue-green", seed=seed) as mesh:
        mesh.add_service("greeter", replicas, version="v1")
        mesh.add_service("greeter", replicas, version="v2")
        mesh.wait_until_passing()
        mesh.set_policy("greeter", release_version="v1")
        experiment = Experiment("blue-green", versions=_versions(mesh, "greeter"))
        timers = [_at(switch_at, lambda: mesh.set_policy("greeter", release_version="v2")),
                  _at(rollback_at, lambda: mesh.set_policy("greeter", release_version="v1"))]
        run = closed_loop(mesh.client("greeter").SayHello, HELLO, users=users, duration=duration,
                          rng=np.random.default_rng(seed))
        experiment.runs["blue-green"] = run.wait()
        for timer in timers:
            timer.join()
        experiment.marks["blue-green"] = [(switch_at, "switch to green (v2)"),
                                          (rollback_at, "roll back to blue")]
    return experiment


def canary_rollout(steps: Sequence[float] = (5, 25, 50, 100), step_duration: float = 1.0,
                   canary_faults: dict[str, Any] | None = None, stable_replicas: int = 3,
                   canary_replicas: int = 1, max_increase: float = 2.0, min_calls: int = 20,
                   users: int = 4, sticky: bool = False, seed: int = 0) -> Experiment:
    """Roll v2 out in ``steps`` (percent of calls), judging each step; stop at the first rollback.

    ``canary_faults`` are injected into every v2 replica (e.g. ``{"abort_code": "INTERNAL",
    "abort_percent": 20}``: a release with a bug). After the last step passes, v2 is pinned
    (the release is complete); after a rollback — or a step in which the canary served fewer than
    ``min_calls`` calls, too few to judge — half a step more shows the calls back on v1.
    Each step is one run of the experiment; its notes hold the analysis.
    """
    if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
        raise ValueError("steps must be rising percentages in (0, 100]")
    with Mesh(name="canary", seed=seed) as mesh:
        mesh.add_service("greeter", stable_replicas, version="v1")
        canaries = mesh.add_service("greeter", canary_replicas, version="v2")
        mesh.wait_until_passing()
        for instance in canaries:
            if canary_faults:
                mesh.inject(instance, **canary_faults)
        experiment = Experiment("canary", versions=_versions(mesh, "greeter"))
        client = mesh.client("greeter").SayHello
        rng = np.random.default_rng(seed)
        elapsed = 0.0
        for percent in tqdm(steps, desc="canary steps"):
            mesh.set_policy("greeter", canary_version="v2", canary_percent=percent, canary_sticky=sticky)
            mesh.metrics.clear()
            run = closed_loop(client, HELLO, users=users, duration=step_duration, rng=rng)
            label = f"{percent:g}%"
            experiment.runs[label] = [dataclasses.replace(r, start=r.start + elapsed) for r in run.wait()]
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


def versions_served(mesh: Mesh, method, requests: Iterable[Any], timeout: float = 2.0) -> list[str]:
    """Call ``method`` once per request; return the version that served each ("" if none did)."""
    served = []
    for request in requests:
        (record,) = burst(method, request, calls=1, timeout=timeout)
        served.append(mesh.instance(record.served_by).version if record.served_by else "")
    return served


def _versions(mesh: Mesh, service: str) -> dict[str, str]:
    return {instance.id: instance.version for instance in mesh.instances(service)}
