"""Sliders over the simulation experiments: change a parameter, press Run, see the picture again.

Each explorer re-runs a short simulation (a second or two) with the values on its sliders, so the
runs use ``manual=True``: nothing recomputes until the button is pressed.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from . import experiments
from .plots import plot_balancer_sweep, plot_timelines


def balancer_explorer() -> widgets.Widget:
    """Load, how much slower the slow replicas are, and how many replicas: all balancers compared."""

    def run(load=0.9, slow_factor=3.0, instances=10):
        exp = experiments.compare_balancers(
            loads=(load,), factor=slow_factor, instances=instances, duration=20.0, parallel=False
        )
        plot_balancer_sweep(exp)
        plt.show()

    return widgets.interactive(
        run,
        {"manual": True, "manual_name": "Run"},
        load=widgets.FloatSlider(value=0.9, min=0.3, max=0.98, step=0.02),
        slow_factor=widgets.FloatSlider(value=3.0, min=1.0, max=10.0, step=0.5),
        instances=widgets.IntSlider(value=10, min=4, max=50),
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
        slow_factor=widgets.FloatSlider(value=50.0, min=2.0, max=100.0, step=2.0),
        rate=widgets.FloatSlider(value=300.0, min=50.0, max=500.0, step=25.0),
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
        rate=widgets.FloatSlider(value=560.0, min=300.0, max=780.0, step=20.0),
        trigger_seconds=widgets.FloatSlider(value=2.0, min=0.2, max=8.0, step=0.2),
    )
