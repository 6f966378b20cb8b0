"""What an experiment on the real mesh measured, and the helpers every such experiment uses.

Every experiment starts its own small mesh (and stops it), drives it with the load generator for a
bounded time, and returns an :class:`Experiment`: the records of each run (one row per request),
events to mark on a timeline, and a few figures. Runs are seeded; durations are short so that a
notebook runs in seconds, and every experiment takes ``duration`` to look longer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mesh import Mesh
from mesh.pb import greeter_pb2, shop_pb2
from mesh.workload import CallRecord

__all__ = ["CHECKOUT", "HELLO", "HOME", "Experiment", "at", "each_policy"]

HELLO = greeter_pb2.HelloRequest(name="Jason")


CHECKOUT = shop_pb2.CheckoutRequest(user="ada", items=[shop_pb2.Item(sku="apple", quantity=1)], card="4242")


HOME = shop_pb2.HomeRequest(user="ada", count=2)



@dataclass
class Experiment:
    """What one experiment measured: ``runs[label]`` is a list of records."""

    name: str
    runs: dict[str, list[CallRecord]] = field(default_factory=dict)
    marks: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per run: requests, OK, errors by status, p50 and p99 of the OK ones, and notes."""
        rows = []
        for label, records in self.runs.items():
            sent = [r for r in records if r.code != "SHED"]
            ok = [r.latency for r in sent if r.ok]
            rows.append({
                "run": label, "requests": len(sent), "ok": len(ok),
                "errors": dict(Counter(r.code for r in sent if not r.ok)),
                "fallbacks": sum(1 for r in sent if r.fallback),
                "p50_ms": round(float(np.percentile(ok, 50)) * 1e3, 1) if ok else None,
                "p99_ms": round(float(np.percentile(ok, 99)) * 1e3, 1) if ok else None,
                **self.notes.get(label, {}),
            })
        return rows


def each_policy(mesh: Mesh, service: str, settings: dict[str, dict]):
    """Yield (index, label) for each run, with ``service``'s policy reset and set for that run."""
    for i, (label, policy) in enumerate(tqdm(settings.items(), desc="runs")):
        mesh.reset_policy(service)
        if policy:
            mesh.set_policy(service, **policy)
        yield i, label


def at(delay: float, action: Callable[[], None]) -> threading.Timer:
    """Run ``action`` after ``delay`` seconds on a daemon timer thread (join it to wait for it)."""
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer

