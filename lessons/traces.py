"""A trace explorer: pick the slowest, a failed or a retried request from the mesh's recent traces,
see its waterfall, and its path lit up on the service map.

A request is the attempts of one call the notebook (or the console's load) made, each with its
whole call tree below it (:meth:`mesh.telemetry.tracing.Tracing.requests`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt

from mesh import Mesh
from mesh.telemetry.tracing import CallNode

from .charts import plot_trace
from .live import LivePanel
from .service_map import ServiceMap

Request = Sequence[CallNode]
KINDS = ("slowest", "failed", "retried", "refused")


def duration(request: Request) -> float:
    end = max(root.start + root.duration for root in request)
    return end - request[0].start


def nodes(request: Request) -> list[CallNode]:
    return [node for root in request for _, node in root.walk()]


def failed(request: Request) -> bool:
    """Whether the caller got an error (its last attempt failed)."""
    return request[-1].status != "OK"


def retried(request: Request) -> bool:
    """Whether any call in the request needed more than one attempt."""
    return any(node.attempt > 1 for node in nodes(request))


def refused(request: Request) -> bool:
    """Whether the plan refused any call in it (a breaker open, a limit reached, no instance)."""
    return any(node.refused for node in nodes(request))


def pick(requests: Sequence[Request], kind: str) -> list[Request]:
    """Return the requests of one kind, the most telling first: ``slowest``, ``failed``,
    ``retried`` or ``refused`` (those three most recent first)."""
    if kind == "slowest":
        return sorted(requests, key=duration, reverse=True)
    test = {"failed": failed, "retried": retried, "refused": refused}[kind]
    return [r for r in reversed(requests) if test(r)]


def path(request: Request, caller: str = "client") -> set[tuple[str, str]]:
    """Return the (caller, callee) service pairs the request went through."""
    edges = set()

    def walk(node: CallNode, parent: str) -> None:
        edges.add((parent, node.service))
        for child in node.children:
            walk(child, node.service)

    for root in request:
        walk(root, root.caller or caller)
    return edges


class TraceExplorer(LivePanel):
    """Choose a kind of request and one of them; see its waterfall (and its path on ``service_map``).

    The requests offered are those begun in the last ``window`` seconds, listed again every
    ``period`` seconds: the mesh keeps up to 100,000 spans, and making call trees of them all
    took 0.4 s of the kernel's time on each refresh; 30 s of the shop at 30 checkouts a second
    take about 0.1 s."""

    def __init__(self, mesh: Mesh, service_map: ServiceMap | None = None, window: float = 30.0,
                 period: float = 2.0):
        self.service_map = service_map
        self.window = window
        self.kind = widgets.ToggleButtons(options=KINDS, description="requests:",
                                          style={"button_width": "80px"})
        self.choice = widgets.Dropdown(description="request", layout=widgets.Layout(width="520px"))
        self.summary = widgets.HTML()
        self.waterfall = widgets.Output()
        self._requests: dict[str, Request] = {}  # by trace id
        self._shown = ""
        super().__init__(mesh, f"traces:{mesh.name}",
                         [widgets.HBox([self.kind]), self.choice, self.summary, self.waterfall], period)
        self.kind.observe(self.guard(self._kind_changed, refresh=False), "value")
        self.choice.observe(self.guard(lambda c: self.show(c["new"]), refresh=False), "value")
        self.refresh_now()

    def refresh(self) -> None:
        self._list()

    def _kind_changed(self, _change) -> None:
        self._shown = ""
        self._list(keep=False)
        self.show(self.choice.value)

    def _list(self, keep: bool = True) -> None:
        """Offer the requests of the chosen kind from the traces kept now (with ``keep``, the one
        chosen stays chosen; else the first is)."""
        requests = pick(self.mesh.tracing.requests(self.window), self.kind.value)[:30]
        if self._shown in self._requests and all(r[0].trace_id != self._shown for r in requests):
            requests.append(self._requests[self._shown])
        self._requests = {r[0].trace_id: r for r in requests}
        options = [(self._label(r), r[0].trace_id) for r in requests]
        if options != list(self.choice.options):
            current = self.choice.value
            self.choice.options = options
            if keep and current in self._requests:
                self.choice.value = current
            elif options:
                self.choice.value = options[0][1]
        if not requests:
            self.summary.value = f"<i>no {self.kind.value} request among the recent traces yet</i>"

    @staticmethod
    def _label(request: Request) -> str:
        last = request[-1]
        marks = [m for m, test in (("failed", failed), ("retried", retried), ("refused", refused))
                 if test(request)]
        return (f"{last.service}.{last.method} {duration(request) * 1e3:.1f} ms {last.status}"
                + (f" ({', '.join(marks)})" if marks else "") + f" · {last.trace_id[:8]}")

    def show(self, trace_id: str | None) -> None:
        """Draw the request of ``trace_id`` (one of the listed ones) and light up its path on the map."""
        request = self._requests.get(trace_id or "")
        if request is None or trace_id == self._shown:
            return
        self._shown = trace_id
        with self.waterfall:
            self.waterfall.clear_output(wait=True)
            plot_trace(request)
            plt.show()
        if self.service_map is not None:
            self.service_map.highlight(path(request))
        self.summary.value = (f"<b>{html.escape(request[-1].service)}</b>: {len(nodes(request))} spans, "
                              f"{duration(request) * 1e3:.1f} ms")


__all__ = ["KINDS", "TraceExplorer", "duration", "failed", "path", "pick", "refused", "retried"]
