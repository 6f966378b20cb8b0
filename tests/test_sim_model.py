"""The simulator's behaviour: reproducibility, topology from the mesh's description, faults,
policies on env.now, deadlines, queues, arrivals — and agreement with the real mesh."""

from __future__ import annotations

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
