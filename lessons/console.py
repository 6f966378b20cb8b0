"""A console for a running mesh: faults per instance, the callers' policy, background load, and live
charts of what it does to the calls.

``MeshConsole(mesh)`` works for any mesh (the Greeter's, the demo shop). Every control writes
through the mesh's public API — :meth:`~mesh.Mesh.inject`, :meth:`~mesh.Mesh.kill`,
:meth:`~mesh.Mesh.revive`, :meth:`~mesh.Mesh.set_policy` — so what a learner does with a slider
they can also do in code; and twice a second the console reads the mesh back, so a change made in
code shows on its controls too. Its load (:class:`mesh.SteadyLoad`) calls the mesh's entry service
as the notebook's ``client``; its charts show the last ``window`` seconds of that load (latency
p50/p99, goodput and errors) and the calls each instance of the chosen service served.
"""

from __future__ import annotations

import html
import time
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np

from mesh import Mesh, SteadyLoad
from mesh.policies import BALANCERS, PolicySettings

from .experiment import CHECKOUT, HELLO
from .live import LivePanel, instance_state, set_killed
from .live_charts import STATUS_COLOURS, BarChart, SeriesChart, buckets

ABORT_CODES = ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
HEALTH_COLOURS = {"passing": "#2e7d32", "critical": "#c62828", "killed": "#757575"}
WIDE = {"description_width": "initial"}


def _slider(description: str, low: float, high: float, step: float = 1, width: str = "260px",
            kind=widgets.IntSlider) -> widgets.Widget:
    return kind(min=low, max=high, step=step, description=description, continuous_update=False, style=WIDE,
                layout=widgets.Layout(width=width))


def entry_call(mesh: Mesh) -> tuple[Any, Any, str]:
    """Return (stub method, request, service) of the call a console's load sends to ``mesh``."""
    services = {i.service for i in mesh.instances()}
    if "frontend" in services:
        return mesh.client("frontend").Checkout, CHECKOUT, "frontend"
    if "greeter" in services:
        return mesh.client("greeter").SayHello, HELLO, "greeter"
    raise ValueError(f"no known entry service in {sorted(services)}: pass call=(method, request, service)")


class _InstanceRow:
    """The fault controls of one instance; each writes through ``mesh.inject`` / kill / revive."""

    def __init__(self, console: MeshConsole, instance: str):
        self.instance = instance
        self.label = widgets.HTML(layout=widgets.Layout(width="230px"))
        self.latency = _slider("+ms", 0, 1000, 10, "210px")
        self.jitter = _slider("± jitter ms", 0, 500, 10, "210px")
        self.abort = _slider("abort %", 0, 100, 5, "210px")
        self.code = widgets.Dropdown(options=ABORT_CODES, layout=widgets.Layout(width="190px"))
        self.hang = _slider("hang %", 0, 100, 5, "210px")
        self.kill = widgets.ToggleButton(description="kill", icon="power-off",
                                         layout=widgets.Layout(width="90px"))
        mesh, on = console.mesh, console.guard
        self.latency.observe(on(lambda c: self._inject(mesh, delay=c["new"] / 1000)), "value")
        self.jitter.observe(on(lambda c: self._inject(mesh, delay_jitter=c["new"] / 1000)), "value")
        self.abort.observe(on(lambda c: self._inject(mesh, abort_percent=c["new"],
                                                     abort_code=self.code.value)), "value")
        self.code.observe(on(lambda c: self._inject(mesh, abort_code=c["new"])), "value")
        self.hang.observe(on(lambda c: self._inject(mesh, hang_percent=c["new"])), "value")
        self.kill.observe(on(lambda c: set_killed(mesh, self.instance, c["new"])), "value")
        self.box = widgets.HBox([self.label, self.latency, self.jitter, self.abort, self.code, self.hang,
                                 self.kill])

    def _inject(self, mesh: Mesh, **changes) -> None:
        current = mesh.faults(self.instance)
        if any(getattr(current, k) != v for k, v in changes.items()):
            mesh.inject(self.instance, **changes)

    def show(self, mesh: Mesh, passing: set[str]) -> None:
        """Show the instance as the mesh has it now (changes made in code included)."""
        faults, instance = mesh.faults(self.instance), mesh.instance(self.instance)
        running, state = instance.running, instance_state(instance, passing)
        self.label.value = (f"<b>{html.escape(self.instance)}</b> "
                            f"<span style='color:{HEALTH_COLOURS[state]}'>● {state}</span>")
        for control, value in ((self.latency, round(faults.delay * 1000)),
                               (self.jitter, round(faults.delay_jitter * 1000)),
                               (self.abort, round(faults.abort_percent)),
                               (self.hang, round(faults.hang_percent)), (self.kill, not running)):
            if control.value != value:
                control.value = value
        if faults.abort_code and self.code.value != faults.abort_code:
            self.code.value = faults.abort_code
        self.kill.description = "revive" if not running else "kill"


class _PolicyControls:
    """The callers' policy towards one service; each control writes through ``mesh.set_policy``."""

    # control name -> (PolicySettings field, to settings, from settings)
    FIELDS: ClassVar[dict[str, tuple]] = {
        "attempts": ("max_attempts", int, int),
        "per_try_ms": ("per_try_timeout", lambda v: v / 1000, lambda s: round(s * 1000)),
        "breaker_pct": ("breaker_failure_rate", float, round),
        "breaker_wait": ("breaker_wait", float, float),
        "rate_limit": ("rate_limit", float, round),
        "bulkhead": ("bulkhead", int, int),
    }

    def __init__(self, console: MeshConsole):
        self.console = console
        self.balancer = widgets.Dropdown(options=sorted(BALANCERS), description="balancer", style=WIDE)
        self.attempts = _slider("attempts", 1, 5)
        self.per_try_ms = _slider("per-try timeout ms (0 off)", 0, 1000, 10)
        self.breaker_pct = _slider("breaker opens at % failed (0 off)", 0, 100, 5, "300px")
        self.breaker_wait = _slider("breaker open s", 0.1, 10, 0.1, kind=widgets.FloatSlider)
        self.rate_limit = _slider("rate limit /s (0 off)", 0, 1000, 10)
        self.bulkhead = _slider("bulkhead (0 off)", 0, 32)
        self.outlier = widgets.Checkbox(description="outlier detection (eject after 3 errors)", style=WIDE)
        self.breakers = widgets.HTML()
        self.balancer.observe(console.guard(lambda c: self._set(balancer=c["new"])), "value")
        for name, (field, to_setting, _) in self.FIELDS.items():
            getattr(self, name).observe(console.guard(
                lambda c, field=field, convert=to_setting: self._set(**{field: convert(c["new"])})), "value")
        self.outlier.observe(console.guard(lambda c: self._set(outlier_errors=3 if c["new"] else 0)), "value")
        self.box = widgets.VBox([
            widgets.HBox([self.balancer, self.attempts, self.per_try_ms]),
            widgets.HBox([self.breaker_pct, self.breaker_wait, self.rate_limit]),
            widgets.HBox([self.bulkhead, self.outlier]),
            self.breakers,
        ])

    def _set(self, **changes) -> None:
        service = self.console.service
        current = self.console.mesh.policy(service).current
        if any(getattr(current, k) != v for k, v in changes.items()):
            self.console.mesh.set_policy(service, **changes)

    def show(self, settings: PolicySettings, states: dict[tuple[str, str], str], service: str) -> None:
        if self.balancer.value != settings.balancer:
            self.balancer.value = settings.balancer
        for name, (field, _, from_setting) in self.FIELDS.items():
            control, value = getattr(self, name), from_setting(getattr(settings, field))
            if control.value != value:
                control.value = value
        if self.outlier.value != (settings.outlier_errors > 0):
            self.outlier.value = settings.outlier_errors > 0
        mine = sorted((caller, state) for (caller, callee), state in states.items() if callee == service)
        colour = {"closed": "#2e7d32", "half_open": "#f9a825", "open": "#c62828"}
        self.breakers.value = "breakers: " + (", ".join(
            f"{html.escape(c)} → {html.escape(service)} <b style='color:{colour.get(s, '#000')}'>{s}</b>"
            for c, s in mine) or "<i>none (no breaker in the policy, or no call yet)</i>")


class MeshConsole(LivePanel):
    """Faults, policy and load controls for ``mesh``, with live charts refreshed every ``period`` s.

    ``service`` is the service whose instances and callers' policy the controls act on at first (a
    dropdown changes it); ``call`` is ``(stub method, request, service)`` for the load, by default
    the mesh's entry (the shop's Checkout, or the Greeter's SayHello); ``rate`` starts the load at
    once (0: press start).
    """

    def __init__(self, mesh: Mesh, service: str | None = None, call: tuple | None = None, rate: float = 0.0,
                 window: float = 10.0, period: float = 0.5, seed: int = 0):
        self.mesh = mesh
        self._method, self._request, entry = call or entry_call(mesh)
        services = sorted({i.service for i in mesh.instances()})
        self.service = service or entry
        self.window = window
        self._seed = seed
        self._born = time.monotonic()
        self.load: SteadyLoad | None = None
        self.rate = widgets.IntSlider(value=int(rate) or 50, min=0, max=400, step=10, continuous_update=False,
                                      description="load, calls/s", style=WIDE)
        self.running = widgets.ToggleButton(value=False, description="start load", icon="play")
        self.load_status = widgets.HTML()
        self.target = widgets.Dropdown(options=services, value=self.service, description="service",
                                       style=WIDE)
        self.rows_box = widgets.VBox()
        self.policy = _PolicyControls(self)
        colours = STATUS_COLOURS
        self.latency_chart = SeriesChart("latency of the load's calls", ["p50", "p99"],
                                         [colours["p50"], colours["p99"]], "ms", window, log=True)
        self.rate_chart = SeriesChart("answered per second", ["OK (goodput)", "errors"],
                                      [colours["ok"], colours["error"]], "calls / s", window)
        self.instance_chart = BarChart("calls served per second, by instance", "calls / s")
        self._rows: dict[str, _InstanceRow] = {}
        children = [
            widgets.HTML(f"<b>Load</b> on {html.escape(entry)}"),
            widgets.HBox([self.rate, self.running, self.load_status]),
            widgets.HTML("<b>Faults</b> on each instance of"), self.target, self.rows_box,
            widgets.HTML("<b>Policy</b> of every caller towards that service"), self.policy.box,
            widgets.HBox([self.latency_chart.figure, self.rate_chart.figure],
                         layout=widgets.Layout(width="100%")),
            self.instance_chart.figure,
        ]
        super().__init__(mesh, f"console:{mesh.name}", children, period)
        self.running.observe(self.guard(lambda c: self._start() if c["new"] else self._stop_load()), "value")
        self.rate.observe(self.guard(self._set_rate), "value")
        self.target.observe(self.guard(lambda c: self._choose(c["new"])), "value")
        self._choose(self.service)
        if rate > 0:
            self.running.value = True

    # -- controls --------------------------------------------------------------------------------
    def _choose(self, service: str) -> None:
        self.service = service
        self._rows = {i.id: _InstanceRow(self, i.id) for i in self.mesh.instances(service)}
        self.rows_box.children = [row.box for row in self._rows.values()]
        self.refresh_now()

    def _start(self) -> None:
        if self.load is None or not self.load.running:
            self.load = SteadyLoad(self._method, self._request, self.rate.value,
                                   np.random.default_rng(self._seed), timeout=2.0)
        self.running.description, self.running.icon = "stop load", "stop"

    def _stop_load(self) -> None:
        if self.load is not None:
            self.load.stop()
        self.running.description, self.running.icon = "start load", "play"

    def _set_rate(self, change) -> None:
        if self.load is not None:
            self.load.rate = change["new"]

    def on_stop(self) -> None:
        if self.load is not None:
            self.load.stop()

    # -- views -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        mesh = self.mesh
        passing = set(mesh.passing(self.service))
        for row in list(self._rows.values()):
            row.show(mesh, passing)
        self.policy.show(mesh.policy(self.service).current, mesh.breaker_states(), self.service)
        self._show_load()
        self._show_instances()

    def _show_load(self) -> None:
        load, width = self.load, 0.5
        records = load.recent(self.window) if load is not None else []
        sent = [r for r in records if r.code != "SHED"]
        if not sent:
            self.latency_chart.show(np.array([]), [np.array([]), np.array([])])
            self.rate_chart.show(np.array([]), [np.array([]), np.array([])])
            self.load_status.value = "" if load is None or not load.running else "<i>waiting for calls…</i>"
            return
        now = load.now
        starts = np.array([r.start for r in sent])
        index, x = buckets(starts, now, self.window, width)
        ok = np.array([r.ok for r in sent])
        latency = np.array([r.latency * 1000 for r in sent])
        p50, p99 = np.full(len(x), np.nan), np.full(len(x), np.nan)
        for b in np.unique(index[ok]):
            chosen = latency[ok & (index == b)]
            p50[b], p99[b] = np.percentile(chosen, 50), np.percentile(chosen, 99)
        good = np.bincount(index[ok], minlength=len(x)) / width
        bad = np.bincount(index[~ok], minlength=len(x)) / width
        self.latency_chart.show(x, [p50, p99])
        self.rate_chart.show(x, [good, bad])
        recent = [r for r in sent if r.start >= now - 2.0]  # those that have ended
        state = "stopped" if load.stopped else "running"
        if not recent:
            self.load_status.value = state
            return
        ok = [r.latency * 1000 for r in recent if r.ok]
        p99 = f", p99 <b class='console-p99'>{np.percentile(ok, 99):.0f}</b> ms" if ok else ""
        self.load_status.value = (f"{state}: {len(recent) / 2.0:.0f} calls/s sent, "
                                  f"{len(ok) / len(recent):.0%} OK{p99} in the last 2 s")

    def _show_instances(self) -> None:
        counts = dict.fromkeys(self._rows, 0)
        for row in self.mesh.metrics.recent(self.window):
            if row["instance"] in counts:
                counts[row["instance"]] += 1
        span = max(min(self.window, time.monotonic() - self._born), self.period)
        self.instance_chart.show(list(counts), [c / span for c in counts.values()])


__all__ = ["MeshConsole", "entry_call"]
