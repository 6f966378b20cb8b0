"""The topology a simulation runs: services, replicas, dependencies, per-service policies.

It is the same description the mesh starts from — ``{service: replicas}`` plus who calls whom
(``mesh.services.SHOP_CALLS``) plus one :class:`mesh.policies.PolicySettings` per service — with
what only a model needs on top: workers per instance, queue limits and service-time distributions.

Two kinds of call link the services. A synchronous call (``calls``) holds the caller's worker until
the answer comes, under the caller's policy; these must form a DAG (a cycle would wait on itself).
An asynchronous hand-off (``hands_off``, ``publishes``) puts a message in a queue that the target
service's instances drain when they have a free worker, and the sender goes on at once — a message
bus, or the routing of a queueing network; these may form any graph, feedback loops included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import networkx as nx

from mesh.policies import PolicySettings

from .distributions import Distribution, Exponential


@dataclass(frozen=True)
class ServiceSpec:
    replicas: int = 1
    workers: int = 1
    queue_limit: int | None = None
    service_time: Distribution = field(default_factory=lambda: Exponential(0.01))
    calls: tuple[tuple[str, ...], ...] = ()  # sequential groups; the calls of a group run in parallel
    policy: PolicySettings = field(default_factory=PolicySettings)  # how callers treat this service
    fail_probability: float = 0.0
    call_probability: float = 1.0  # share of requests that make the calls (the rest are local work only)
    rate_limit: float = 0.0  # the service's own admission limit per instance (calls/s); 0 = none
    versions: tuple[str, ...] = ()  # the version of each replica, in order ('v1' for those not given)
    fallback: bool = False  # callers answer with a static fallback when calls to this service fail
    # After a job ends OK: one message to one of these services, with these probabilities (a routing
    # row of a queueing network: the rest of the time, none), and one to each of ``publishes``.
    hands_off: tuple[tuple[str, float], ...] = ()
    publishes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.workers < 1:
            raise ValueError("replicas and workers must be at least 1")
        if self.queue_limit is not None and self.queue_limit < 0:
            raise ValueError("queue_limit must be >= 0 (or None for unbounded)")
        if not 0 <= self.fail_probability <= 1 or not 0 <= self.call_probability <= 1:
            raise ValueError("probabilities must be in [0, 1]")
        if len(self.versions) > self.replicas:
            raise ValueError("more versions than replicas")
        shares = [p for _, p in self.hands_off]
        if any(p < 0 for p in shares) or sum(shares) > 1 + 1e-9:
            raise ValueError("hand-off probabilities must be >= 0 and add up to at most 1")

    def version(self, replica: int) -> str:
        """Return the version of replica ``replica`` (counting from 0)."""
        return self.versions[replica] if replica < len(self.versions) else "v1"


@dataclass(frozen=True)
class Topology:
    services: Mapping[str, ServiceSpec]
    entry: str

    def __post_init__(self) -> None:
        if self.entry not in self.services:
            raise ValueError(f"entry service {self.entry!r} is not in the topology")
        for name, spec in self.services.items():
            targets = [t for group in spec.calls for t in group]
            targets += [t for t, _ in spec.hands_off] + list(spec.publishes)
            for target in targets:
                if target not in self.services:
                    raise ValueError(f"{name} calls unknown service {target!r}")
        if not nx.is_directed_acyclic_graph(self.graph(handoffs=False)):
            raise ValueError("the synchronous call graph has a cycle (a hand-off may loop back; "
                             "a call may not)")

    @classmethod
    def from_mesh(cls, replicas: Mapping[str, int], calls: Mapping[str, Sequence[str]] | None = None,
                  entry: str | None = None, parallel: Mapping[str, bool] | None = None,
                  **defaults) -> Topology:
        """Build from the mesh's description: ``{service: replicas}`` and ``{caller: [callees]}``.

        ``parallel[caller]`` makes a caller's calls one parallel group (a fan-out); otherwise they
        are made one after the other. ``defaults`` are ServiceSpec fields for every service.
        """
        calls = calls or {}
        parallel = parallel or {}
        services = {}
        for name, count in replicas.items():
            callees = tuple(calls.get(name, ()))
            groups = (callees,) if parallel.get(name) and callees else tuple((c,) for c in callees)
            services[name] = ServiceSpec(replicas=count, calls=groups, **defaults)
        if entry is None:
            called = {c for cs in calls.values() for c in cs}
            roots = [n for n in replicas if n not in called]
            entry = roots[0] if roots else next(iter(replicas))
        return cls(services, entry)

    def with_service(self, name: str, **changes) -> Topology:
        """Return a copy with some fields of one service changed."""
        return Topology({**self.services, name: replace(self.services[name], **changes)}, self.entry)

    def graph(self, handoffs: bool = True) -> nx.DiGraph:
        """Return the call graph; nodes carry their ServiceSpec, edges whether calls are parallel
        and whether they are asynchronous hand-offs (``handoff``, with its ``probability``)."""
        graph = nx.DiGraph()
        for name, spec in self.services.items():
            graph.add_node(name, spec=spec)
            for group in spec.calls:
                for target in group:
                    graph.add_edge(name, target, parallel=len(group) > 1, handoff=False)
            if handoffs:
                for target, probability in spec.hands_off:
                    graph.add_edge(name, target, parallel=False, handoff=True, probability=probability)
                for target in spec.publishes:
                    graph.add_edge(name, target, parallel=False, handoff=True, probability=1.0)
        return graph


def single_tier(instances: int = 10, service_time: Distribution | None = None, workers: int = 1,
                balancer: str = "p2c", **policy) -> Topology:
    """One service of ``instances`` replicas behind a client with ``balancer``."""
    spec = ServiceSpec(replicas=instances, workers=workers, service_time=service_time or Exponential(0.01),
                       policy=PolicySettings(balancer=balancer, **policy))
    return Topology({"service": spec}, "service")


def tandem(stations: int = 2, service_time: Distribution | None = None, workers: int = 1,
           feedback: float = 0.0) -> Topology:
    """``stations`` single-replica services in a line, each handing its job to the next (a tandem
    queue of queueing theory); with ``feedback`` the last sends a job back to the first with that
    probability."""
    names = [f"station{i + 1}" for i in range(stations)]
    services = {}
    for i, name in enumerate(names):
        nxt = ((names[i + 1], 1.0),) if i + 1 < stations else ((names[0], feedback),) if feedback else ()
        services[name] = ServiceSpec(workers=workers, service_time=service_time or Exponential(0.01),
                                     hands_off=nxt)
    return Topology(services, names[0])


def shop(replicas: int = 2, workers: int = 4, **defaults) -> Topology:
    """The mesh's demo shop (checkout path): frontend -> orders -> {inventory, payments -> fraud}."""
    from mesh.services import SHOP_CALLS

    checkout = {k: [c for c in v if c != "recommendations"] for k, v in SHOP_CALLS.items()
                if k != "recommendations"}
    return Topology.from_mesh({name: replicas for name in checkout}, checkout, entry="frontend",
                              workers=workers, **defaults)
