"""Lesson 01, 6.6.1 (微服务架构): the same shop as a monolith and as
microservices, measured — what the split costs a call, what a crash takes down, what a deployment
interrupts — and where the rest of the workbench shows each advantage and cost the chapter lists.

- :func:`call_cost`: a checkout's latency when its four inner calls are method calls in one
  process (:class:`mesh.workload.monolith.Monolith`) and when each is a gRPC call across the mesh.
- :func:`crash`: under steady load, fraud's code crashes. In the monolith that is the process:
  every feature is gone. In the mesh it is fraud's instance: checkouts fail, browsing goes on.
- :func:`deploy`: a new build of payments goes out under load: the monolith restarts as a whole;
  the mesh replaces payments' replicas one at a time while the callers retry elsewhere.
- :func:`scale_out`: inventory is the bottleneck of the home page; to add capacity the monolith
  starts whole copies behind a balancer, the mesh starts inventory replicas only.
- :data:`CHAPTER_MAP`: the chapter's eleven advantages and three costs, each with the lesson where
  a learner sees it happen.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from mesh import Mesh, SteadyLoad, burst
from mesh.services import SHOP_CALLS, shop_topology
from mesh.workload.monolith import Monolith, ScaledMonolith

from .experiment import CHECKOUT, HOME, at

__all__ = ["CHAPTER_MAP", "ScaleOut", "call_cost", "crash", "deploy", "outcome_table", "plot_outcomes",
           "plot_scaling", "scale_out", "scaling_table", "what_to_operate"]

ARCHITECTURES = ("monolith", "microservices")


def _mesh(replicas: int, work_ms: float, name: str, seed: int) -> Mesh:
    mesh = Mesh(shop_topology(replicas), name=name, seed=seed)
    mesh.wait_until_passing()
    for service in SHOP_CALLS:
        mesh.config(service).set("work_ms", work_ms)
    for service in SHOP_CALLS:
        mesh.config(service).wait_for(lambda s: s.work_ms == work_ms)
    return mesh


def call_cost(calls: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Time ``calls`` checkouts (no work in any service: only the architecture's own cost) through
    the monolith and through the mesh; return p50 and p99 in ms and the gRPC calls servers
    received per checkout."""
    rows = []
    with Monolith(work_ms=0.0) as monolith:
        records = burst(monolith.client().Checkout, CHECKOUT, calls=calls)
        rows.append(_latency_row("monolith", records, monolith.wire_calls))
    with _mesh(1, 0.0, "architecture-cost", seed) as mesh:
        mesh.metrics.clear()
        records = burst(mesh.client("frontend").Checkout, CHECKOUT, calls=calls)
        rows.append(_latency_row("microservices", records, len(mesh.metrics.server_rows)))
    return rows


def what_to_operate(replicas: int = 2, seed: int = 0) -> list[dict[str, Any]]:
    """Count what there is to build, run and watch for the same shop, ``replicas`` copies of each
    deployable: builds, running copies, listening ports, registry entries and health checks."""
    copies = [Monolith().start() for _ in range(replicas)]
    try:
        monolith = {"architecture": "monolith", "deployables": 1, "running copies": len(copies),
                    "listening ports": len({m.port for m in copies}), "registry entries": 0,
                    "health checks": 0}
    finally:
        for copy in copies:
            copy.stop()
    with _mesh(replicas, 2.0, "architecture-operate", seed) as mesh:
        instances = mesh.instances()
        micro = {"architecture": "microservices", "deployables": len({i.service for i in instances}),
                 "running copies": len(instances), "listening ports": len({i.port for i in instances}),
                 "registry entries": len(mesh.consul.agent.services()),
                 "health checks": len(mesh.consul.agent.checks())}
    return [monolith, micro]


def _latency_row(architecture: str, records, wire_calls: int) -> dict[str, Any]:
    ok = [r.latency * 1e3 for r in records if r.ok]
    return {"architecture": architecture, "calls": len(records), "failed": len(records) - len(ok),
            "gRPC calls per checkout": round(wire_calls / len(records), 2),
            "p50_ms": round(float(np.percentile(ok, 50)), 2),
            "p99_ms": round(float(np.percentile(ok, 99)), 2)}


_KINDS_OF_CALL = {"checkout": ("Checkout", CHECKOUT), "browse": ("Home", HOME)}


def _under_load(target: Any, event: Callable[[], None], event_at: float, duration: float,
                seed: int, rates: dict[str, float] | None = None) -> dict[str, list]:
    rates = rates or {"checkout": 20.0, "browse": 20.0}
    loads = {kind: SteadyLoad(getattr(target("frontend"), _KINDS_OF_CALL[kind][0]), _KINDS_OF_CALL[kind][1],
                              rate, np.random.default_rng(seed + n), timeout=1.0)
             for n, (kind, rate) in enumerate(rates.items())}
    timer = at(event_at, event)
    time.sleep(duration)
    timer.join()
    for load in loads.values():
        load.stop(wait=True)
    return {kind: list(load.records) for kind, load in loads.items()}


def crash(duration: float = 3.0, crash_at: float = 1.0, seed: int = 0) -> dict[str, dict[str, list]]:
    """Run checkouts and home pages on both architectures; at ``crash_at`` fraud crashes. Return
    each architecture's call records by kind (``start`` in seconds since the load began)."""
    runs = {}
    with Monolith() as monolith:
        runs["monolith"] = _under_load(monolith.client, monolith.kill, crash_at, duration, seed)
    with _mesh(1, 2.0, "architecture-crash", seed) as mesh:
        runs["microservices"] = _under_load(mesh.client, lambda: mesh.kill("fraud-1"), crash_at, duration,
                                            seed)
    return runs


def deploy(duration: float = 4.0, deploy_at: float = 1.0, seed: int = 0) -> dict[str, dict[str, list]]:
    """Deploy a new build of payments at ``deploy_at`` under load: the monolith restarts (half a
    second to start up); the mesh replaces payments' two replicas one after the other — each taken
    out of discovery (maintenance mode) before it stops and put back once the new build serves —
    and its callers retry a call that found a replica gone on another one."""
    runs = {}
    with Monolith() as monolith:
        runs["monolith"] = _under_load(monolith.client, monolith.restart, deploy_at, duration, seed)
    with _mesh(2, 2.0, "architecture-deploy", seed) as mesh:
        mesh.set_policy("payments", max_attempts=3, retry_on="UNAVAILABLE", backoff_base=0.005)

        def rolling() -> None:
            agent = mesh.consul.agent.service
            for replica in ("payments-1", "payments-2"):
                # out of discovery first
                agent.maintenance(mesh.registry_id(replica), True, "deploying a new build")
                mesh.wait_until(lambda r=replica: r not in mesh.passing("payments"), timeout=5)
                time.sleep(0.2)  # the calls it was serving finish
                mesh.kill(replica)
                time.sleep(0.5)  # the new build starting up
                mesh.revive(replica)
                agent.maintenance(mesh.registry_id(replica), False)  # back into discovery once it serves
                mesh.wait_until(lambda r=replica: r in mesh.passing("payments"), timeout=5)

        runs["microservices"] = _under_load(mesh.client, rolling, deploy_at, duration, seed)
    return runs


@dataclass
class ScaleOut:
    """What :func:`scale_out` measured: ``runs[architecture]["browse"]`` are the home pages' call
    records; ``scaled_at`` when the scale-out began; ``ready_after[architecture]`` seconds until the
    new copies could take calls; ``started[architecture]`` the services each new copy brought."""

    runs: dict[str, dict[str, list]]
    scaled_at: float
    duration: float
    ready_after: dict[str, float] = field(default_factory=dict)
    started: dict[str, list[str]] = field(default_factory=dict)


def scale_out(rate: float = 40.0, copies: int = 3, scale_at: float = 2.5, duration: float = 7.0,
              workers: int = 1, service_time: float = 0.02, seed: int = 0) -> ScaleOut:
    """Send home pages at ``rate`` per second (each asks inventory for stock twice) while inventory
    serves ``workers`` calls at a time, ``service_time`` s each: one copy serves
    ``workers / service_time`` stock calls a second, fewer than the load asks for. At ``scale_at``
    both architectures scale out to ``copies`` of what they deploy: the monolith starts whole
    copies behind a round-robin balancer; the mesh starts inventory replicas only, which register,
    pass their health checks and are discovered by their callers."""
    if copies < 2:
        raise ValueError(f"scaling out needs at least 2 copies, got {copies}")
    if not 0 < scale_at < duration:
        raise ValueError(f"scale_at must fall within the run (0, {duration}), got {scale_at}")
    result = ScaleOut({}, scale_at, duration)
    rates = {"browse": rate}
    with ScaledMonolith(1) as monolith:
        monolith.limit("inventory", workers, service_time)

        def more_monoliths() -> None:
            began = time.monotonic()
            started = monolith.scale_to(copies)
            result.ready_after["monolith"] = time.monotonic() - began
            result.started["monolith"] = [name for copy in started for name in copy.servicers]

        result.runs["monolith"] = _under_load(monolith.client, more_monoliths, scale_at, duration, seed,
                                              rates)
    with _mesh(1, 2.0, "architecture-scale", seed) as mesh:
        mesh.inject("inventory-1", workers=workers, service_time=service_time)

        def more_inventory() -> None:
            began = time.monotonic()
            started = mesh.add_service("inventory", copies - 1)
            for instance in started:
                mesh.inject(instance, workers=workers, service_time=service_time)
            mesh.wait_until(lambda: len(mesh.passing("inventory")) == copies, timeout=10)
            result.ready_after["microservices"] = time.monotonic() - began
            result.started["microservices"] = [instance.service for instance in started]

        result.runs["microservices"] = _under_load(mesh.client, more_inventory, scale_at, duration, seed,
                                                   rates)
    return result


def _p99_ms(records: list) -> float | None:
    return round(float(np.percentile([r.latency * 1e3 for r in records], 99)), 1) if records else None


def scaling_table(result: ScaleOut, settle: float = 1.5) -> list[dict[str, Any]]:
    """Per architecture: home pages before the scale-out (from ``settle`` s in) and after it (from
    ``settle`` s after the new copies were ready): calls, share served, served per second and p99
    (a failed call counts at the time it took to fail); then what the scale-out started."""
    rows = []
    for architecture, kinds in result.runs.items():
        records = [r for r in kinds["browse"] if r.code != "SHED"]
        ready = result.scaled_at + result.ready_after.get(architecture, 0.0)
        windows = {"before": (settle, result.scaled_at),
                   "after": (min(ready + settle, result.duration - 0.5), result.duration)}
        row: dict[str, Any] = {"architecture": architecture}
        for phase, (start, end) in windows.items():
            inside = [r for r in records if start <= r.start < end]
            served = sum(r.ok for r in inside)
            row[f"{phase}: served %"] = round(100 * served / len(inside), 1) if inside else None
            row[f"{phase}: served/s"] = round(served / (end - start), 1)
            row[f"{phase}: p99 ms"] = _p99_ms(inside)
        started = result.started.get(architecture, [])
        row["services started"] = ", ".join(f"{name} ×{started.count(name)}"
                                            for name in dict.fromkeys(started))
        row["ready after s"] = round(result.ready_after.get(architecture, float("nan")), 2)
        rows.append(row)
    return rows


def plot_scaling(result: ScaleOut, bucket: float = 0.5, axes=None):
    """Draw the home pages' p99 and the home pages served per second over time, both
    architectures, with the scale-out marked."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3), layout="constrained")
    p99_ax, served_ax = axes
    edges = np.arange(0.0, result.duration + bucket, bucket)
    for architecture, kinds in result.runs.items():
        records = [r for r in kinds["browse"] if r.code != "SHED"]
        p99, served = [], []
        for start, end in itertools.pairwise(edges):
            inside = [r for r in records if start <= r.start < end]
            p99.append(_p99_ms(inside) if inside else np.nan)
            served.append(sum(r.ok for r in inside) / bucket)
        p99_ax.plot(edges[:-1] + bucket / 2, p99, marker=".", label=architecture)
        served_ax.plot(edges[:-1] + bucket / 2, served, marker=".", label=architecture)
    for ax, label in ((p99_ax, "home page p99 (ms)"), (served_ax, "home pages served per second")):
        ax.axvline(result.scaled_at, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("seconds")
        ax.set_ylabel(label)
    p99_ax.set_yscale("log")
    p99_ax.text(result.scaled_at, p99_ax.get_ylim()[1], " scale out", fontsize=8, va="top")
    served_ax.legend(loc="lower right")
    return axes


def outcome_table(runs: dict[str, dict[str, list]], since: float) -> list[dict[str, Any]]:
    """Return, per architecture and kind of call, the calls sent from ``since`` on and the share
    that succeeded."""
    rows = []
    for architecture, kinds in runs.items():
        for kind, records in kinds.items():
            after = [r for r in records if r.start >= since and r.code != "SHED"]
            ok = sum(r.code == "OK" for r in after)
            rows.append({"architecture": architecture, "calls": kind, "sent": len(after),
                         "succeeded_pct": round(100 * ok / len(after), 1) if after else None})
    return rows


def plot_outcomes(runs: dict[str, dict[str, list]], event: str, event_at: float, bucket: float = 0.25,
                  axes=None):
    """Draw, for each architecture, the share of calls of each kind that succeeded over time."""
    if axes is None:
        _, axes = plt.subplots(1, len(runs), figsize=(11, 3), sharey=True, layout="constrained")
    for ax, (architecture, kinds) in zip(np.atleast_1d(axes), runs.items(), strict=True):
        for kind, records in kinds.items():
            records = [r for r in records if r.code != "SHED"]
            end = max((r.start for r in records), default=0.0)
            edges = np.arange(0.0, end + bucket, bucket)
            sent = np.histogram([r.start for r in records], edges)[0]
            ok = np.histogram([r.start for r in records if r.code == "OK"], edges)[0]
            share = np.divide(ok, sent, out=np.full(len(sent), np.nan), where=sent > 0)
            ax.plot(edges[:-1] + bucket / 2, 100 * share, marker=".", label=kind)
        ax.axvline(event_at, color="black", linestyle="--", linewidth=0.8)
        ax.text(event_at, 103, f" {event}", fontsize=8)
        ax.set_title(architecture)
        ax.set_xlabel("seconds")
        ax.set_ylim(-5, 110)
    np.atleast_1d(axes)[0].set_ylabel("calls that succeeded (%)")
    np.atleast_1d(axes)[-1].legend(loc="lower right")
    return axes


#: The chapter's advantages (优点) and costs (缺点) of microservices, each with where it is shown.
CHAPTER_MAP = [
    {"chapter": "1. each service focuses on one business capability", "kind": "advantage",
     "where": "00 tour, 05 (the demo shop: orders, payments, fraud, inventory …)"},
    {"chapter": "2. developed by a small team on its own", "kind": "advantage",
     "where": "02 (the .proto is the contract between teams), 08 (the gateway hides who is behind it)"},
    {"chapter": "3. loosely coupled, independent in development and deployment", "kind": "advantage",
     "where": "this lesson (deploy), 12 (two versions side by side)"},
    {"chapter": "4. can be written in different languages", "kind": "advantage",
     "where": "02 (protobuf and gRPC: any language speaks the same wire format)"},
    {"chapter": "5. integrates with CI tools for automatic deployment", "kind": "advantage",
     "where": "12 (an automated canary that promotes or rolls back)"},
    {"chapter": "6. easy for one developer to understand and change", "kind": "advantage",
     "where": "mesh/services/shop.py: each service is a class of a few lines"},
    {"chapter": "7. can adopt new technology", "kind": "advantage",
     "where": "12 (a new version runs beside the old one; mirroring tries it on real calls)"},
    {"chapter": "8. scales on demand", "kind": "advantage",
     "where": "this lesson (scale out one service), 04 (replicas behind a balancer), 07 (how many "
              "replicas a load needs)"},
    {"chapter": "9. runs on modest servers", "kind": "advantage",
     "where": "this whole workbench: dozens of services in one notebook on two cores"},
    {"chapter": "10. easy to integrate with third parties", "kind": "advantage",
     "where": "08 (the gateway: one HTTP entry, JSON outside, gRPC inside)"},
    {"chapter": "11. own storage, or a shared database", "kind": "advantage",
     "where": "03 (the config center on the registry's KV store), 09 (the bus's own backlog)"},
    {"chapter": "1. DevOps is harder: more services, more to manage", "kind": "cost",
     "where": "this lesson (count what there is to operate), 03 (health checks), 05 (every pattern is "
              "configuration), 10 (three signals to watch)"},
    {"chapter": "2. CAP: no strong consistency, eventual consistency is hard", "kind": "cost",
     "where": "03 (discovery lags a crash by a check interval), 09 (at-least-once delivery, idempotency)"},
    {"chapter": "3. a change needs coordinating with the services that depend on it", "kind": "cost",
     "where": "02 (adding a field is compatible, renumbering is not), 12 (releases, schema changes)"},
]
