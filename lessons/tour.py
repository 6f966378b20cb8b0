"""Lesson 00 (the tour): a live panel with kill/revive buttons and a call button, and a timeline of
when discovery listed each instance.

:class:`TourPanel` is an ipywidgets panel that updates itself from discovery's watch.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import ipywidgets as widgets
import matplotlib.pyplot as plt

from mesh.workload.traffic import burst, tally

from .charts import plot_spread
from .display import STATUS_COLOUR, health_html, health_table
from .live import LivePanel, set_killed

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from mesh import Mesh

__all__ = ["HealthTimeline", "TourPanel", "health_table", "plot_spread"]


class HealthTimeline:
    """Record when discovery saw each instance passing, and draw it against kills and revives."""

    def __init__(self, mesh: Mesh, service: str):
        self.mesh = mesh
        self.service = service
        self.start = time.monotonic()
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._lock = threading.Lock()
        self._watch = mesh.discovery.watch(service)
        self._watch.subscribe(self._record)

    def _record(self, endpoints) -> None:
        with self._lock:
            self.samples.append((time.monotonic(), frozenset(e.id for e in endpoints)))

    def close(self) -> None:
        self._watch.unsubscribe(self._record)

    def intervals(self) -> dict[str, list[tuple[float, float]]]:
        """Return, per instance, the (start, end) seconds during which discovery listed it."""
        with self._lock:
            samples = list(self.samples)
        now = time.monotonic()
        spans: dict[str, list[tuple[float, float]]] = {i.id: [] for i in self.mesh.instances(self.service)}
        for (t, ids), nxt in zip(samples, [s[0] for s in samples[1:]] + [now], strict=True):
            for instance in ids:
                spans.setdefault(instance, []).append((t - self.start, nxt - self.start))
        return spans

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draw a green band while each instance was discoverable; mark kills and revives."""
        spans = self.intervals()
        names = sorted(spans)
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.2))
        for row, name in enumerate(names):
            ax.broken_barh([(a, b - a) for a, b in spans[name]], (row - 0.35, 0.7),
                           color=STATUS_COLOUR["passing"])
        for event in self.mesh.events:
            if event.instance in names and event.time >= self.start and event.action != "start":
                row = names.index(event.instance)
                marker, colour = ("X", "#c62828") if event.action == "kill" else ("^", "#1565c0")
                ax.plot(event.time - self.start, row, marker, color=colour, markersize=12,
                        label=event.action)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            unique = dict(zip(labels, handles, strict=True))
            ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1, 1))
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("seconds since the timeline started")
        ax.set_title("When discovery listed each instance as passing")
        return ax


class TourPanel(LivePanel):
    """A live panel: the registry's view of each instance, kill/revive buttons, and a call button.

    It reads the mesh every ``period`` seconds, so a replica killed or revived in code shows here
    too; when the mesh stops it says so and disables its buttons.
    """

    def __init__(self, mesh: Mesh, service: str, request, method: str = "SayHello", calls: int = 30,
                 period: float = 1.0):
        self.service, self.request, self.calls = service, request, calls
        self._method = getattr(mesh.client(service), method)
        self._table = widgets.HTML()
        self._chart = widgets.Output()
        self._buttons = {
            i.id: widgets.ToggleButton(description=f"kill {i.id}", value=False, icon="power-off")
            for i in mesh.instances(service)
        }
        self._send = widgets.Button(description=f"send {calls} calls", button_style="primary")
        controls = widgets.HBox([*self._buttons.values(), self._send])
        super().__init__(mesh, f"tour:{mesh.name}:{service}", [controls, self._table, self._chart], period)
        for instance_id, button in self._buttons.items():
            button.observe(self.guard(lambda change, i=instance_id: set_killed(self.mesh, i, change["new"])),
                           "value")
        self._send.on_click(self.guard(lambda _: self.send(), refresh=False))
        self.refresh_now()

    def refresh(self) -> None:
        """Show each replica as the registry and the mesh have it (changes made in code included)."""
        for instance_id, button in self._buttons.items():
            killed = not self.mesh.instance(instance_id).running
            if button.value != killed:
                button.value = killed
            button.description = f"{'revive' if killed else 'kill'} {instance_id}"
        self._table.value = health_html(self.mesh.health(self.service))

    def send(self) -> Counter:
        """Send the calls, redraw the bar chart, and return the tally."""
        records = burst(self._method, self.request, self.calls)
        with self._chart:
            self._chart.clear_output(wait=True)
            names = [i.id for i in self.mesh.instances(self.service)]
            plot_spread(records, names)
            plt.show()
        self.refresh_now()
        return tally(records)
