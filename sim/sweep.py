"""Run independent simulations side by side: a sweep over parameters, seeds or policies."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tqdm.auto import tqdm


def sweep(tasks: Sequence[tuple], worker: Callable[..., Any], parallel: bool = True,
          desc: str = "runs", max_workers: int = 4) -> list[Any]:
    """Return ``[worker(*task) for task in tasks]``, in order, with a progress bar.

    With ``parallel`` (and four tasks or more) the tasks run in processes that are spawned, never
    forked: the kernel may hold gRPC channels, and a fork after one exists can hang. ``worker``
    must then be importable by name (a module-level function).
    """
    if not parallel or len(tasks) < 4:
        return [worker(*t) for t in tqdm(tasks, desc=desc)]
    context = multiprocessing.get_context("spawn")
    workers = min(max_workers, multiprocessing.cpu_count())
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(worker, *t) for t in tasks]
        return [f.result() for f in tqdm(futures, desc=desc)]
