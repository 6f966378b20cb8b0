"""Lesson 07 (simulation): the SimPy twin's experiments, their pictures, sliders that re-run them,
and the same scenario on the real mesh and in the model.

- :mod:`.experiments` — balancers near saturation, a retry storm, a cascading failure, a
  metastable failure, rate limiting at the edge or inside;
- :mod:`.plots` — their pictures; :mod:`.controls` — sliders that re-run them;
- :mod:`.twin` — one scenario on the real mesh and in simulation, side by side.
"""

__all__ = ["controls", "experiments", "plots", "twin"]
