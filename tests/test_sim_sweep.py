"""Simulation sweeps on Dask: in order, equal to the serial run for the same seeds, on the local
cluster or on any scheduler by address, with a failing run reported and no process left behind."""

from __future__ import annotations

import contextlib
import os

import psutil
import pytest

from sim import close_local_cluster, grid, single_tier_run, sweep


@pytest.fixture(autouse=True, scope="module")
def _local_cluster_closed_after():
    """The local Dask cluster these sweeps start is stopped when the module is done (its threads
    and worker processes would otherwise live until pytest exits)."""
    yield
    close_local_cluster()


def _where(n: int) -> tuple[int, int]:
    return n, os.getpid()


def _fails_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("run 3 went wrong")
    return n


def _workers_of_this_process() -> list[psutil.Process]:
    """Dask's worker processes below this one that are still alive (Dask titles them)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "dask worker" in " ".join(process.cmdline()) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_grid_is_every_combination_in_the_axes_order():
    assert grid(replicas=(1, 2), seed=range(3)) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert len(grid(a=range(10), b=range(10), c=range(100))) == 10_000
    with pytest.raises(ValueError, match=r"no values: \['seed'\]"):
        grid(replicas=(1, 2), seed=())


def test_a_small_sweep_stays_in_the_kernel_and_a_larger_one_goes_to_worker_processes():
    assert {pid for _, pid in sweep([(n,) for n in range(3)], _where)} == {os.getpid()}
    runs = sweep([(n,) for n in range(9)], _where, chunk=2)
    assert [n for n, _ in runs] == list(range(9))  # in task order, whichever worker ran which chunk
    assert os.getpid() not in {pid for _, pid in runs}
    assert {pid for _, pid in sweep([(n,) for n in range(9)], _where, parallel=False)} == {os.getpid()}


@pytest.mark.slow
def test_a_parallel_sweep_equals_the_serial_one_whatever_the_chunks():
    tasks = grid(replicas=(1, 3, 4), load=(0.5, 0.9), seed=(0, 1))
    serial = sweep(tasks, single_tier_run, parallel=False)
    assert sweep(tasks, single_tier_run, chunk=5) == serial  # 12 runs: chunks of 5, 5 and 2
    assert sweep(tasks, single_tier_run, chunk=1) == serial
    by = {(r["replicas"], r["load"], r["seed"]): r for r in serial}
    assert by[(4, 0.9, 0)]["p99_ms"] < by[(1, 0.9, 0)]["p99_ms"]  # pooled replicas queue less
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        sweep(tasks, single_tier_run, chunk=0)


def test_a_failing_run_stops_the_sweep_with_its_error_and_the_cluster_stays_usable():
    with pytest.raises(ValueError, match="run 3 went wrong"):
        sweep([(n,) for n in range(8)], _fails_on_three, chunk=1)
    assert [n for n, _ in sweep([(n,) for n in range(8)], _where)] == list(range(8))


@pytest.mark.slow
def test_a_sweep_runs_on_any_scheduler_by_its_address():
    from distributed import LocalCluster

    tasks = grid(replicas=(1, 2), load=(0.5, 0.8), seed=(0,))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:
        remote = sweep(tasks, single_tier_run, scheduler=cluster.scheduler_address)
        assert remote == sweep(tasks, single_tier_run, parallel=False)
        assert "tcp://127.0.0.1:" in cluster.scheduler_address


def test_closing_the_local_cluster_leaves_no_process_behind():
    sweep([(n,) for n in range(4)], _where)
    assert _workers_of_this_process()
    close_local_cluster()
    for process in _workers_of_this_process():
        with contextlib.suppress(psutil.NoSuchProcess):
            process.wait(timeout=10)
    assert _workers_of_this_process() == []
    assert [n for n, _ in sweep([(n,) for n in range(4)], _where)] == [0, 1, 2, 3]  # a new one starts
