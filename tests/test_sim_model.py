"""The simulator's behaviour: reproducibility, topology from the mesh's description, faults,
policies on env.now, deadlines, queues, arrivals — and agreement with the real mesh."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lessons.simulation.twin import TOLERANCE, compare_with_mesh
from mesh.policies import PolicySettings
from mesh.services import SHOP_CALLS, shop_topology
from sim import (
    Deterministic,
    Exponential,
    Fault,
    OnOff,
    Poisson,
    Ramp,
    ServiceSpec,
    Simulation,
    Steps,
    Topology,
    single_tier,
)
from sim.results import UNFINISHED
from sim.theory import mean_ci


def run(topology, seed=0, rate=200.0, duration=20.0, **kw):
    return Simulation(topology, np.random.default_rng(seed), Poisson(rate), **kw).run(duration)


def test_the_same_seed_gives_identical_records_and_another_seed_does_not():
    topo = single_tier(4, Exponential(0.01), balancer="p2c", max_attempts=2)
    assert run(topo, seed=7).records == run(topo, seed=7).records
    assert run(topo, seed=7).records != run(topo, seed=8).records


def test_the_topology_comes_from_the_meshs_own_description():
    topo = Topology.from_mesh(shop_topology(3), SHOP_CALLS, parallel={"recommendations": True})
    assert topo.entry == "frontend"
    assert set(topo.graph().edges()) == {(a, b) for a, bs in SHOP_CALLS.items() for b in bs}
    assert all(spec.replicas == 3 for spec in topo.services.values())
    with pytest.raises(ValueError, match="cycle"):
        Topology.from_mesh({"a": 1, "b": 1}, {"a": ["b"], "b": ["a"]}, entry="a")
    with pytest.raises(ValueError, match="unknown service"):
        Topology.from_mesh({"a": 1}, {"a": ["ghost"]})


def test_a_crashed_instance_fails_calls_until_discovery_drops_it():
    topo = single_tier(3, Deterministic(0.001), balancer="round_robin")
    results = run(topo, rate=300, duration=4.0, faults=[Fault(at=1.0, target="service-2", crash=True),
                                                        Fault(at=3.0, target="service-2", recover=True)],
                  detection_delay=0.5)
    failed = [r for r in results.finished if r.status != "OK"]
    assert failed and all(1.0 <= r.arrival < 1.5 and r.path == "service-2" for r in failed)
    served_by_2 = [r.arrival for r in results.records if r.path == "service-2" and r.status == "OK"]
    assert not [t for t in served_by_2 if 1.5 <= t < 3.5]  # out of discovery, then back after 0.5 s
    assert any(t >= 3.5 for t in served_by_2)


def test_load_aware_balancing_routes_around_a_slow_instance():
    faults = [Fault(at=0.0, target="service-1", slow=4.0)]  # 20 ms instead of 5 ms; stable at this load
    share = {b: run(single_tier(4, Exponential(0.005), balancer=b), rate=120, duration=60, faults=faults)
             .share()["service-1"] for b in ("round_robin", "p2c")}
    assert share["round_robin"] == pytest.approx(0.25, abs=0.02)
    assert share["p2c"] < 0.2


def _chain(depth: int, **policy) -> Topology:
    names = [f"tier{i}" for i in range(depth)]
    services = {n: ServiceSpec(replicas=2, workers=50, service_time=Deterministic(0.001),
                               calls=((names[i + 1],),) if i + 1 < depth else (),
                               policy=PolicySettings(**policy)) for i, n in enumerate(names)}
    return Topology(services, names[0]).with_service(names[-1], fail_probability=1.0)


def test_retries_amplify_through_call_depth_and_a_budget_bounds_it():
    sim = Simulation(_chain(3, max_attempts=3, retry_on="INTERNAL", backoff_base=0.001),
                     np.random.default_rng(1), Poisson(5.0))
    results = sim.run(20.0)
    leaf_calls = sum(i.served for i in sim.instances["tier2"])
    assert leaf_calls / len(results) == pytest.approx(27, rel=0.05)  # 3 x 3 x 3
    policy = {"max_attempts": 3, "retry_on": "INTERNAL", "backoff_base": 0.001, "budget_tokens": 10}
    budgeted = Simulation(_chain(3, **policy), np.random.default_rng(1), Poisson(5.0))
    results = budgeted.run(20.0)
    assert sum(i.served for i in budgeted.instances["tier2"]) / len(results) < 3


def test_breakers_run_on_simulated_time():
    topo = single_tier(2, Deterministic(0.001), balancer="round_robin", breaker_failure_rate=50,
                       breaker_minimum_calls=10, breaker_window=10, breaker_wait=2.0)
    sim = Simulation(topo, np.random.default_rng(0), Poisson(100.0),
                     faults=[Fault(at=5.0, target="service", fail=1.0),
                             Fault(at=8.0, target="service", recover=True)])
    sim.run(15.0)
    moments = [(round(change.time, 1), change.target) for change in sim.transitions]
    assert moments[0][1] == "open" and 5.0 <= moments[0][0] < 5.3
    assert moments[1] == (pytest.approx(moments[0][0] + 2.0, abs=0.1), "half_open")
    assert moments[-1][1] == "closed" and moments[-1][0] >= 8.0


def test_a_callee_never_works_past_the_callers_deadline():
    topo = _chain(2).with_service("tier1", fail_probability=0.0, service_time=Deterministic(0.5))
    sim = Simulation(topo, np.random.default_rng(0), Poisson(10.0), timeout=0.05)
    results = sim.run(5.0)
    assert set(results.by_status()) <= {"DEADLINE_EXCEEDED", "UNFINISHED"}
    assert results.unfinished <= 1  # one may still be waiting when the run ends
    assert max(r.latency for r in results.finished) <= 0.05 + 1e-9


def test_a_bounded_queue_rejects_and_an_unbounded_one_waits():
    bounded = Topology({"s": ServiceSpec(workers=1, queue_limit=2, service_time=Deterministic(0.01))}, "s")
    unbounded = Topology({"s": ServiceSpec(workers=1, service_time=Deterministic(0.01))}, "s")
    assert run(bounded, rate=150, duration=10).by_status().get("RESOURCE_EXHAUSTED", 0) > 0
    assert {r.status for r in run(unbounded, rate=80, duration=10).finished} == {"OK"}


@pytest.mark.parametrize(("arrivals", "expected"), [
    (Poisson(100), 1000), (OnOff(200, 0, on=1.0, off=1.0), 1000), (Steps([0, 5], [50, 150]), 1000),
    (Ramp(0, 200, 10.0), 1000),
])
def test_arrival_processes_deliver_their_rates(arrivals, expected):
    topo = single_tier(20, Deterministic(0.001))
    counts = [len(Simulation(topo, np.random.default_rng(s), arrivals).run(10.0)) for s in range(4)]
    assert np.mean(counts) == pytest.approx(expected, rel=0.05)


def test_records_keep_the_path_of_every_attempt():
    topo = single_tier(3, Deterministic(0.001), balancer="round_robin", max_attempts=3, retry_on="INTERNAL",
                       backoff_base=0.001)
    results = run(topo, duration=5.0, faults=[Fault(at=0.0, target="service-1", fail=1.0)])
    retried = [r for r in results.records if r.attempts > 1]
    assert retried and all(r.path.startswith("service-1>") and r.status == "OK" for r in retried)
    assert all(r.path.count(">") == r.attempts - 1 for r in results.finished)


def test_a_long_run_can_show_progress(capsys):
    Simulation(single_tier(2), np.random.default_rng(0), Poisson(50)).run(5.0, progress=True)
    assert "simulating" in capsys.readouterr().err


def test_results_make_a_frame():
    frame = run(single_tier(2, Exponential(0.01)), duration=2.0).to_frame()
    assert list(frame.columns) == ["arrival", "finish", "status", "attempts", "path", "fallback", "settled",
                                   "latency"]
    finished = frame[frame["status"] != "UNFINISHED"]
    assert (finished["latency"] >= 0).all() and len(finished) > 300


# -- the same scenario on the real mesh and in simulation ------------------------------------------
@pytest.mark.slow
def test_mesh_and_simulation_agree_on_mean_latency():
    comparison = compare_with_mesh()
    assert len(comparison.mesh_latencies) > 150
    assert abs(comparison.difference) <= TOLERANCE, comparison


# -- what the call plan brings to the simulator -----------------------------------------------------
def test_requests_in_flight_at_the_end_are_kept_as_unfinished():
    topo = single_tier(1, Deterministic(0.01))  # 100/s of capacity, offered 150/s: a queue builds
    sim = Simulation(topo, np.random.default_rng(0), Poisson(150.0))
    results = sim.run(4.0)
    assert results.unfinished > 100 and results.summary()["unfinished"] == results.unfinished
    assert len(results) == results.unfinished + len(results.finished)
    waiting = [r for r in results.records if r.status == UNFINISHED]
    assert all(math.isnan(r.finish) and math.isnan(r.settled) for r in waiting)
    assert len(results.latencies(None)) == len(results.finished)
    served = sim.instances["service"][0].served
    assert len(results.finished) == served  # every request the server answered, and no other


def test_release_routing_splits_calls_between_versions_in_the_simulator():
    topo = single_tier(3, Deterministic(0.001), balancer="round_robin", canary_version="v2",
                       canary_percent=20).with_service("service", versions=("v1", "v1", "v2"))
    results = Simulation(topo, np.random.default_rng(5), Poisson(200.0)).run(10.0)
    to_canary = sum(r.path == "service-3" for r in results.finished)
    n = len(results.finished)
    assert abs(to_canary - 0.2 * n) <= 4 * math.sqrt(n * 0.2 * 0.8)  # binomial, four sigmas
    pinned = topo.with_service("service", policy=PolicySettings(release_version="v2"))
    pinned_run = Simulation(pinned, np.random.default_rng(5), Poisson(50.0)).run(2.0)
    assert {r.path for r in pinned_run.finished} == {"service-3"}


def test_a_buggy_version_can_be_targeted_by_a_fault():
    topo = single_tier(3, Deterministic(0.001), balancer="round_robin").with_service(
        "service", versions=("v1", "v1", "v2"))
    results = run(topo, rate=90, duration=5.0, faults=[Fault(at=0.0, target="service@v2", fail=1.0)])
    failed = {r.path for r in results.finished if r.status != "OK"}
    assert failed == {"service-3"}


def test_a_fallback_answers_when_the_callee_fails_in_the_simulator():
    topo = single_tier(2, Deterministic(0.001), balancer="round_robin").with_service("service", fallback=True)
    results = run(topo, rate=100, duration=3.0, faults=[Fault(at=1.0, target="service", crash=True)],
                  detection_delay=0.5)
    degraded = [r for r in results.finished if r.fallback]
    assert degraded and all(r.status == "OK" and r.fallback == "unavailable" for r in degraded)
    assert min(r.arrival for r in degraded) >= 1.0
    assert {r.status for r in results.finished} == {"OK"}


def test_p2c_shares_two_equal_replicas_evenly_whichever_is_named_first():
    """Two replicas at low load are mostly both idle: a tie, which must go either way."""
    topo = single_tier(2, Exponential(0.01), balancer="p2c")
    results = run(topo, rate=40, duration=60.0)
    n = len(results.finished)
    first = sum(r.path == "service-1" for r in results.finished)
    assert abs(first - n / 2) <= 4 * math.sqrt(n / 4)


def test_p2c_latency_does_not_depend_on_which_replica_is_slow():
    topo = single_tier(2, Exponential(0.005), balancer="p2c")
    means = {}
    for slow in ("service-1", "service-2"):
        runs = [run(topo, seed=s, rate=40, duration=60.0, faults=[Fault(at=0.0, target=slow, slow=5.0)])
                for s in range(4)]
        means[slow] = [r.mean_latency() for r in runs]
    a, half_a = mean_ci(means["service-1"])
    b, half_b = mean_ci(means["service-2"])
    assert abs(a - b) <= half_a + half_b
