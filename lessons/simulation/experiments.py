"""Lesson 07 (simulation): experiments in the SimPy twin, one call each with sensible defaults.

- :func:`compare_balancers` — balancers over a load sweep with heterogeneous instances.
- :func:`retry_storm` — how retries multiply through call depth, with and without a budget.
- :func:`cascading_failure` — a slow leaf exhausting upstream workers, and what contains it.
- :func:`metastable_failure` — a short trigger, retries sustaining overload after it, the fix.
- :func:`rate_limiting` — limiting at the edge versus at the service.

Every run is seeded; sweeps run their independent simulations in parallel processes
(:func:`sim.sweep`) and show a progress bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mesh.policies import PolicySettings
from sim import (
    Deterministic,
    Exponential,
    Fault,
    Poisson,
    Results,
    ServiceSpec,
    Simulation,
    Topology,
    single_tier,
    sweep,
)


@dataclass
class SimExperiment:
    """Rows of a sweep (one per run) and, for timelines, each policy's Results."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, Results] = field(default_factory=dict)
    marks: list[tuple[float, str]] = field(default_factory=list)
    topologies: dict[str, Topology] = field(default_factory=dict)  # of each run, for a replay

    def replay(self, label: str):
        """Return a :class:`~lessons.replay.Replay` of one run (made with ``sample_every``)."""
        from ..replay import Replay, from_simulation

        recording = from_simulation(self.runs[label], self.topologies[label])
        recording.marks = list(self.marks)
        return Replay(recording, title=f"{self.name}: {label}")


# -- load balancing ---------------------------------------------------------------------------------
def _balancer_run(
    balancer: str,
    load: float,
    seed: int,
    instances: int,
    slow: int,
    factor: float,
    service: float,
    duration: float,
) -> dict[str, Any]:
    capacity = (instances - slow) / service + slow / (service * factor)
    faults = [Fault(at=0.0, target=f"service-{i + 1}", slow=factor) for i in range(slow)]
    sim = Simulation(
        single_tier(instances, Exponential(service), balancer=balancer),
        np.random.default_rng(seed),
        Poisson(load * capacity),
        faults=faults,
    )
    results = sim.run(duration, warmup=duration / 10)
    share = results.share()
    return {
        "balancer": balancer,
        "load": load,
        "seed": seed,
        "p50": results.percentile(50),
        "p99": results.percentile(99),
        "mean": results.mean_latency(),
        "slow_share": sum(share.get(f"service-{i + 1}", 0.0) for i in range(slow)),
    }


def compare_balancers(
    balancers=("round_robin", "random", "least_outstanding", "p2c", "peak_ewma"),
    loads=(0.5, 0.7, 0.8, 0.9, 0.95),
    instances: int = 10,
    slow: int = 2,
    factor: float = 3.0,
    service: float = 0.01,
    duration: float = 60.0,
    seeds=(0,),
    parallel: bool = True,
) -> SimExperiment:
    """Each balancer at each load (a fraction of total capacity) on ``instances`` replicas, ``slow`` of
    which are ``factor`` times slower. Rows: p50, p99, mean latency, share of the slow replicas."""
    tasks = [
        (b, load, s, instances, slow, factor, service, duration)
        for b in balancers
        for load in loads
        for s in seeds
    ]
    experiment = SimExperiment("balancers over a load sweep")
    experiment.rows = sweep(tasks, _balancer_run, parallel, "balancers x loads")
    return experiment


# -- retries ----------------------------------------------------------------------------------------
def _chain(depth: int, policy: PolicySettings, leaf_fail: float, workers: int = 64) -> Topology:
    names = [f"tier{i + 1}" for i in range(depth)]
    services = {
        name: ServiceSpec(
            replicas=2,
            workers=workers,
            service_time=Deterministic(0.002),
            calls=((names[i + 1],),) if i + 1 < depth else (),
            policy=policy,
        )
        for i, name in enumerate(names)
    }
    services[names[-1]] = replace(services[names[-1]], fail_probability=leaf_fail)
    return Topology(services, names[0])


def retry_storm(
    depth: int = 3,
    attempts: int = 3,
    leaf_fail: float = 1.0,
    rate: float = 20.0,
    duration: float = 30.0,
    seed: int = 0,
) -> SimExperiment:
    """A chain of ``depth`` services whose leaf fails ``leaf_fail`` of its calls; every caller retries
    up to ``attempts`` times. Rows: calls per request reaching each tier, with and without a budget."""
    experiment = SimExperiment(f"retry storm through {depth} tiers")
    base = PolicySettings(max_attempts=attempts, retry_on="INTERNAL,UNAVAILABLE", backoff_base=0.001)
    for label, policy in (
        ("no retries", PolicySettings()),
        (f"{attempts} attempts", base),
        (f"{attempts} attempts + budget", replace(base, budget_tokens=10, budget_ratio=0.1)),
    ):
        sim = Simulation(_chain(depth, policy, leaf_fail), np.random.default_rng(seed), Poisson(rate))
        results = sim.run(duration)
        experiment.runs[label] = results
        for tier, instances in sim.instances.items():
            experiment.rows.append(
                {
                    "policy": label,
                    "tier": tier,
                    "calls_per_request": sum(i.served for i in instances) / max(len(results), 1),
                    "ok": results.by_status().get("OK", 0) / max(len(results), 1),
                }
            )
    return experiment


# -- cascading failure ------------------------------------------------------------------------------
CASCADE_POLICIES = {
    "no protection": PolicySettings(),
    "timeouts": PolicySettings(per_try_timeout=0.05),
    "timeouts + breaker": PolicySettings(
        per_try_timeout=0.05,
        breaker_failure_rate=50,
        breaker_minimum_calls=10,
        breaker_window=20,
        breaker_wait=1.0,
    ),
    "bulkhead": PolicySettings(per_try_timeout=0.05, bulkhead=2, bulkhead_wait=0.0),
}


def cascading_failure(
    policies=tuple(CASCADE_POLICIES),
    slow_from: float = 10.0,
    slow_until: float = 25.0,
    factor: float = 50.0,
    rate: float = 300.0,
    duration: float = 40.0,
    seed: int = 0,
) -> SimExperiment:
    """frontend -> orders -> payments -> fraud, 4 workers per instance; 30% of the frontend's
    requests are checkouts that go down the chain, 70% are browsing it serves alone. From
    ``slow_from`` to ``slow_until`` fraud is ``factor`` times slower: callers hold their workers
    while they wait, the shortage climbs the chain, and browsing fails too. Timeouts, breakers and
    bulkheads at each caller contain it. Rows, while fraud is slow (after the first two seconds of
    it, or half of it if it is shorter): median latency, goodput, and useful goodput (OK within
    100 ms)."""
    if not 0 <= slow_from < slow_until <= duration:
        raise ValueError(f"need 0 <= slow_from < slow_until <= duration; got slow_from={slow_from}, "
                         f"slow_until={slow_until}, duration={duration}")
    settle = min(2.0, (slow_until - slow_from) / 2)  # the wave needs a moment to climb the chain
    experiment = SimExperiment("cascading failure")
    experiment.marks = [(slow_from, "fraud slow"), (slow_until, "fraud recovered")]
    names = ["frontend", "orders", "payments", "fraud"]
    for label in policies:
        policy = CASCADE_POLICIES[label]
        services = {
            name: ServiceSpec(
                replicas=2,
                workers=4,
                service_time=Exponential(0.003),
                calls=((names[i + 1],),) if i + 1 < len(names) else (),
                # the protections sit on the internal calls; the client's edge stays plain
                policy=PolicySettings() if name == "frontend" else policy,
                call_probability=0.3 if name == "frontend" else 1.0,  # 30% checkouts, 70% browsing
            )
            for i, name in enumerate(names)
        }
        faults = [
            Fault(at=slow_from, target="fraud", slow=factor),
            Fault(at=slow_until, target="fraud", recover=True),
        ]
        topology = Topology(services, "frontend")
        sim = Simulation(
            topology,
            np.random.default_rng(seed),
            Poisson(rate),
            faults=faults,
            timeout=1.0,
            sample_every=0.5,
        )
        results = sim.run(duration)
        experiment.runs[label] = results
        experiment.topologies[label] = topology
        during = [r for r in results.finished if slow_from + settle <= r.arrival < slow_until]
        window = slow_until - slow_from - settle
        experiment.rows.append(
            {
                "policy": label,
                "p50_during_ms": 1e3 * float(np.median([r.latency for r in during])) if during else np.nan,
                "goodput_during": sum(r.status == "OK" for r in during) / window,
                # what users feel: answered OK within 100 ms
                "useful_goodput_during": sum(r.status == "OK" and r.latency < 0.1 for r in during) / window,
            }
        )
    return experiment


# -- metastable failure -----------------------------------------------------------------------------
def metastable_failure(
    rate: float = 560.0, trigger: tuple[float, float] = (10.0, 12.0), duration: float = 40.0, seed: int = 0
) -> SimExperiment:
    """One service at 70% load; from ``trigger[0]`` to ``trigger[1]`` it is 3x slower. Clients time
    out at 100 ms and retry (3 attempts); the servers finish every job even after its caller gave up.
    After the trigger ends, retries and wasted work keep it overloaded — unless a retry budget or
    deadline propagation breaks the loop."""
    experiment = SimExperiment("metastable failure")
    experiment.marks = [(trigger[0], "trigger"), (trigger[1], "trigger ends")]
    retrying = PolicySettings(
        max_attempts=3, per_try_timeout=0.1, retry_on="DEADLINE_EXCEEDED,UNAVAILABLE", backoff_base=0.005
    )
    variants = {
        "retries": (retrying, False),
        "retries + budget": (replace(retrying, budget_tokens=10, budget_ratio=0.1), False),
        "retries + deadline propagation": (retrying, True),
    }
    for label, (policy, propagate) in variants.items():
        topo = Topology(
            {"service": ServiceSpec(replicas=4, workers=2, service_time=Exponential(0.01), policy=policy)},
            "service",
        )
        faults = [
            Fault(at=trigger[0], target="service", slow=3.0),
            Fault(at=trigger[1], target="service", recover=True),
        ]
        sim = Simulation(
            topo,
            np.random.default_rng(seed),
            Poisson(rate),
            faults=faults,
            timeout=1.0,
            propagate_deadlines=propagate,
        )
        results = sim.run(duration)
        experiment.runs[label] = results
        after = [r for r in results.records if r.arrival >= duration - 10]
        experiment.rows.append(
            {
                "policy": label,
                "goodput_last_10s": sum(r.status == "OK" for r in after) / 10,
                "offered": rate,
                "attempts": results.mean_attempts(),
            }
        )
    return experiment


# -- rate limiting ----------------------------------------------------------------------------------
def rate_limiting(overload: float = 1.5, duration: float = 30.0, seed: int = 0) -> SimExperiment:
    """frontend -> orders, offered ``overload`` x the capacity of orders. A limit at the edge
    (client -> frontend) rejects before any work is done; a limit at the service (frontend ->
    orders) rejects after the frontend has done its part, which is wasted."""
    experiment = SimExperiment("rate limiting: edge versus service")
    capacity = 2 * 2 / 0.01  # orders: 2 replicas x 2 workers x 10 ms
    limit = 0.9 * capacity
    # "at the service" is orders' own admission control: limit / 2 per instance, 2 instances.
    variants = {
        "no limit": ({}, 0.0),
        "at the edge": ({"rate_limit": limit, "rate_burst": 10}, 0.0),
        "at the service": ({}, limit / 2),
    }
    for label, (edge, own_limit) in variants.items():
        topo = Topology(
            {
                "frontend": ServiceSpec(
                    replicas=2,
                    workers=16,
                    service_time=Exponential(0.004),
                    calls=(("orders",),),
                    policy=PolicySettings(**edge),
                ),
                "orders": ServiceSpec(
                    replicas=2,
                    workers=2,
                    service_time=Exponential(0.01),
                    queue_limit=50,
                    rate_limit=own_limit,
                ),
            },
            "frontend",
        )
        sim = Simulation(topo, np.random.default_rng(seed), Poisson(overload * capacity), timeout=1.0)
        results = sim.run(duration)
        experiment.runs[label] = results
        experiment.rows.append(
            {
                "limit": label,
                "goodput": results.goodput(),
                "p99": results.percentile(99),
                "frontend_work_per_s": sum(i.served for i in sim.instances["frontend"]) / duration,
                "errors": {k: v for k, v in results.by_status().items() if k != "OK"},
            }
        )
    return experiment
