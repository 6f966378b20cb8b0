"""Lesson 05 (fault tolerance): one injected fault and one pattern at a time on the real mesh —
timeouts, retries, a circuit breaker, a bulkhead, rate limiting — and their timelines."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from mesh import Mesh
from mesh.pb import greeter_pb2
from mesh.services import shop_topology
from mesh.workload.load import closed_loop, open_loop

from .charts import plot_run
from .experiment import CHECKOUT, HELLO, HOME, Experiment, at, each_policy

__all__ = ["bulkhead", "circuit_breaker", "plot_experiment", "rate_limiting", "retries", "timeouts"]


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
        for i, label in each_policy(mesh, "greeter", settings):
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
        for i, label in each_policy(mesh, "greeter", settings):
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
        for i, label in each_policy(mesh, "greeter", settings):
            mesh.metrics.clear()
            run = open_loop(greeter.SayHello, HELLO, rate=100, duration=duration,
                            rng=np.random.default_rng(seed + i))
            timers = [at(outage[0], lambda: [mesh.inject(x, hang_percent=100) for x in mesh.instances()]),
                      at(outage[1], mesh.clear_faults)]
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
        for i, label in each_policy(mesh, "recommendations", settings):
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
        for i, label in each_policy(mesh, "greeter", settings):
            run = open_loop(greeter.SayHello, HELLO, rate=2 * capacity, duration=duration, timeout=1.0,
                            max_in_flight=256, rng=np.random.default_rng(seed + i))
            experiment.runs[label] = run.wait()
    return experiment



def plot_experiment(experiment, runs: Sequence[str] | None = None):
    """Draw each run of an :class:`lessons.experiment.Experiment` on its own timeline, same scales."""
    labels = list(runs or experiment.runs)
    figure, axes = plt.subplots(len(labels), 1, figsize=(9, 2.6 * len(labels)), sharex=True, sharey=True,
                                squeeze=False)
    for ax, label in zip(axes[:, 0], labels, strict=True):
        plot_run(experiment.runs[label], ax=ax, title=label, marks=experiment.marks.get(label, ()))
    figure.suptitle(experiment.name)
    figure.tight_layout()
    return figure

