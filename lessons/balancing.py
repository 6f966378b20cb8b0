"""Lesson 04 (load balancing): every balancer on replicas of unequal speed, on the real mesh."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from mesh import Mesh
from mesh.workload.load import closed_loop

from .charts import compare_latencies
from .experiment import HELLO, Experiment

__all__ = ["compare_balancers", "plot_balancers"]


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



def plot_balancers(experiment):
    """Latency percentiles and each replica's share of the calls, per balancer."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
    compare_latencies(experiment.runs, ax=left, title="latency of OK calls")
    left.tick_params(axis="x", labelrotation=30)
    names = list(experiment.runs)
    replicas = sorted({k for n in names for k in experiment.notes[n]["share"]})
    bottom = np.zeros(len(names))
    for replica in replicas:
        counts = np.array([experiment.notes[n]["share"].get(replica, 0) for n in names], dtype=float)
        totals = np.array([max(sum(experiment.notes[n]["share"].values()), 1) for n in names])
        right.bar(names, counts / totals, bottom=bottom, label=replica)
        bottom += counts / totals
    for x, name in enumerate(names):
        right.text(x, 1.02, f"{experiment.notes[name]['calls_per_s']}/s", ha="center", fontsize=8)
    right.set_ylim(0, 1.12)
    right.set_ylabel("share of calls")
    right.tick_params(axis="x", labelrotation=30)
    right.legend(fontsize=8, loc="lower right")
    right.set_title("who served the calls (and calls per second)")
    figure.tight_layout()
    return figure

