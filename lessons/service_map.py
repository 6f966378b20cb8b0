"""A live map of the mesh: services as nodes coloured by their instances' health in the registry,
calls as edges coloured by the callers' circuit breakers and labelled with their rate and error
share; click a service to see its instances.

The graph is the mesh's call graph as declared (the shop's ``SHOP_CALLS``, or ``calls=``) joined
with every edge its traces have seen (a gateway, a bus), with the notebook's ``client`` in front.
Twice a second the map reads discovery (who passes its health check), the callers' breakers
(:meth:`mesh.Mesh.breaker_states`), and the last ``window`` seconds of client metrics and traces.
"""

from __future__ import annotations

import html
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import bqplot as bq
import ipywidgets as widgets
import networkx as nx
import numpy as np

from mesh import Mesh
from mesh.policies import service_of

from .live import LivePanel, instance_state

HEALTH = {"up": "#2e7d32", "degraded": "#f9a825", "down": "#c62828", "caller": "#90a4ae"}
BREAKER = {"closed": "#2e7d32", "half_open": "#f9a825", "open": "#c62828", "none": "#9e9e9e"}
HIGHLIGHT = "#6a1b9a"


def call_graph(mesh: Mesh, calls: Mapping[str, Iterable[str]] | None = None) -> nx.DiGraph:
    """Return the services of ``mesh`` and who calls whom: declared calls, the shop's if it runs,
    and what the traces have seen; the notebook's ``client`` calls the services nobody else does."""
    services = {i.service for i in mesh.instances()}
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(services))
    if calls is None and "frontend" in services:
        from mesh.services import SHOP_CALLS

        calls = SHOP_CALLS
    for caller, callees in (calls or {}).items():
        for callee in callees:
            if caller in services and callee in services:
                graph.add_edge(caller, callee)
    for caller, callee in mesh.dependency_graph().edges():
        graph.add_edge(caller, callee)
    for service in sorted(services):
        if graph.in_degree(service) == 0:
            graph.add_edge("client", service)
    return graph


def worst_breakers(states: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """Return, per (caller service, callee), the worst state among the callers' instances' breakers
    (``states`` by caller instance, as :meth:`mesh.Mesh.breaker_states` gives them)."""
    rank = {"none": 0, "closed": 1, "half_open": 2, "open": 3}
    worst: dict[tuple[str, str], str] = {}
    for (caller, callee), state in states.items():
        edge = (service_of(caller), callee)
        if rank.get(state, 0) > rank[worst.get(edge, "none")]:
            worst[edge] = state
    return worst


def _layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Columns by call depth (callers left), each column spread top to bottom."""
    depth: dict[str, int] = {}
    order = nx.topological_sort(graph) if nx.is_directed_acyclic_graph(graph) else sorted(graph)
    for node in order:
        depth[node] = max((depth[p] + 1 for p in graph.predecessors(node) if p in depth), default=0)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in graph:
        columns[depth.get(node, 0)].append(node)
    positions = {}
    for column, nodes in columns.items():
        for row, node in enumerate(sorted(nodes)):
            positions[node] = (float(column), (row + 1) / (len(nodes) + 1))
    return positions


class MapView:
    """The drawing of a call graph from plain data: node colours and notes, edge colours and labels.

    The live map and the replay draw through it. Clicking a node calls ``on_click(service)``.
    """

    def __init__(self, title: str = "service map", on_click=None, height: str = "360px"):
        x, y = bq.LinearScale(min=-0.4, max=1.4), bq.LinearScale(min=-0.05, max=1.0)
        self.x = x
        scales = {"x": x, "y": y}
        self.edges = bq.Lines(x=[[0, 0]], y=[[0, 0]], scales=scales, colors=[BREAKER["none"]], stroke_width=3)
        self.edge_labels = bq.Label(x=[], y=[], text=[], scales=scales, default_size=11, align="middle",
                                    colors=["#37474f"])
        self.node_notes = bq.Label(x=[], y=[], text=[], scales=scales, default_size=10, align="middle",
                                   colors=["#37474f"])
        self.node_names = bq.Label(x=[], y=[], text=[], scales=scales, default_size=13, align="middle",
                                   font_weight="bold", colors=["#263238"])
        self.nodes = bq.Scatter(x=[], y=[], scales=scales, default_size=900, display_names=False,
                                colors=[HEALTH["up"]], stroke="#263238", unselected_style={"opacity": 0.35},
                                interactions={"click": "select"})
        marks = [self.edges, self.edge_labels, self.node_notes, self.nodes, self.node_names]
        self.figure = bq.Figure(marks=marks, title=title, layout={"height": height, "width": "100%"},
                                animation_duration=0,
                                fig_margin={"top": 40, "bottom": 10, "left": 10, "right": 60})
        self.graph = nx.DiGraph()
        self.node_colours: dict[str, str] = {}
        self.edge_colours: dict[tuple[str, str], str] = {}
        self._on_click = on_click
        self.nodes.on_element_click(self._clicked)

    def draw(self, graph: nx.DiGraph, node_colours: Mapping[str, str], edge_colours: Mapping[tuple, str],
             edge_labels: Mapping[tuple, str] | None = None, node_notes: Mapping[str, str] | None = None,
             lit: Iterable[str] = ()) -> None:
        """Draw ``graph``; services in ``lit`` stay bright and the others are dimmed (none: all bright)."""
        positions = _layout(graph)
        nodes, edges = list(graph), list(graph.edges())
        edge_labels, node_notes, lit = edge_labels or {}, node_notes or {}, set(lit)
        self.graph = graph
        self.node_colours = {n: node_colours.get(n, HEALTH["caller"]) for n in nodes}
        self.edge_colours = {e: edge_colours.get(e, BREAKER["none"]) for e in edges}
        with self.figure.hold_sync():
            self.edges.x = np.array([[positions[a][0], positions[b][0]] for a, b in edges]).reshape(-1, 2)
            self.edges.y = np.array([[positions[a][1], positions[b][1]] for a, b in edges]).reshape(-1, 2)
            self.edges.colors = list(self.edge_colours.values()) or [BREAKER["none"]]
            self.edge_labels.x = [(positions[a][0] + positions[b][0]) / 2 for a, b in edges]
            self.edge_labels.y = [(positions[a][1] + positions[b][1]) / 2 + 0.03 for a, b in edges]
            self.edge_labels.text = [edge_labels.get(e, "") for e in edges]
            self.node_notes.x = [positions[n][0] for n in nodes]
            self.node_notes.y = [positions[n][1] - 0.09 for n in nodes]
            self.node_notes.text = [node_notes.get(n, "") for n in nodes]
            self.nodes.x = np.array([positions[n][0] for n in nodes])
            self.nodes.y = np.array([positions[n][1] for n in nodes])
            self.node_names.x = [positions[n][0] for n in nodes]
            self.node_names.y = [positions[n][1] + 0.085 for n in nodes]
            self.node_names.text = nodes
            self.nodes.colors = list(self.node_colours.values())
            self.nodes.selected = [i for i, n in enumerate(nodes) if n in lit] or None
        self.x.max = max((x for x, _ in positions.values()), default=0.0) + 0.4

    def _clicked(self, _mark, event) -> None:
        if self._on_click is not None:
            self._on_click(list(self.graph)[event["data"]["index"]])


class ServiceMap(LivePanel):
    """The mesh's call graph, live: health, breakers, rates and errors; click a service for more."""

    def __init__(self, mesh: Mesh, calls: Mapping[str, Sequence[str]] | None = None, window: float = 5.0,
                 period: float = 0.5):
        self._calls = calls
        self.window = window
        self._born = time.monotonic()
        self.graph = call_graph(mesh, calls)
        self.selected = ""
        self.highlighted: set[tuple[str, str]] = set()
        self.view = MapView(on_click=lambda name: self.guard(lambda: self.select(name), refresh=False)())
        self.legend = widgets.HTML(
            "nodes: <span style='color:#2e7d32'>● all instances passing</span> "
            "<span style='color:#f9a825'>● some failing</span> <span style='color:#c62828'>● none</span>"
            " · edges (the callers' breakers): <span style='color:#2e7d32'>closed</span> "
            "<span style='color:#f9a825'>half-open</span> <span style='color:#c62828'>open</span> "
            "<span style='color:#9e9e9e'>no breaker</span> · labels: calls/s, % errors")
        self.details = widgets.HTML("<i>click a service to see its instances</i>")
        super().__init__(mesh, f"map:{mesh.name}", [self.view.figure, self.legend, self.details], period)
        self.refresh_now()

    @property
    def node_colours(self) -> dict[str, str]:
        return self.view.node_colours

    @property
    def edge_colours(self) -> dict[tuple[str, str], str]:
        return self.view.edge_colours

    # -- reading the mesh ------------------------------------------------------------------------
    def health(self) -> dict[str, str]:
        """Return each service's health: ``up`` (every running instance passes), ``degraded`` or ``down``."""
        found = {}
        for service in self.graph:
            if service in ("client", "gateway"):
                found[service] = "caller"
                continue
            instances = self.mesh.instances(service)
            passing = set(self.mesh.passing(service))
            up = sum(1 for i in instances if i.id in passing)
            found[service] = "up" if instances and up == len(instances) else "down" if up == 0 else "degraded"
        return found

    def breakers(self) -> dict[tuple[str, str], str]:
        """Return the worst breaker state on each edge (``none`` where no caller has a breaker)."""
        return worst_breakers(self.mesh.breaker_states())

    def traffic(self) -> dict[tuple[str, str], tuple[float, float]]:
        """Return (calls per second, error share) on each edge over the last ``window`` seconds."""
        calls, errors = Counter(), Counter()
        for row in self.mesh.metrics.recent(self.window, kind="client"):
            edge = (row["caller"], row["callee"])
            calls[edge] += 1
            errors[edge] += row["code"] != "OK"
        span = self._span()
        return {edge: (n / span, errors[edge] / n) for edge, n in calls.items()}

    def _span(self) -> float:
        """The seconds the rates are over: the window, or less while the map is younger than it."""
        return max(min(self.window, time.monotonic() - self._born), self.period)

    # -- drawing ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        # Only the last window's traces are read each time (all of them can be 100,000 spans); the
        # whole graph is made again only when they show a call the map does not have yet.
        seen = self.mesh.tracing.dependency_graph(self.window).edges()
        if any(not self.graph.has_edge(*edge) for edge in seen):
            self.graph = call_graph(self.mesh, self._calls)
        health, breakers, traffic = self.health(), self.breakers(), self.traffic()
        edges = list(self.graph.edges())
        colours = {e: HIGHLIGHT if e in self.highlighted else BREAKER[breakers.get(e, "none")] for e in edges}
        labels = {}
        for edge in edges:
            rate, error = traffic.get(edge, (0.0, 0.0))
            labels[edge] = f"{rate:.0f}/s" + (f", {error:.0%} err" if error else "")
        lit = {n for edge in self.highlighted for n in edge}
        self.view.draw(self.graph, {n: HEALTH[h] for n, h in health.items()}, colours, labels, lit=lit)
        if self.selected:
            self.details.value = self._describe(self.selected)

    def highlight(self, edges: Iterable[tuple[str, str]]) -> None:
        """Draw these edges (a request's path) in the highlight colour, and dim the other services."""
        self.highlighted = set(edges)
        self.refresh_now()

    def select(self, service: str) -> None:
        """Show the instances of ``service`` under the map (what clicking its node does)."""
        self.selected = service
        self.details.value = self._describe(service)

    def _describe(self, service: str) -> str:
        if service not in {i.service for i in self.mesh.instances()}:
            return f"<b>{html.escape(service)}</b> calls the mesh; it has no instances here."
        passing = set(self.mesh.passing(service))
        rows = {r["instance"]: r for r in self.mesh.metrics.summary()}
        recent = Counter(r["instance"] for r in self.mesh.metrics.recent(self.window))
        cells = []
        for instance in self.mesh.instances(service):
            faults = self.mesh.faults(instance)
            state = instance_state(instance, passing)
            summary = rows.get(instance.id, {})
            injected = ", ".join(f"{k} {v:g}" for k, v in (("delay s", faults.delay),
                                                             ("abort %", faults.abort_percent),
                                                             ("hang %", faults.hang_percent)) if v) or "-"
            p99 = f"{summary['p99'] * 1e3:.0f} ms" if summary else "-"
            rate = recent[instance.id] / self._span()
            cells.append(f"<tr><td>{html.escape(instance.id)}</td><td>{state}</td><td>{rate:.0f}</td>"
                         f"<td>{summary.get('errors', 0)}</td><td>{p99}</td>"
                         f"<td>{html.escape(injected)}</td></tr>")
        head = ("<tr><th>instance</th><th>registry</th><th>calls/s</th><th>errors (all time)</th>"
                "<th>p99 (all time)</th><th>faults</th></tr>")
        return f"<b>{html.escape(service)}</b><table>{head}{''.join(cells)}</table>"


__all__ = ["BREAKER", "HEALTH", "MapView", "ServiceMap", "call_graph", "worst_breakers"]
