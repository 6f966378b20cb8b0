"""Pictures and controls for the mesh: who answered, when instances were healthy, kill buttons.

Plots take an optional matplotlib ``ax`` and return it, so a notebook can place several side by
side. :class:`TourPanel` is an ipywidgets panel that updates itself from discovery's watch.
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import ipywidgets as widgets
import matplotlib.pyplot as plt
import networkx as nx
from IPython.display import HTML

from .traffic import CallRecord, burst, tally

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ._mesh import Mesh

_STATUS_COLOUR = {"passing": "#2e7d32", "warning": "#f9a825", "critical": "#c62828",
                  "deregistered": "#757575"}


def plot_spread(calls: Iterable[CallRecord] | Counter, instances: Sequence[str] = (),
                ax: Axes | None = None, title: str = "Which replica answered") -> Axes:
    """Draw a bar per replica (calls it served) and a red bar per error code."""
    counts = calls if isinstance(calls, Counter) else tally(calls)
    names = list(instances) or sorted(k for k in counts if "-" in k)
    errors = sorted(k for k in counts if k not in names and k.isupper())
    labels = names + errors
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    colours = ["#1565c0"] * len(names) + ["#c62828"] * len(errors)
    bars = ax.bar(labels, [counts.get(k, 0) for k in labels], color=colours)
    ax.bar_label(bars)
    ax.set_ylabel("calls")
    ax.set_title(title)
    ax.margins(y=0.15)
    return ax


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
                           color=_STATUS_COLOUR["passing"])
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


def health_html(rows: list[dict]) -> str:
    """Return an HTML table of :meth:`Mesh.health` rows, coloured by status."""
    cells = []
    for r in rows:
        colour = _STATUS_COLOUR.get(r["status"], "#000")
        cells.append(
            f"<tr><td>{html.escape(r['instance'])}</td><td>{html.escape(r['address'])}</td>"
            f"<td>{'running' if r['running'] else 'killed'}</td>"
            f"<td style='color:{colour};font-weight:bold'>{html.escape(r['status'])}</td>"
            f"<td><small>{html.escape(r['output'][:90])}</small></td></tr>"
        )
    head = "<tr><th>instance</th><th>address</th><th>process</th><th>check</th><th>output</th></tr>"
    return f"<table>{head}{''.join(cells)}</table>"


def health_table(rows: list[dict]) -> HTML:
    """Return :meth:`Mesh.health` rows as a table that a notebook displays (and saves)."""
    return HTML(health_html(rows))


def discovery_diagram(replicas: int = 3) -> Figure:
    """Draw client-side and server-side discovery side by side: who looks up, who calls whom."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    instances = [f"instance {i + 1}" for i in range(replicas)]
    colours = {"lookup": "#6a1b9a", "register": "#9e9e9e", "call": "#1565c0"}
    for ax, style in zip(axes, ("client-side", "server-side"), strict=True):
        graph = nx.DiGraph()
        caller = "client" if style == "client-side" else "proxy"
        pos = {caller: (0.0, 0.0), "registry": (0.0, 1.8)}
        if style == "server-side":
            graph.add_edge("client", caller, kind="call")
            pos["client"] = (-1.0, 0.0)
        graph.add_edge(caller, "registry", kind="lookup")
        for i, name in enumerate(instances):
            pos[name] = (1.0, (replicas - 1) / 2 - i)
            graph.add_edge(name, "registry", kind="register")
            graph.add_edge(caller, name, kind="call")
        for kind, colour in colours.items():
            edges = [(a, b) for a, b, k in graph.edges(data="kind") if k == kind]
            nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax, edge_color=colour, arrows=True,
                                   style="dashed" if kind == "register" else "solid", node_size=2200)
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_color="#e3f2fd", node_size=2200, edgecolors="#1565c0")
        nx.draw_networkx_labels(graph, pos, ax=ax, font_size=8)
        ax.set_title(f"{style} discovery")
        ax.axis("off")
        ax.margins(0.2, 0.3)
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in colours.items()]
    figure.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    return figure


def table(rows: list[dict]) -> HTML:
    """Return rows of dicts (experiment tables, metrics summaries) as an HTML table."""
    if not rows:
        return HTML("<i>no rows</i>")
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value) -> str:
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        return html.escape("" if value is None else str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def defects_table(defects: list[dict]) -> HTML:
    """Return the chapter's defects (``mesh.chapter.DEFECTS``) as a table."""
    head = "<tr><th>sample</th><th>as printed</th><th>problem</th><th>fix</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(d['sample'])}</td><td><code>{html.escape(d['printed'])}</code></td>"
        f"<td>{html.escape(d['problem'])}</td><td>{html.escape(d['fix'])}</td></tr>" for d in defects)
    return HTML(f"<table>{head}{rows}</table>")


def config_slider(config, name: str, low: int, high: int) -> widgets.VBox:
    """Return a slider that writes one integer setting to the config center, and shows it applied."""
    slider = widgets.IntSlider(value=getattr(config.current, name), min=low, max=high,
                               description=name, continuous_update=False)
    applied = widgets.HTML()

    def show(settings) -> None:
        applied.value = f"in force on every replica: <b>{name} = {getattr(settings, name)}</b>"

    slider.observe(lambda change: config.set(name, change["new"]), "value")
    config.subscribe(show)
    return widgets.VBox([slider, applied])


class TourPanel(widgets.VBox):
    """A live panel: the registry's view of each instance, kill/revive buttons, and a call button."""

    def __init__(self, mesh: Mesh, service: str, request, method: str = "SayHello", calls: int = 30):
        self.mesh, self.service, self.request, self.calls = mesh, service, request, calls
        self._method = getattr(mesh.client(service), method)
        self._table = widgets.HTML()
        self._chart = widgets.Output()
        self._buttons = {
            i.id: widgets.ToggleButton(description=f"kill {i.id}", value=False, icon="power-off")
            for i in mesh.instances(service)
        }
        for instance_id, button in self._buttons.items():
            button.observe(lambda change, i=instance_id: self._toggle(i, change["new"]), "value")
        send = widgets.Button(description=f"send {calls} calls", button_style="primary")
        send.on_click(lambda _: self.send())
        super().__init__([widgets.HBox([*self._buttons.values(), send]), self._table, self._chart])
        self._watch = mesh.discovery.watch(service)
        self._watch.subscribe(self._refresh)

    def _toggle(self, instance_id: str, killed: bool) -> None:
        if killed:
            self.mesh.kill(instance_id)
        else:
            self.mesh.revive(instance_id)
        self._buttons[instance_id].description = f"{'revive' if killed else 'kill'} {instance_id}"
        self._refresh()

    def _refresh(self, *_: object) -> None:
        if self.mesh.stopped:
            self._watch.unsubscribe(self._refresh)
            return
        self._table.value = health_html(self.mesh.health(self.service))

    def send(self) -> Counter:
        """Send the calls, redraw the bar chart, and return the tally."""
        records = burst(self._method, self.request, self.calls)
        with self._chart:
            self._chart.clear_output(wait=True)
            names = [i.id for i in self.mesh.instances(self.service)]
            plot_spread(records, names)
            plt.show()
        self._refresh()
        return tally(records)
