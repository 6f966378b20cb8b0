"""Simulated requests per second of wall time, how the cost grows, and where the time goes.

    python bench/sim_speed.py

1. Single tier: 10 instances, P2C, exponential 10 ms service, 90% load (goal >= 100,000/s).
2. The demo shop's checkout path (frontend -> orders -> {inventory, payments -> fraud}), two
   replicas each, with a circuit breaker, 3 attempts and a per-try timeout on every call.
3. Scaling: instances x load for the single tier.
4. A profile of the single-tier run: the functions where the time goes.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time

import numpy as np

from mesh.policies import PolicySettings
from sim import Exponential, Poisson, Simulation, shop, single_tier


def rate_of(topology, arrivals, duration: float, seed: int = 0, **kw) -> tuple[float, int]:
    sim = Simulation(topology, np.random.default_rng(seed), arrivals, **kw)
    start = time.perf_counter()
    results = sim.run(duration)
    return len(results) / (time.perf_counter() - start), len(results)


def main() -> None:
    service = 0.01
    topo = single_tier(10, Exponential(service), balancer="p2c")
    speed, n = rate_of(topo, Poisson(0.9 * 10 / service), 200)
    print(f"single tier, 10 instances, P2C, 90% load: {speed:,.0f} simulated requests/s ({n:,} requests)")
    policy = PolicySettings(max_attempts=3, per_try_timeout=0.5, breaker_failure_rate=50)
    topo = shop(replicas=2, workers=4, service_time=Exponential(0.002), policy=policy)
    speed, n = rate_of(topo, Poisson(500), 60, timeout=2.0)
    print(f"shop checkout path, breakers + retries:   {speed:,.0f} simulated requests/s ({n:,} requests)")
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
    sim = Simulation(single_tier(10, Exponential(service), balancer="p2c"), np.random.default_rng(1),
                     Poisson(900))
    profile.enable()
    sim.run(60)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
    print("\nwhere the time goes (single tier, cProfile, by own time):")
    print("\n".join(line for line in out.getvalue().splitlines() if "/" in line or "ncalls" in line))


if __name__ == "__main__":
    main()
