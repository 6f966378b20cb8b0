"""Record a run, then replay it: a time slider (with play) scrubs the service map through the run,
with every service's p99 latency below it and a cursor at the moment shown — to watch a failure
climb the call chain, and see where a protection stops it.

A :class:`Recording` is a list of :class:`Snapshot`: per service, the instances up, the calls in
flight, the p99 latency and the error share of the calls that ended in the interval; per edge,
the callers' worst breaker state and the calls per second. :class:`Recorder` takes them from a
running mesh; :func:`from_simulation` from a simulation run with ``sample_every`` — the same
picture either way.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import bqplot as bq
import ipywidgets as widgets
import networkx as nx
import numpy as np

from mesh import Mesh
from sim import Results, Topology

from .live import shown_in
from .live_charts import series_lines, show_series
from .service_map import BREAKER, MapView, call_graph, worst_breakers

STRAIN = {"calm": "#2e7d32", "strained": "#f9a825", "slow": "#c62828", "failing fast": "#6a1b9a",
          "down": "#212121", "idle": "#b0bec5"}


@dataclass(frozen=True)
class Snapshot:
    """The mesh (or the model) at one moment, ``time`` seconds into the recording."""

    time: float
    up: Mapping[str, tuple[int, int]]  # service -> (instances up, instances)
    in_flight: Mapping[str, int]
    p99: Mapping[str, float]  # service -> ms, of the calls that ended in the interval (nan: none did)
    errors: Mapping[str, float]  # service -> share of those calls that failed
    breakers: Mapping[tuple[str, str], str]  # (caller, callee) -> the callers' worst breaker state
    rates: Mapping[tuple[str, str], float]  # (caller, callee) -> calls per second


@dataclass
class Recording:
    graph: nx.DiGraph
    snapshots: list[Snapshot] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (time, what happened)

    @property
    def services(self) -> list[str]:
        return [n for n in self.graph if n not in ("client", "gateway")]

    def series(self, service: str, what: str = "p99") -> np.ndarray:
        """Return one value per snapshot: ``p99``, ``errors`` or ``in_flight`` of ``service``."""
        return np.array([getattr(s, what).get(service, math.nan) for s in self.snapshots], dtype=float)

    def baseline(self, service: str) -> float:
        """The service's usual p99: the median over the first fifth of the recording."""
        values = self.series(service)[: max(len(self.snapshots) // 5, 1)]
        values = values[~np.isnan(values)]
        return float(np.median(values)) if len(values) else math.nan

    def strain(self, snapshot: Snapshot, service: str) -> str:
        """How a service is doing at a snapshot: ``slow`` (p99 over 10x its usual), ``failing fast``
        (most calls fail, quickly), ``strained`` (p99 over 3x, or errors over 5%), ``calm``, ``down``
        (no instance up) or ``idle`` (no call ended in the interval)."""
        up, instances = snapshot.up.get(service, (1, 1))
        if instances and up == 0:
            return "down"
        p99, errors = snapshot.p99.get(service, math.nan), snapshot.errors.get(service, 0.0)
        if math.isnan(p99):
            return "idle"
        usual = self.baseline(service)
        slower = p99 / usual if usual and not math.isnan(usual) else 1.0
        if slower > 10:
            return "slow"
        if errors > 0.5:
            return "failing fast"
        return "strained" if slower > 3 or errors > 0.05 else "calm"


class Recorder:
    """Take a :class:`Snapshot` of ``mesh`` every ``every`` seconds on a background thread, until
    :meth:`stop` (or the end of a ``with`` block); :meth:`mark` notes what happened when."""

    def __init__(self, mesh: Mesh, every: float = 0.25, calls: Mapping[str, Sequence[str]] | None = None):
        self.mesh = mesh
        self.every = every
        self.recording = Recording(call_graph(mesh, calls))
        self._calls = calls
        self._started = time.monotonic()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"recorder-{mesh.name}", daemon=True)
        self._thread.start()

    def mark(self, label: str) -> None:
        self.recording.marks.append((time.monotonic() - self._started, label))

    def stop(self) -> Recording:
        self._halt.set()
        self._thread.join()
        self.recording.graph = call_graph(self.mesh, self._calls)  # with what the traces have shown since
        return self.recording

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._halt.wait(self.every) and not self.mesh.stopped:
            self.recording.snapshots.append(self.snapshot())

    def snapshot(self) -> Snapshot:
        mesh = self.mesh
        services = sorted({i.service for i in mesh.instances()})
        up = {}
        for service in services:
            passing = set(mesh.passing(service))
            instances = mesh.instances(service)
            up[service] = (sum(1 for i in instances if i.running and i.id in passing), len(instances))
        owner = {i.id: i.service for i in mesh.instances()}
        in_flight: Counter = Counter()
        for instance, count in mesh.in_flight().items():
            in_flight[owner.get(instance, "")] += count
        latencies, failed = defaultdict(list), Counter()
        for row in mesh.metrics.recent(self.every):
            latencies[row["service"]].append(row["latency"] * 1e3)
            failed[row["service"]] += row["code"] != "OK"
        client_rows = mesh.metrics.recent(self.every, kind="client")
        calls = Counter((row["caller"], row["callee"]) for row in client_rows)
        return Snapshot(
            time=time.monotonic() - self._started, up=up, in_flight=dict(in_flight),
            p99={s: float(np.percentile(v, 99)) for s, v in latencies.items()},
            errors={s: failed[s] / len(v) for s, v in latencies.items()},
            breakers=worst_breakers(mesh.breaker_states()),
            rates={edge: n / self.every for edge, n in calls.items()})


def from_simulation(results: Results, topology: Topology) -> Recording:
    """Return a simulation run (made with ``sample_every``) as a recording, snapshot per sample."""
    if not results.services:
        raise ValueError("this run kept no service samples: simulate with sample_every=...")
    graph = nx.DiGraph(topology.graph().edges())
    graph.add_nodes_from(topology.services)
    graph.add_edge("client", topology.entry)
    times = sorted({s.time for s in results.services})
    step = times[1] - times[0] if len(times) > 1 else 1.0
    by_time = defaultdict(list)
    for sample in results.services:
        by_time[sample.time].append(sample)
    rates = defaultdict(dict)
    for edge in results.edges:
        rates[edge.time][(edge.caller, edge.callee)] = edge.calls / step
    transitions = sorted(results.transitions)
    states: dict[tuple[str, str], str] = {}
    recording = Recording(graph)
    applied = 0
    for t in times:
        while applied < len(transitions) and transitions[applied].time <= t:
            change = transitions[applied]
            states[(change.caller, change.service)] = change.target
            applied += 1
        samples = by_time[t]
        recording.snapshots.append(Snapshot(
            time=t, up={s.service: (s.up, s.instances) for s in samples},
            in_flight={s.service: s.in_flight for s in samples},
            p99={s.service: s.p99 * 1e3 for s in samples if s.ended},
            errors={s.service: s.failed / s.ended for s in samples if s.ended},
            breakers=worst_breakers(states), rates=rates.get(t, {})))
    return recording


class Replay(widgets.VBox):
    """The map at one moment of a recording, a slider (and play button) to move through it, and each
    service's p99 over the whole run with a cursor at that moment."""

    def __init__(self, recording: Recording, title: str = "replay"):
        if not recording.snapshots:
            raise ValueError("the recording has no snapshot: record for longer than one interval")
        self.recording = recording
        last = len(recording.snapshots) - 1
        self.view = MapView(title=title, height="320px")
        self.play = widgets.Play(min=0, max=last, interval=150, description="play")
        self.slider = widgets.IntSlider(min=0, max=last, description="moment", continuous_update=True,
                                        readout=False, layout=widgets.Layout(width="420px"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.clock = widgets.HTML()
        self.notice = widgets.HTML()
        self._chart(recording)
        self.slider.observe(shown_in(self.notice, lambda change: self.show(change["new"])), "value")
        legend = widgets.HTML(
            "nodes: <span style='color:#2e7d32'>● calm</span> <span style='color:#f9a825'>● strained "
            "(p99 over 3× its usual, or errors over 5%)</span> <span style='color:#c62828'>● slow (p99 over "
            "10×)</span> <span style='color:#6a1b9a'>● failing fast (most calls fail, quickly)</span> "
            "<span style='color:#212121'>● down</span> <span style='color:#b0bec5'>● no call ended</span> · "
            "under each: p99 and calls in flight · edges: the callers' breakers, calls/s")
        super().__init__([widgets.HBox([self.play, self.slider, self.clock]), self.view.figure, legend,
                          self.figure, self.notice])
        self.show(0)

    def _chart(self, recording: Recording) -> None:
        times = np.array([s.time for s in recording.snapshots])
        services = recording.services
        ys = np.vstack([recording.series(s) for s in services]) if services else np.empty((0, len(times)))
        x, y = bq.LinearScale(), bq.LogScale()
        colours = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#9e9d24"]
        self.lines = series_lines(services, colours * (len(services) // len(colours) + 1), {"x": x, "y": y})
        show_series(self.lines, times, list(ys))
        top = np.nanmax(ys) if np.isfinite(ys).any() else 1.0
        bottom = np.nanmin(ys) if np.isfinite(ys).any() else 0.1
        self.cursor = bq.Lines(x=[times[0], times[0]], y=[max(bottom, 1e-3), top], scales={"x": x, "y": y},
                               colors=["#212121"], line_style="dashed")
        marks = [bq.Lines(x=[t, t], y=[max(bottom, 1e-3), top], scales={"x": x, "y": y}, colors=["#9e9e9e"])
                 for t, _ in recording.marks]
        labels = bq.Label(x=[t for t, _ in recording.marks], y=[top] * len(recording.marks),
                          text=[m for _, m in recording.marks], scales={"x": x, "y": y}, default_size=10,
                          colors=["#424242"])
        axes = [bq.Axis(scale=x, label="seconds"), bq.Axis(scale=y, side="left", label="p99 ms",
                                                          tick_format=",.5~g")]
        self.figure = bq.Figure(marks=[*self.lines, *marks, labels, self.cursor], axes=axes,
                                title="p99 latency of each service", legend_location="top-left",
                                layout={"height": "260px", "width": "100%"}, animation_duration=0)

    def show(self, index: int) -> None:
        """Draw the map as it was at snapshot ``index``, and move the cursor there."""
        recording = self.recording
        snapshot = recording.snapshots[index]
        colours, notes = {}, {}
        for service in recording.services:
            colours[service] = STRAIN[recording.strain(snapshot, service)]
            p99 = snapshot.p99.get(service, math.nan)
            shown = "-" if math.isnan(p99) else f"{p99:.0f} ms" if p99 < 1000 else f"{p99 / 1000:.1f} s"
            notes[service] = f"p99 {shown} · {snapshot.in_flight.get(service, 0)} in flight"
        edges = list(recording.graph.edges())
        edge_colours = {e: BREAKER[snapshot.breakers.get(e, "none")] for e in edges}
        labels = {e: f"{snapshot.rates.get(e, 0.0):.0f}/s" for e in edges}
        self.view.draw(recording.graph, colours, edge_colours, labels, notes)
        self.cursor.x = [snapshot.time, snapshot.time]
        happened = [html.escape(label) for t, label in recording.marks if t <= snapshot.time]
        self.clock.value = f"<b>{snapshot.time:5.2f} s</b>" + (f" · after: {', '.join(happened)}" if happened
                                                                 else "")
        self.moment = snapshot


__all__ = ["STRAIN", "Recorder", "Recording", "Replay", "Snapshot", "from_simulation"]
