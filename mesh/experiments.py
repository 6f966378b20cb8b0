"""Experiments on the real mesh, one call each, for the notebooks on load balancing and fault tolerance.

Every experiment starts its own small mesh (and stops it), drives it with the load generator for a
bounded time, and returns an :class:`Experiment`: the records of each run (one row per request),
events to mark on a timeline, and a few figures. Runs are seeded; durations are short so that a
notebook runs in seconds, and every function takes ``duration`` to look longer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._mesh import Mesh
from .load import LoadRecord, closed_loop, open_loop
from .pb import greeter_pb2, shop_pb2
from .services import shop_topology

HELLO = greeter_pb2.HelloRequest(name="Jason")
CHECKOUT = shop_pb2.CheckoutRequest(user="ada", items=[shop_pb2.Item(sku="apple", quantity=1)], card="4242")
HOME = shop_pb2.HomeRequest(user="ada", count=2)


@dataclass
class Experiment:
    """What one experiment measured: ``runs[label]`` is a list of records."""

    name: str
    runs: dict[str, list[LoadRecord]] = field(default_factory=dict)
    marks: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # instance id -> version (releases)

    def table(self) -> list[dict[str, Any]]:
        """One row per run: requests, OK, errors by status, p50 and p99 of the OK ones, and notes."""
        rows = []
        for label, records in self.runs.items():
            sent = [r for r in records if r.code != "SHED"]
            ok = [r.latency for r in sent if r.ok]
            rows.append({
                "run": label, "requests": len(sent), "ok": len(ok),
                "errors": dict(Counter(r.code for r in sent if not r.ok)),
                "fallbacks": sum(1 for r in sent if r.fallback),
                "p50_ms": round(float(np.percentile(ok, 50)) * 1e3, 1) if ok else None,
                "p99_ms": round(float(np.percentile(ok, 99)) * 1e3, 1) if ok else None,
                **self.notes.get(label, {}),
            })
        return rows


def _each_policy(mesh: Mesh, service: str, settings: dict[str, dict]):
    """Yield (index, label) for each run, with ``service``'s policy reset and set for that run."""
    for i, (label, policy) in enumerate(tqdm(settings.items(), desc="runs")):
        mesh.reset_policy(service)
        if policy:
            mesh.set_policy(service, **policy)
        yield i, label


def _at(delay: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer


# -- load balancing ---------------------------------------------------------------------------------
def compare_balancers(balancers: Sequence[str] = ("round_robin", "weighted_round_robin", "random",
                                                  "least_outstanding", "p2c", "peak_ewma"),
                      service_times: Sequence[float] = (0.002, 0.006, 0.020), users: int = 12,
                      duration: float = 1.5, seed: int = 0) -> Experiment:
    """Drive replicas of unequal speed with each balancer in turn (closed loop, ``users`` users).

    Each replica has two workers and takes ``service_times[i]`` per call, so a replica that gets
    more than it can serve builds a queue. Weighted round robin gets weights inversely
    proportional to the service times (what an operator would configure by hand).
    """
    experiment = Experiment("load balancing on unequal replicas")
    with Mesh({"greeter": len(service_times)}, name="lb-experiment", seed=seed) as mesh:
        mesh.wait_until_passing()
        for instance, seconds in zip(mesh.instances("greeter"), service_times, strict=True):
            mesh.inject(instance, workers=2, service_time=seconds)
        greeter = mesh.client("greeter")
        for i, name in enumerate(tqdm(balancers, desc="balancers")):
            weights = [round(max(service_times) / t) if name == "weighted_round_robin" else 1
                       for t in service_times]
            for instance, weight in zip(mesh.instances("greeter"), weights, strict=True):
                mesh.set_weight(instance, weight)
            mesh.set_policy("greeter", balancer=name)
            run = closed_loop(greeter.SayHello, HELLO, users=users, duration=duration,
                              rng=np.random.default_rng(seed + i))
            experiment.runs[name] = run.wait()
            share = Counter(r.served_by for r in experiment.runs[name] if r.ok)
            experiment.notes[name] = {"share": {k: share[k] for k in sorted(share)},
                                      "calls_per_s": round(run.summary()["goodput"])}
    return experiment


# -- fault tolerance --------------------------------------------------------------------------------
def timeouts(duration: float = 2.0, seed: int = 1) -> Experiment:
    """One replica hangs on 30% of calls. Without a timeout those callers wait out their own 1 s
    client timeout; with a 50 ms per-try timeout they fail fast — and with one retry they succeed."""
    experiment = Experiment("timeouts")
    settings = {"no timeout": {}, "per-try timeout 50 ms": {"per_try_timeout": 0.05},
                "timeout + 1 retry": {"per_try_timeout": 0.05, "max_attempts": 2,
                                      "retry_on": "DEADLINE_EXCEEDED,UNAVAILABLE"}}
    with Mesh({"greeter": 3}, name="timeouts", seed=seed) as mesh:
        mesh.wait_until_passing()
        mesh.inject("greeter-3", hang_percent=30)
        greeter = mesh.client("greeter")
        for i, label in _each_policy(mesh, "greeter", settings):
            run = closed_loop(greeter.SayHello, HELLO, users=6, duration=duration, timeout=1.0,
                              rng=np.random.default_rng(seed + i))
            experiment.runs[label] = run.wait()
    return experiment


def retries(duration: float = 2.0, seed: int = 2) -> Experiment:
    """One replica answers UNAVAILABLE to 40% of calls. Retries hide the errors; the cost is extra
    attempts (shown as ``attempts_per_call``), which is load on the already struggling service."""
    experiment = Experiment("retries")
    settings = {"no retries": {}, "3 attempts": {"max_attempts": 3},
                "3 attempts + budget": {"max_attempts": 3, "budget_tokens": 10, "budget_ratio": 0.1}}
    with Mesh({"greeter": 3}, name="retries", seed=seed) as mesh:
        mesh.wait_until_passing()
        mesh.inject("greeter-2", abort_code="UNAVAILABLE", abort_percent=40)
        greeter = mesh.client("greeter")
        for i, label in _each_policy(mesh, "greeter", settings):
            mesh.metrics.clear()
            run = open_loop(greeter.SayHello, HELLO, rate=150, duration=duration,
                            rng=np.random.default_rng(seed + i))
            experiment.runs[label] = records = run.wait()
            attempts = sum(1 for row in mesh.metrics.client_rows if row["callee"] == "greeter")
            experiment.notes[label] = {"attempts_per_call": round(attempts / max(len(records), 1), 2)}
    return experiment


def circuit_breaker(duration: float = 4.0, outage: tuple[float, float] = (1.0, 2.5), seed: int = 3,
                    fallback: bool = False) -> Experiment:
    """Every replica hangs from ``outage[0]`` to ``outage[1]`` s. Without a breaker each call waits
    its 100 ms timeout; with one, calls fail at once while it is open, a few probe in half-open, and
    it closes after the outage. With ``fallback`` the open breaker answers with a degraded reply."""
    experiment = Experiment("circuit breaker" + (" with fallback" if fallback else ""))
    breaker = {"breaker_failure_rate": 50, "breaker_minimum_calls": 10, "breaker_window": 20,
               "breaker_wait": 0.5, "breaker_half_open_calls": 3}
    settings = {"no breaker": {"per_try_timeout": 0.1}, "breaker": {"per_try_timeout": 0.1, **breaker}}
    with Mesh({"greeter": 3}, name="breaker", seed=seed) as mesh:
        mesh.wait_until_passing()
        greeter = mesh.client("greeter")
        if fallback:
            mesh.fallback("greeter", "SayHello", static=greeter_pb2.HelloReply(name="(degraded)"))
        for i, label in _each_policy(mesh, "greeter", settings):
            mesh.metrics.clear()
            run = open_loop(greeter.SayHello, HELLO, rate=100, duration=duration,
                            rng=np.random.default_rng(seed + i))
            timers = [_at(outage[0], lambda: [mesh.inject(x, hang_percent=100) for x in mesh.instances()]),
                      _at(outage[1], mesh.clear_faults)]
            experiment.runs[label] = run.wait()
            for timer in timers:
                timer.join()
            marks = [(outage[0], "outage"), (outage[1], "recovered")]
            marks += [(t["time"] - run.started_monotonic, t["to"]) for t in mesh.metrics.transitions]
            experiment.marks[label] = marks
            served = sum(i.served for i in mesh.instances())
            experiment.notes[label] = {"calls_reaching_servers": served}
            for instance in mesh.instances():
                instance.served = 0
    return experiment


def bulkhead(duration: float = 2.5, seed: int = 4) -> Experiment:
    """Recommendations become slow (300 ms). The frontend's worker threads fill with calls waiting
    for them, and checkout — which never calls recommendations — slows down too. A bulkhead of 2
    concurrent calls from frontend to recommendations isolates them: the home page degrades,
    checkout stays fast (isolation, 隔离)."""
    experiment = Experiment("bulkhead")
    settings = {"no bulkhead": {}, "bulkhead of 2": {"bulkhead": 2}}
    with Mesh(shop_topology(1), name="bulkhead", seed=seed) as mesh:
        mesh.wait_until_passing()
        for instance in mesh.instances("recommendations"):
            mesh.inject(instance, delay=0.3)
        frontend = mesh.client("frontend")
        for i, label in _each_policy(mesh, "recommendations", settings):
            home = open_loop(frontend.Home, HOME, rate=60, duration=duration, max_in_flight=128,
                             rng=np.random.default_rng(seed + i))
            checkout = open_loop(frontend.Checkout, CHECKOUT, rate=20, duration=duration,
                                 rng=np.random.default_rng(seed + 10 + i))
            experiment.runs[f"checkout, {label}"] = checkout.wait()
            experiment.runs[f"home, {label}"] = home.wait()
    return experiment


def rate_limiting(duration: float = 2.0, seed: int = 5) -> Experiment:
    """Offered 2x what three single-worker replicas can serve. Without a limit the queues grow and
    latency climbs to the timeout; a client-side limit at 80% of capacity keeps admitted calls fast
    and rejects the rest at once (限流)."""
    experiment = Experiment("rate limiting")
    capacity = 3 / 0.01
    settings = {"no limit": {}, f"limit {0.8 * capacity:.0f}/s": {"rate_limit": 0.8 * capacity,
                                                                  "rate_burst": 10}}
    with Mesh({"greeter": 3}, name="ratelimit", seed=seed) as mesh:
        mesh.wait_until_passing()
        for instance in mesh.instances():
            mesh.inject(instance, workers=1, service_time=0.01)
        greeter = mesh.client("greeter")
        for i, label in _each_policy(mesh, "greeter", settings):
            run = open_loop(greeter.SayHello, HELLO, rate=2 * capacity, duration=duration, timeout=1.0,
                            max_in_flight=256, rng=np.random.default_rng(seed + i))
            experiment.runs[label] = run.wait()
    return experiment
