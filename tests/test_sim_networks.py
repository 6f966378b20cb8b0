"""Asynchronous hand-offs in the simulator: queueing networks in the textbook sense (a tandem, a
station with feedback) against Jackson's results, and the message bus's shape (publish, consume
later, a backlog while the consumer is away)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import Deterministic, Exponential, Fault, Poisson, ServiceSpec, Simulation, Topology, tandem, theory
from sim.theory import mean_ci

SEEDS = range(6)


def _check(samples: list[float], expected: float) -> None:
    mean, half = mean_ci(samples)
    assert abs(mean - expected) <= half, f"theory {expected:.5f} outside {mean:.5f} ± {half:.5f}"


@pytest.mark.slow
def test_a_tandem_of_mm1_stations_takes_the_sum_of_their_response_times():
    lam, mus = 60.0, [100.0, 80.0]
    topology = Topology({
        "first": ServiceSpec(service_time=Exponential(1 / mus[0]), hands_off=(("second", 1.0),)),
        "second": ServiceSpec(service_time=Exponential(1 / mus[1])),
    }, "first")
    runs = [Simulation(topology, np.random.default_rng(s), Poisson(lam)).run(300, warmup=20) for s in SEEDS]
    _check([r.sojourns().mean() for r in runs], theory.tandem_sojourn(lam, mus))
    # the caller's answer comes when the first station is done; the second runs after it
    _check([r.mean_latency() for r in runs], theory.mm1_response(lam, mus[0]))


@pytest.mark.slow
def test_a_station_with_feedback_matches_jackson():
    lam, mu, p = 40.0, 100.0, 0.4
    runs = [Simulation(tandem(1, Exponential(1 / mu), feedback=p), np.random.default_rng(s), Poisson(lam))
            .run(300, warmup=20) for s in SEEDS]
    _check([r.sojourns().mean() for r in runs], theory.feedback_sojourn(lam, mu, p))


def test_feedback_visits_are_geometric():
    lam, p = 20.0, 0.5
    sim = Simulation(tandem(1, Exponential(0.005), feedback=p), np.random.default_rng(2), Poisson(lam))
    results = sim.run(200)
    served = sim.instances["station1"][0].served
    assert served / len(results) == pytest.approx(1 / (1 - p), rel=0.05)  # 1 + p + p^2 + ... visits


def _bus(consumer_time: float = 0.05, **consumer) -> Topology:
    return Topology({
        "orders": ServiceSpec(replicas=2, workers=4, service_time=Deterministic(0.002),
                              publishes=("billing",)),
        "billing": ServiceSpec(replicas=2, workers=1, service_time=Deterministic(consumer_time), **consumer),
    }, "orders")


def test_a_publisher_answers_at_once_and_its_message_is_handled_later():
    results = Simulation(_bus(), np.random.default_rng(1), Poisson(20)).run(30)
    done = [r for r in results.records if r.status == "OK" and not math.isnan(r.settled)]
    assert len(done) > 500
    assert max(r.latency for r in done) == pytest.approx(0.002)  # orders does not wait for billing
    assert min(r.settled - r.finish for r in done) == pytest.approx(0.05)  # billing's work, after the answer


def test_publishing_fans_out_to_every_subscriber():
    services = dict(_bus().services, shipping=ServiceSpec(service_time=Deterministic(0.001)))
    topology = Topology(services, "orders").with_service("orders", publishes=("billing", "shipping"))
    sim = Simulation(topology, np.random.default_rng(3), Poisson(30))
    results = sim.run(20)
    settled = [r for r in results.records if not math.isnan(r.settled)]
    for service in ("billing", "shipping"):
        assert sum(i.served for i in sim.instances[service]) >= len(settled)


def test_a_consumer_away_builds_a_backlog_that_drains_when_it_returns():
    faults = [Fault(at=5.0, target="billing", crash=True), Fault(at=8.0, target="billing", recover=True)]
    sim = Simulation(_bus(consumer_time=0.01), np.random.default_rng(4), Poisson(50), faults=faults)
    results = sim.run(20)
    lag = {r.arrival: r.settled - r.finish for r in results.records if r.status == "OK"}
    during = [v for t, v in lag.items() if 5.2 <= t < 7.8]
    before = [v for t, v in lag.items() if t < 4.8]
    assert during and min(during) > 0.2 and max(before) < 0.1  # the orders of the outage waited
    assert all(not math.isnan(v) for t, v in lag.items() if t < 15)  # and every one was handled
    assert len(sim.mailboxes["billing"]) == 0


def test_a_synchronous_cycle_is_refused_and_a_hand_off_loop_is_accepted():
    with pytest.raises(ValueError, match="synchronous call graph has a cycle"):
        Topology({"a": ServiceSpec(calls=(("b",),)), "b": ServiceSpec(calls=(("a",),))}, "a")
    loop = Topology({"a": ServiceSpec(hands_off=(("b", 1.0),)), "b": ServiceSpec(hands_off=(("a", 0.5),))},
                    "a")
    assert loop.graph().edges["b", "a"]["handoff"]
    with pytest.raises(ValueError, match="at most 1"):
        ServiceSpec(hands_off=(("a", 0.7), ("b", 0.6)))
    with pytest.raises(ValueError, match="unknown service"):
        Topology({"a": ServiceSpec(publishes=("ghost",))}, "a")
