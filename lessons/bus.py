"""Lesson 09 (message bus): at-least-once delivery, seen from a billing consumer — duplicates,
idempotency, lag and backlog — and its picture.

:func:`deliver_orders` starts a mesh with a bus, publishes ``orders`` "order placed" events at
``rate`` per second to the topic ``orders``, and lets a billing consumer charge each order. With
``lose_ack_percent`` the consumer crashes between charging and acknowledging, so the bus delivers
again after ``ack_deadline``: a plain consumer charges twice, an idempotent one does not. A
``pause`` (start, end) takes the consumer away for a while: the backlog grows, then drains, and
the lag of the orders published meanwhile shows how eventual "eventually consistent" is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from mesh import Mesh
from mesh.bus import Bus, Consumer, Handled

__all__ = ["BusRun", "deliver_orders", "plot_bus"]


@dataclass
class BusRun:
    label: str
    published: int
    handled: list[Handled]
    charges: Counter
    backlog: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, backlog)
    dead_lettered: int = 0
    start: float = 0.0  # on the bus's clock

    def summary(self) -> dict:
        done = [h for h in self.handled if not h.skipped]
        lags = [h.lag for h in done]
        return {"run": self.label, "published": self.published, "orders charged": len(self.charges),
                "charged twice or more": sum(1 for n in self.charges.values() if n > 1),
                "deliveries": len(self.handled), "skipped as seen": sum(h.skipped for h in self.handled),
                "dead-lettered": self.dead_lettered,
                "lag p50 ms": round(float(np.percentile(lags, 50)) * 1e3, 1) if lags else None,
                "lag max ms": round(max(lags) * 1e3, 1) if lags else None}


def deliver_orders(orders: int = 200, rate: float = 400.0, lose_ack_percent: float = 0.0,
                   idempotent: bool = False, ack_deadline: float = 0.2,
                   pause: tuple[float, float] | None = None, timeout: float = 10.0, seed: int = 0,
                   label: str = "") -> BusRun:
    """Publish ``orders`` events and run a billing consumer until every one is acknowledged."""
    charges: Counter = Counter()
    with Mesh(name="bus-demo", seed=seed) as mesh:
        bus = Bus(mesh)
        bus.create_topic("orders")
        bus.subscribe("billing", "orders", ack_deadline=ack_deadline, max_deliveries=10)
        start = bus.clock()
        backlog: list[tuple[float, int]] = []
        with Consumer(bus, "billing", lambda data, attrs: charges.update([attrs["order"]]),
                      idempotent=idempotent, lose_ack_percent=lose_ack_percent,
                      rng=np.random.default_rng(seed)) as consumer:
            paused = False
            for n in range(orders):
                due = start + n / rate
                while (now := bus.clock()) < due:
                    time.sleep(min(due - now, 0.005))
                paused = _pace(consumer, pause, now - start, paused)
                bus.publish("orders", f"order {n}", order=f"o-{n}")
                if n % 10 == 0:
                    backlog.append((now - start, bus.backlog("billing")))
            deadline = bus.clock() + timeout
            while bus.clock() < deadline:
                elapsed = bus.clock() - start
                paused = _pace(consumer, pause, elapsed, paused)
                waiting = bus.backlog("billing")
                backlog.append((elapsed, waiting))
                if waiting == 0 and not paused:
                    break
                time.sleep(0.01)
            consumer.stop()
        dead = len(bus.dead_letters("billing"))
    return BusRun(label or _label(lose_ack_percent, idempotent, pause), orders, list(consumer.handled),
                  charges, backlog, dead, start)


def _pace(consumer: Consumer, pause: tuple[float, float] | None, elapsed: float, paused: bool) -> bool:
    """Pause or resume the consumer as ``pause`` says; return whether it is paused now."""
    if pause is None:
        return False
    inside = pause[0] <= elapsed < pause[1]
    if inside and not paused:
        consumer.pause()
    elif paused and not inside:
        consumer.resume()
    return inside


def _label(lose: float, idempotent: bool, pause) -> str:
    parts = [f"{lose:g}% acks lost" if lose else "no acks lost", "idempotent" if idempotent else "plain"]
    if pause:
        parts.append(f"consumer away {pause[0]:g}-{pause[1]:g} s")
    return ", ".join(parts)


def plot_bus(runs: Sequence[Any], axes=None):
    """Draw bus runs (:class:`BusRun`) side by side: the subscription's backlog over
    time (top) and each handling's lag from publish to consumer (bottom), a second handling of
    the same message in red, a skipped duplicate in grey."""
    if axes is None:
        _, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 4.6), sharey="row",
                               squeeze=False, layout="constrained")
    for column, run in enumerate(runs):
        backlog_ax, lag_ax = axes[0][column], axes[1][column]
        if run.backlog:
            times, sizes = zip(*run.backlog, strict=True)
            backlog_ax.step(times, sizes, where="post", color="#1565c0")
        backlog_ax.set_title(run.label, fontsize=9)
        seen: set[str] = set()
        colours, xs, ys = [], [], []
        for handled in run.handled:
            again = handled.message_id in seen and not handled.skipped
            seen.add(handled.message_id)
            colours.append("#9e9e9e" if handled.skipped else "#c62828" if again else "#2e7d32")
            xs.append(handled.handled_at - run.start)
            ys.append(handled.lag * 1e3)
        lag_ax.scatter(xs, ys, c=colours, s=6)
        lag_ax.set_xlabel("seconds")
    axes[0][0].set_ylabel("backlog (messages)")
    axes[1][0].set_ylabel("publish → handled, ms")
    kinds = [Patch(color="#2e7d32", label="handled"), Patch(color="#c62828", label="handled again"),
             Patch(color="#9e9e9e", label="seen: skipped")]
    axes[1][-1].legend(handles=kinds, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return axes

