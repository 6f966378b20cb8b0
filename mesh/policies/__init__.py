"""Resilience and routing policies: pure logic, no transport, no threads, clock injected.

The real mesh and the SimPy simulator run the very same classes.
"""

from .balancers import Balancer, RoundRobin

__all__ = ["Balancer", "RoundRobin"]
