"""Lesson 06 (a cascading failure, 雪崩) on the real mesh: fraud slows down, and the wait climbs the
call chain — payments, orders, the frontend — until browsing, which never touches fraud, slows too.

:func:`record_cascade` runs the demo shop (one replica of each service, each with a pool of 16
worker threads) under a steady load of checkouts and home pages, slows fraud part-way through, and
records the whole run for :class:`~lessons.replay.Replay`; with ``protections`` (per-service
policies of their callers, the fault-tolerance patterns of lesson 05) it runs again, to see where
each pattern stops the wave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mesh import Mesh, SteadyLoad
from mesh.pb import shop_pb2
from mesh.services import shop_topology

from .experiment import CHECKOUT, HOME, at
from .replay import Recorder, Recording

#: Timeouts and a breaker on the calls to fraud, and a bulkhead that keeps checkouts from taking
#: every one of the frontend's threads.
PROTECTIONS: dict[str, dict[str, Any]] = {
    "fraud": {"per_try_timeout": 0.1, "breaker_failure_rate": 50, "breaker_minimum_calls": 10,
              "breaker_window": 20, "breaker_wait": 1.0},
    "orders": {"bulkhead": 4},
}


@dataclass
class CascadeRun:
    """A recorded run and what the two kinds of user saw while fraud was slow."""

    label: str
    recording: Recording
    rows: list[dict[str, Any]]


def record_cascade(protections: dict[str, dict[str, Any]] | None = None, degrade: bool = False,
                   checkout_rate: float = 40.0, browse_rate: float = 20.0, fraud_delay: float = 0.5,
                   slow_at: float = 2.0, duration: float = 8.0, every: float = 0.25,
                   seed: int = 0) -> CascadeRun:
    """Run the shop for ``duration`` s under load, slow fraud by ``fraud_delay`` s from ``slow_at``,
    and record it (a snapshot every ``every`` s); ``protections`` are set before the load starts.

    With ``degrade``, a fraud score that cannot be had (timed out, breaker open) is taken as a
    medium risk — a fallback (降级), a business decision — so checkouts go through without it.

    The rows describe the calls that started from one second after the slow-down: how many were
    sent, the share that succeeded and their p50 and p99; for checkouts also ``reached_fraud``, the
    calls fraud received per checkout sent in that time (1.0 when every checkout waits for it).
    """
    label = ("protected" if protections else "unprotected") + (" + fallback" if degrade else "")
    window = slow_at + 1.0
    fraud_calls: dict[str, int] = {}
    with Mesh(shop_topology(1), name="cascade", seed=seed) as mesh:
        mesh.wait_until_passing()
        for service, policy in (protections or {}).items():
            mesh.set_policy(service, **policy)
        if degrade:
            mesh.fallback("fraud", "Score", static=shop_pb2.ScoreReply(risk=0.5))
        fraud = mesh.instance("fraud-1")
        frontend = mesh.client("frontend")
        with Recorder(mesh, every) as recorder:
            loads = {"checkout": SteadyLoad(frontend.Checkout, CHECKOUT, checkout_rate,
                                            np.random.default_rng(seed)),
                     "browse (home page)": SteadyLoad(frontend.Home, HOME, browse_rate,
                                                      np.random.default_rng(seed + 1))}

            def slow_fraud() -> None:
                mesh.inject("fraud-1", delay=fraud_delay)
                recorder.mark("fraud slowed")

            slow = at(slow_at, slow_fraud)
            counted = at(window, lambda: fraud_calls.setdefault("before", fraud.served))
            time.sleep(duration)
            slow.join()
            counted.join()
            for load in loads.values():
                load.stop(wait=True)
            fraud_calls["after"] = fraud.served
    rows = []
    for name, load in loads.items():
        during = [r for r in load.records if r.start >= window and r.code != "SHED"]
        ok = [r.latency * 1e3 for r in during if r.ok]
        reached = (fraud_calls["after"] - fraud_calls["before"]) / len(during) \
            if name == "checkout" and during else None
        rows.append({"run": label, "calls": name, "sent": len(during),
                     "ok_share": round(len(ok) / len(during), 3) if during else None,
                     "p50_ms": round(float(np.percentile(ok, 50)), 1) if ok else None,
                     "p99_ms": round(float(np.percentile(ok, 99)), 1) if ok else None,
                     "reached_fraud": None if reached is None else round(reached, 2)})
    return CascadeRun(label, recorder.recording, rows)


__all__ = ["PROTECTIONS", "CascadeRun", "record_cascade"]
