"""A sweep of 10,000 simulated configurations on Dask, and a smaller one serial and parallel.

    python bench/sim_sweep.py [--configs 10000]

The sweep is the README's one-liner: ``sweep(grid(replicas=range(1, 11),
load=np.linspace(0.05, 0.95, 100), seed=range(10)), single_tier_run)`` — each run a single tier of
``replicas`` replicas (exponential 10 ms service) at ``load`` of its capacity for 2 simulated
seconds. Printed: the local cluster's start-up time, the wall time of the whole sweep, and for
1,000 of its configurations (every tenth) the serial time against the parallel one (same
numbers, checked).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sim import close_local_cluster, grid, single_tier_run, sweep


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=10_000, help="configurations (a multiple of 1,000)")
    args = parser.parse_args()
    tasks = grid(replicas=range(1, 11), load=np.linspace(0.05, 0.95, 100), seed=range(args.configs // 1000))
    print(f"{len(tasks)} configurations on {os.cpu_count()} cores")
    _, start_up = timed(lambda: sweep([(1, 0.5, 0)] * 4, single_tier_run, desc="warm-up"))
    print(f"local cluster started (and 4 runs made) in {start_up:.1f} s")
    rows, whole = timed(lambda: sweep(tasks, single_tier_run, desc="sweep"))
    print(f"whole sweep, Dask local cluster: {whole:.1f} s ({len(rows) / whole:.0f} configurations/s)")
    subset = tasks[:: max(1, len(tasks) // 1000)][:1000]  # every tenth: all replica counts and loads
    parallel, t_parallel = timed(lambda: sweep(subset, single_tier_run, desc="1,000 parallel"))
    serial, t_serial = timed(lambda: sweep(subset, single_tier_run, parallel=False, desc="1,000 serial"))
    assert parallel == serial, "a parallel sweep must equal the serial one"
    print(f"1,000 configurations: serial {t_serial:.1f} s, Dask {t_parallel:.1f} s "
          f"({t_serial / t_parallel:.2f}x)")
    worst = max(rows, key=lambda r: r["p99_ms"])
    print(f"worst p99 of the sweep: {worst['p99_ms']:.0f} ms at {worst['replicas']} replica(s), load "
          f"{worst['load']:.2f}")
    close_local_cluster()


if __name__ == "__main__":
    main()
