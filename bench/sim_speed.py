"""Simulated requests per second of wall time, side by side with a peer simulator, how the cost
grows, and where the time goes.

    python bench/sim_speed.py

1. Single tier: 10 instances, P2C, exponential 10 ms service, 90% load (goal >= 120,000/s).
2. The demo shop's checkout path (frontend -> orders -> {inventory, payments -> fraud}), two
   replicas each, with a circuit breaker, 3 attempts and a per-try timeout on every call, every
   call run through the call plan (goal >= 30,000/s).
3. Against Ciw (a peer Python queueing simulator, ``pip install ciw``; it comes with ``.[dev]``):
   M/M/1 at 80% load, and a two-station tandem (80/s into two stations of 100/s, the first handing
   each job to the second), customers per second of wall time, one run each, same model.
4. Scaling: instances x load for the single tier.
5. A profile of the shop run: the functions where the time goes.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time

import numpy as np

from mesh.policies import PolicySettings
from sim import Exponential, Poisson, ServiceSpec, Simulation, Topology, shop, single_tier, tandem

SHOP_POLICY = PolicySettings(max_attempts=3, per_try_timeout=0.5, breaker_failure_rate=50)


def rate_of(topology, arrivals, duration: float, seed: int = 0, **kw) -> tuple[float, int]:
    sim = Simulation(topology, np.random.default_rng(seed), arrivals, **kw)
    start = time.perf_counter()
    results = sim.run(duration)
    return len(results) / (time.perf_counter() - start), len(results)


def ciw_rate(stations: int, lam: float, mu: float, duration: float, seed: int = 0) -> tuple[float, int]:
    """Customers per second of wall time through Ciw's model of ``stations`` M/M/1 in a line."""
    import ciw

    routing = [[1.0 if j == i + 1 else 0.0 for j in range(stations)] for i in range(stations)]
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)] + [None] * (stations - 1),
        service_distributions=[ciw.dists.Exponential(rate=mu) for _ in range(stations)],
        routing=routing, number_of_servers=[1] * stations)
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    start = time.perf_counter()
    simulation.simulate_until_max_time(duration)
    elapsed = time.perf_counter() - start
    customers = sum(1 for r in simulation.get_all_records() if r.node == stations)
    return customers / elapsed, customers


def peers() -> None:
    try:
        import ciw  # noqa: F401
    except ImportError:
        print("\n(Ciw is not installed: pip install ciw, to compare with a peer simulator)")
        return
    lam, mu, duration = 80.0, 100.0, 600.0
    print("\nagainst Ciw, customers per second of wall time (one run each, same model and duration):")
    print("model | this simulator | Ciw | ratio")
    one = Topology({"station1": ServiceSpec(service_time=Exponential(1 / mu))}, "station1")
    for label, ours_topology, stations in (("M/M/1, 80% load", one, 1),
                                          ("tandem of two M/M/1", tandem(2, Exponential(1 / mu)), 2)):
        ours, _ = rate_of(ours_topology, Poisson(lam), duration)
        theirs, _ = ciw_rate(stations, lam, mu, duration)
        print(f"{label} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}x")


def main() -> None:
    service = 0.01
    topo = single_tier(10, Exponential(service), balancer="p2c")
    speed, n = rate_of(topo, Poisson(0.9 * 10 / service), 200)
    print(f"single tier, 10 instances, P2C, 90% load: {speed:,.0f} simulated requests/s ({n:,} requests)")
    topo = shop(replicas=2, workers=4, service_time=Exponential(0.002), policy=SHOP_POLICY)
    speed, n = rate_of(topo, Poisson(500), 60, timeout=2.0)
    print(f"shop checkout path, breakers + retries:   {speed:,.0f} simulated requests/s ({n:,} requests)")
    peers()
    print("\nsingle tier, P2C: simulated requests/s by instances and load")
    loads = (0.5, 0.9)
    print("instances | " + " | ".join(f"load {x:.0%}" for x in loads))
    for instances in (10, 50, 200):
        cells = []
        for load in loads:
            rate = load * instances / service
            speed, _ = rate_of(single_tier(instances, Exponential(service), balancer="p2c"), Poisson(rate),
                               duration=150_000 / rate)
            cells.append(f"{speed:,.0f}")
        print(f"{instances:9} | " + " | ".join(cells))
    profile = cProfile.Profile()
    sim = Simulation(shop(replicas=2, workers=4, service_time=Exponential(0.002), policy=SHOP_POLICY),
                     np.random.default_rng(1), Poisson(500), timeout=2.0)
    profile.enable()
    sim.run(20)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(10)
    print("\nwhere the time goes (shop checkout path, cProfile, by own time):")
    print("\n".join(line for line in out.getvalue().splitlines() if "/" in line or "ncalls" in line))


if __name__ == "__main__":
    main()
