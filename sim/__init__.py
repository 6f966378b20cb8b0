"""The SimPy twin of the mesh: the same topology, policies and call plan, simulated at scale.

``Simulation(topology, rng, arrivals).run(duration)`` returns :class:`Results` (one
:class:`Record` per request); ``Topology.from_mesh`` builds the topology from the description the
mesh starts from. Every call runs through the mesh's own call plan (:mod:`mesh.policies.plan`)
with its balancers, release routing, breakers, limiters, retries, budgets, bulkheads, outlier
detection and fallbacks, on ``env.now``; :mod:`sim.driver` executes the plans as plain events.
"""

from . import theory
from .arrivals import OnOff, Poisson, Ramp, Steps
from .distributions import Bimodal, Deterministic, Exponential, LogNormal
from .driver import Fork, Task
from .model import Fault, Simulation
from .results import UNFINISHED, BreakerChange, Record, Results, Sample
from .sweep import close_local_cluster, grid, single_tier_run, sweep
from .topology import ServiceSpec, Topology, shop, single_tier, tandem

__all__ = [
    "UNFINISHED",
    "Bimodal",
    "BreakerChange",
    "Deterministic",
    "Exponential",
    "Fault",
    "Fork",
    "LogNormal",
    "OnOff",
    "Poisson",
    "Ramp",
    "Record",
    "Results",
    "Sample",
    "ServiceSpec",
    "Simulation",
    "Steps",
    "Task",
    "Topology",
    "close_local_cluster",
    "grid",
    "shop",
    "single_tier",
    "single_tier_run",
    "sweep",
    "tandem",
    "theory",
]
