"""One scenario on the real mesh and in simulation, side by side.

Two Greeter replicas with one worker each and a fixed service time, Poisson arrivals, round robin.
The mesh adds RPC and Python overhead to every call; it is measured first (unloaded calls) and
given to the model as ``network_delay``. What remains — thread scheduling on a shared machine,
timer granularity, the load generator's own jitter — is why the comparison has a tolerance
(:data:`TOLERANCE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import Deterministic, Poisson, Simulation, single_tier

TOLERANCE = 0.15  # relative difference of mean latency accepted between mesh and model


@dataclass
class Comparison:
    mesh_mean: float
    sim_mean: float
    overhead: float
    mesh_latencies: np.ndarray
    sim_latencies: np.ndarray

    @property
    def difference(self) -> float:
        """(mesh - simulation) / simulation."""
        return (self.mesh_mean - self.sim_mean) / self.sim_mean


def compare_with_mesh(
    service_time: float = 0.02, rate: float = 40.0, seconds: float = 6.0, replicas: int = 2, seed: int = 1
) -> Comparison:
    """Run the scenario on a real mesh (``seconds`` of load), then in simulation (three seeds)."""
    from mesh import Mesh
    from mesh.pb.greeter_pb2 import HelloRequest
    from mesh.workload.load import open_loop

    request = HelloRequest(name="twin")
    with Mesh({"greeter": replicas}, name="twin", seed=seed) as mesh:
        mesh.wait_until_passing()
        greeter = mesh.client("greeter")
        baseline = open_loop(
            greeter.SayHello, request, rate=20, duration=1.0, rng=np.random.default_rng(seed)
        ).wait()
        overhead = float(np.median([r.latency for r in baseline if r.ok]))
        for instance in mesh.instances():
            mesh.inject(instance, workers=1, service_time=service_time)
        records = open_loop(
            greeter.SayHello, request, rate=rate, duration=seconds, rng=np.random.default_rng(seed + 1)
        ).wait()
    mesh_latencies = np.array([r.latency for r in records if r.ok])
    topo = single_tier(replicas, Deterministic(service_time), balancer="round_robin")
    sims = [
        Simulation(topo, np.random.default_rng(seed + s), Poisson(rate), network_delay=overhead).run(200.0)
        for s in range(3)
    ]
    sim_latencies = np.concatenate([r.latencies() for r in sims])
    return Comparison(
        float(mesh_latencies.mean()),
        float(np.mean([r.mean_latency() for r in sims])),
        overhead,
        mesh_latencies,
        sim_latencies,
    )
