"""The SimPy twin of the mesh: the same topology and policies, simulated at scale.

``Simulation(topology, rng, arrivals).run(duration)`` returns :class:`Results`; ``Topology.from_mesh``
builds the topology from the description the mesh starts from; the balancers, breakers, limiters,
retries, budgets, bulkheads and outlier detection are ``mesh.policies``, on ``env.now``.
"""

from . import theory
from .arrivals import OnOff, Poisson, Ramp, Steps
from .distributions import Bimodal, Deterministic, Exponential, LogNormal
from .model import Fault, Simulation
from .results import Results
from .sweep import sweep
from .topology import ServiceSpec, Topology, shop, single_tier

__all__ = [
    "Bimodal",
    "Deterministic",
    "Exponential",
    "Fault",
    "LogNormal",
    "OnOff",
    "Poisson",
    "Ramp",
    "Results",
    "ServiceSpec",
    "Simulation",
    "Steps",
    "Topology",
    "shop",
    "single_tier",
    "sweep",
    "theory",
]
