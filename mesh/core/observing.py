"""What one can ask of a mesh: its instances' health and versions, who discovery reports passing,
its breakers and the calls in flight, its traces — and waits until the answers are what one needs.

:class:`MeshObserving` is the read-only half of :class:`~mesh.core.mesh.Mesh`'s API, kept apart so
that each half can be read whole; it reads the parts the mesh composes (below), never changes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..control.discovery import Discovery, Endpoint
from ..control.registration import Registration
from ..telemetry.metrics import Metrics
from ..telemetry.otlp import OtlpReceiver
from ..telemetry.tracing import CallNode, Tracing
from .clients import Clients
from .placement import Placement
from .roster import Roster

__all__ = ["MeshObserving"]


class MeshObserving:
    """The questions a :class:`~mesh.core.mesh.Mesh` answers, from the parts it composes."""

    roster: Roster
    discovery: Discovery
    registration: Registration
    clients: Clients
    placement: Placement
    tracing: Tracing
    metrics: Metrics

    def instances(self, service: str | None = None) -> list:
        return self.roster.select(service)

    def instance(self, ref):
        return self.roster.get(ref)

    @property
    def otlp(self) -> OtlpReceiver | None:
        """Where the instances' processes send their spans and log lines (None in the kernel)."""
        return self.placement.otlp

    def traces(self) -> list[CallNode]:
        """Return the call tree of every traced request, oldest first."""
        return self.tracing.calls()

    def settle_telemetry(self, quiet: float = 0.3, timeout: float = 5.0) -> float:
        """Wait until the spans of calls already made have arrived; return the seconds waited.

        In the kernel every span is recorded as its call ends, so this returns at once. Processes
        export theirs in batches (every 0.1 s) over OTLP: this waits until none has arrived for
        ``quiet`` seconds (at most ``timeout``), as one waits for a collector before reading it.
        Call it after the load has stopped, before reading traces or metrics rows.
        """
        return self.placement.settle(quiet, timeout)

    def dependency_graph(self):
        """Return the services and who called whom, as a networkx DiGraph (from the traces)."""
        return self.tracing.dependency_graph()

    def breaker_states(self) -> dict[tuple[str, str], str]:
        """Return the state of every circuit breaker a caller holds now, by (caller instance or
        ``client``, callee service): ``closed``, ``open``, ``half_open`` (callers whose policy has
        no breaker are left out)."""
        return {**self.clients.breaker_states(), **self.placement.breaker_states()}

    def in_flight(self) -> dict[str, int]:
        """Return the calls each instance is serving now, by instance id (instances serving none
        are left out); a process is asked through its admin interface."""
        counts = {**self.metrics.in_flight(), **self.placement.in_flight()}
        return {instance: count for instance, count in counts.items() if count}

    def breakers_of(self, instance: str) -> dict[str, str]:
        """Return the state of each circuit breaker ``instance`` keeps towards a service it calls."""
        return {**self.clients.breakers_of(instance), **self.placement.breakers_of(instance)}

    def versions(self, service: str) -> dict[str, list[str]]:
        """Return the running instances of ``service`` by version: ``{"v1": ["greeter-1", ...]}``."""
        return self.roster.versions(service)

    def passing(self, service: str) -> list[str]:
        """Return the ids of the instances discovery currently reports passing."""
        return [e.id for e in self.discovery.endpoints(service)]

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        return self.discovery.endpoints(service)

    def health(self, service: str | None = None) -> list[dict]:
        """Return one row per instance: id, address, whether it runs, and its checks' status."""
        return self.registration.health(self.instances(service))

    def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0,
                   poll: float = 0.02) -> float:
        """Wait until ``condition()`` holds; return the seconds waited, or raise TimeoutError."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"condition not met within {timeout:g} s")
            time.sleep(poll)
        return time.monotonic() - start

    def wait_until_passing(self, service: str | None = None, timeout: float = 15.0) -> float:
        """Wait until discovery reports every running instance passing; return seconds waited."""
        names = sorted({i.service for i in self.instances(service)})

        def all_passing() -> bool:
            return all(
                {i.id for i in self.instances(n) if i.running} <= set(self.passing(n)) for n in names
            )

        return self.wait_until(all_passing, timeout)
