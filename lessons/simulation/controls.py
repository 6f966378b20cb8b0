"""Sliders over the simulation experiments: change a parameter, press Run, see the picture again.

Each explorer re-runs short simulations (a second or two) with the values on its sliders, so the
runs use ``manual=True``: nothing recomputes until the button is pressed.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from . import experiments
from .plots import plot_balancer_sweep, plot_timelines


def _slider(description: str, value: float, low: float, high: float, step: float,
            kind=widgets.FloatSlider) -> widgets.Widget:
    return kind(value=value, min=low, max=high, step=step, description=description,
                style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))


def balancer_explorer() -> widgets.Widget:
    """Load, how much slower the slow replicas are, and how many replicas: all balancers compared,
    over loads from half the capacity up to the chosen one."""

    def run(load=0.9, slow_factor=3.0, instances=10):
        loads = tuple(sorted({0.5, *np.linspace(0.5, load, 4).round(2)})) if load > 0.5 else (load,)
        exp = experiments.compare_balancers(
            loads=loads, factor=slow_factor, instances=instances, duration=10.0, parallel=False
        )
        plot_balancer_sweep(exp)
        plt.show()

    return widgets.interactive(
        run,
        {"manual": True, "manual_name": "Run"},
        load=_slider("up to load (share of capacity)", 0.9, 0.3, 0.98, 0.02),
        slow_factor=_slider("slow replicas are … times slower", 3.0, 1.0, 10.0, 0.5),
        instances=_slider("instances", 10, 4, 50, 1, kind=widgets.IntSlider),
    )


def cascade_explorer() -> widgets.Widget:
    """How much slower the leaf is and how much load arrives: every protection compared."""

    def run(slow_factor=50.0, rate=300.0):
        exp = experiments.cascading_failure(factor=slow_factor, rate=rate, duration=30.0)
        plot_timelines(exp, "mean_latency", bucket=0.5)
        plt.show()

    return widgets.interactive(
        run,
        {"manual": True, "manual_name": "Run"},
        slow_factor=_slider("fraud is … times slower", 50.0, 2.0, 100.0, 2.0),
        rate=_slider("requests / s", 300.0, 50.0, 500.0, 25.0),
    )


def metastable_explorer() -> widgets.Widget:
    """Offered load and how long the trigger lasts: does the system come back by itself?"""

    def run(rate=560.0, trigger_seconds=2.0):
        exp = experiments.metastable_failure(rate=rate, trigger=(10.0, 10.0 + trigger_seconds), duration=40.0)
        plot_timelines(exp, "goodput")
        plt.show()

    return widgets.interactive(
        run,
        {"manual": True, "manual_name": "Run"},
        rate=_slider("requests / s", 560.0, 300.0, 780.0, 20.0),
        trigger_seconds=_slider("trigger lasts … seconds", 2.0, 0.2, 8.0, 0.2),
    )
