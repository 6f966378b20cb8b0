"""Closed-loop saturation throughput of the Greeter mesh, instances in the kernel against
instances as OS processes, one run side by side.

    python bench/process_mode.py [--replicas 2] [--users 32] [--seconds 8] [--work-ms 1]

The full client stack in both (discovery, P2C, breaker, retries with a budget, per-try timeout,
tracing, metrics), calling from the benchmark's process. Each instance does ``--work-ms`` of
CPU work per call (a busy loop, holding its interpreter as real request handling would), so
the question is the one the mode answers: how much does it help that the servers no longer share
the caller's interpreter? Rounds alternate between the modes so that drift on a shared machine
hits both alike; printed: calls answered per second in each round, the medians, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from mesh import Mesh
from mesh.pb import greeter_pb2
from mesh.workload.load import closed_loop

HELLO = greeter_pb2.HelloRequest(name="Jason")


def saturation(mesh: Mesh, users: int, seconds: float) -> float:
    run = closed_loop(mesh.client("greeter").SayHello, HELLO, users=users, duration=seconds,
                      rng=np.random.default_rng(0), timeout=5.0)
    records = run.wait()
    return sum(r.ok for r in records) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-ms", type=float, default=1.0, help="CPU work per call, in ms")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"kernel": [], "processes": []}
    meshes = {mode: Mesh({"greeter": args.replicas}, mode=mode, name=f"bench-{mode}", seed=1)
              for mode in results}
    try:
        for mesh in meshes.values():
            mesh.wait_until_passing()
            mesh.set_policy("greeter", balancer="p2c", max_attempts=3, per_try_timeout=1.0, budget_tokens=10,
                            breaker_failure_rate=50)
            mesh.config("greeter").set("cpu_ms", args.work_ms)
            mesh.config("greeter").wait_for(lambda s: s.cpu_ms == args.work_ms)
            saturation(mesh, args.users, 1.0)  # warm up
        for round_ in range(args.rounds):
            for mode in (("kernel", "processes") if round_ % 2 == 0 else ("processes", "kernel")):
                results[mode].append(saturation(meshes[mode], args.users, args.seconds))
                print(f"round {round_ + 1} {mode:9}: {results[mode][-1]:8.0f} calls/s")
    finally:
        for mesh in meshes.values():
            mesh.stop()
    kernel, processes = (statistics.median(results[m]) for m in ("kernel", "processes"))
    print(f"median: kernel {kernel:.0f} calls/s, processes {processes:.0f} calls/s, "
          f"ratio {processes / kernel:.2f}x ({args.replicas} replicas, {args.users} users, "
          f"{args.work_ms:g} ms of CPU work a call)")


if __name__ == "__main__":
    main()
