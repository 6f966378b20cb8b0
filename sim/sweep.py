"""Run independent simulations side by side on Dask: a sweep over parameters, seeds or policies.

``sweep(tasks, worker)`` returns ``[worker(*task) for task in tasks]``, in order. In parallel it
runs them on a Dask cluster (``dask.distributed``): by default a local one — worker processes on
this machine, started on the first parallel sweep and kept for the next ones until the kernel
exits or :func:`close_local_cluster` — or any cluster, by its scheduler's address
(``scheduler="tcp://10.0.0.5:8786"``). A run takes its seed from its task, so where it runs does
not change its numbers: a parallel sweep equals the serial one.

Tasks travel in chunks (a few dozen per worker), so that a sweep of thousands of short runs is
not dominated by scheduling one task at a time; the progress bar moves as chunks finish.
:func:`grid` makes the tasks of a full-factorial sweep, and :func:`single_tier_run` is one short,
self-contained run to sweep — the README's sweep of 10,000 configurations uses both.

Dask rather than a process pool of our own: the same call then reaches a class's cluster, shows
its progress on Dask's dashboard if one is wanted, and recovers from a worker that dies.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["close_local_cluster", "grid", "single_tier_run", "sweep"]

#: A sweep of fewer tasks than this runs serially: starting work elsewhere would cost more.
PARALLEL_FROM = 4

_local: dict[str, Any] = {}
_local_lock = threading.Lock()


def grid(**axes: Iterable[Any]) -> list[tuple]:
    """Return every combination of the axes' values, as tasks (tuples in the axes' order; the last
    axis varies fastest): ``grid(replicas=range(1, 4), seed=range(2))`` gives six tasks."""
    values = [list(v) for v in axes.values()]
    if any(not v for v in values):
        empty = [name for name, v in zip(axes, values, strict=True) if not v]
        raise ValueError(f"an axis of the grid has no values: {empty}")
    return list(itertools.product(*values))


def _run_chunk(worker: Callable[..., Any], tasks: Sequence[tuple]) -> list[Any]:
    return [worker(*task) for task in tasks]


def _local_client(workers: int):
    """The kernel's local cluster and its client, started on first use."""
    from distributed import Client, LocalCluster

    with _local_lock:
        client = _local.get("client")
        if client is not None and client.status == "running":
            return client
        # Worker processes are spawned (Dask's default), never forked: the kernel may hold gRPC
        # channels, and a fork after one exists can hang. Everything listens on loopback, on ports
        # the system picks (a fixed one would collide with a second kernel's cluster).
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
        _local.update(cluster=cluster, client=client)
        return client


def close_local_cluster() -> None:
    """Stop the local cluster's worker processes and scheduler (the next sweep starts a new one)."""
    with _local_lock:
        client, cluster = _local.pop("client", None), _local.pop("cluster", None)
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


atexit.register(close_local_cluster)


def sweep(tasks: Sequence[tuple], worker: Callable[..., Any], parallel: bool = True,
          desc: str = "runs", scheduler: str | None = None, max_workers: int = 4,
          chunk: int | None = None) -> list[Any]:
    """Return ``[worker(*task) for task in tasks]``, in order, with a progress bar.

    With ``parallel`` (and :data:`PARALLEL_FROM` tasks or more) the tasks run on Dask: on the
    cluster at ``scheduler`` if given, else on a local cluster of up to ``max_workers`` worker
    processes (one per core). ``worker`` and the tasks must then pickle (a module-level function
    is safest). ``chunk`` tasks go to a worker at a time (default: about 25 chunks per worker).
    A task that raises stops the sweep with its exception.
    """
    tasks = list(tasks)
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    if not parallel or len(tasks) < PARALLEL_FROM:
        return [worker(*t) for t in tqdm(tasks, desc=desc)]
    if scheduler is None:
        client = _local_client(max(1, min(max_workers, os.cpu_count() or 1)))
    else:
        from distributed import Client

        client = Client(scheduler, set_as_default=False)
    try:
        workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        size = chunk or max(1, math.ceil(len(tasks) / (workers * 25)))
        chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
        return _gather(client, worker, chunks, len(tasks), desc)
    finally:
        if scheduler is not None:
            client.close()


def _gather(client, worker: Callable[..., Any], chunks: list[list[tuple]], total: int,
            desc: str) -> list[Any]:
    from distributed import as_completed

    futures = client.map(_run_chunk, [worker] * len(chunks), chunks, pure=False)
    index = {future.key: n for n, future in enumerate(futures)}
    done: list[list[Any] | None] = [None] * len(chunks)
    try:
        with tqdm(total=total, desc=desc) as bar:
            for future in as_completed(futures, loop=client.loop):
                n = index[future.key]
                done[n] = future.result()  # a task's exception is raised here
                bar.update(len(chunks[n]))
    finally:
        client.cancel(futures)  # after a failure (or an interrupt), the rest stop too
    return [result for part in done for result in part]


def single_tier_run(replicas: int, load: float, seed: int, service: float = 0.01,
                    duration: float = 2.0, balancer: str = "round_robin") -> dict[str, Any]:
    """Simulate ``replicas`` replicas (exponential service times of mean ``service`` s) at ``load``
    (a share of their capacity) for ``duration`` simulated seconds; return the configuration with
    its p50 and p99 in ms, and its goodput (calls answered well per second)."""
    from .arrivals import Poisson
    from .distributions import Exponential
    from .model import Simulation
    from .topology import single_tier

    simulation = Simulation(single_tier(replicas, Exponential(service), balancer=balancer),
                            np.random.default_rng(seed), Poisson(load * replicas / service))
    results = simulation.run(duration, warmup=duration / 10)
    return {"replicas": replicas, "load": load, "seed": seed, "balancer": balancer,
            "p50_ms": results.percentile(50) * 1e3, "p99_ms": results.percentile(99) * 1e3,
            "goodput": results.goodput()}
