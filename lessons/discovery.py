"""Lesson 03 (registration and discovery): a diagram of the two discovery styles, and a slider on
the config center.

The chapter's own samples are in :mod:`lessons.chapter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets
import matplotlib.pyplot as plt
import networkx as nx

from .charts import plot_spread
from .display import defects_table, health_table
from .live import LivePanel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ConfigSlider", "config_slider", "defects_table", "discovery_diagram", "health_table",
           "plot_spread"]


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


class ConfigSlider(LivePanel):
    """A slider that writes one integer setting of ``service`` to the config center, and shows the
    value every replica has in force — also when the setting is changed in code."""

    def __init__(self, mesh, service: str, name: str, low: int, high: int, period: float = 0.5):
        self.config = mesh.config(service)
        self.setting = name
        self.slider = widgets.IntSlider(value=getattr(self.config.current, name), min=low, max=high,
                                        description=name, continuous_update=False)
        self.applied = widgets.HTML()
        super().__init__(mesh, f"config:{mesh.name}:{service}:{name}", [self.slider, self.applied], period)
        self.slider.observe(self.guard(lambda change: self._set(change["new"])), "value")
        self.refresh_now()

    def _set(self, value: int) -> None:
        if getattr(self.config.current, self.setting) == value:
            return
        # Until the config center's watch brings the new value back, a refresh would read the old
        # one and move the slider back (which would write the old value again): hold it.
        self._pending = value
        try:
            self.config.set(self.setting, value)
            self.config.wait_for(lambda s: getattr(s, self.setting) == value, timeout=5)
        finally:
            self._pending = None

    _pending: int | None = None

    def refresh(self) -> None:
        value = getattr(self.config.current, self.setting)
        if self._pending is None and self.slider.value != value:
            self.slider.value = value
        self.applied.value = f"in force on every replica: <b>{self.setting} = {value}</b>"


def config_slider(mesh, service: str, name: str, low: int, high: int) -> ConfigSlider:
    """Return a :class:`ConfigSlider` for one integer setting of ``service``."""
    return ConfigSlider(mesh, service, name, low, high)
