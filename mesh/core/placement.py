"""Where a mesh's instances run: the one interface behind which the mesh's modes differ.

:class:`Placement` is what :class:`~mesh.core.mesh.Mesh` asks of wherever its instances run:
start them, tell what they report that the kernel cannot see, pass shared state on to them, wait
for their telemetry, and end them. :class:`KernelPlacement` runs each instance as a
``grpc.server`` in this process; :class:`mesh.processes.ProcessPlacement` runs each as an OS
process of its own. Nothing outside the placements asks which mode a mesh is in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import grpc

from ..client.identity import Identities
from ..control.config import ConfigCenter
from ..control.registration import Registration
from ..interceptors import FaultInjector, ServerContext, ServerIdentity, ServerMetrics, ServerTracing
from ..policies import Fallback, rng_for
from ..services import ServiceKind
from ..telemetry.logs import LogStore
from ..telemetry.metrics import Metrics
from ..telemetry.tracing import Tracing
from .admin import AdminServicer
from .clients import Clients
from .instance import Instance
from .roster import Roster
from .runtime import InstanceRuntime

__all__ = ["KernelPlacement", "Placement"]


class Placement(Protocol):
    """Where instances run: each placement adds what it starts to the mesh's roster."""

    name: str  # the mode: "kernel" or "processes"
    otlp: Any  # the receiver of the instances' spans and log lines, if they send them

    def add(self, kind: ServiceKind, numbers: Iterable[int], max_workers: int, version: str) -> list:
        """Start instance ``number`` of ``kind`` for each number, registered; return them once they serve."""

    def runtime(self, instance: str) -> InstanceRuntime:
        """The runtime the handlers of a kernel instance use (KeyError for any other)."""

    def breaker_states(self) -> dict[tuple[str, str], str]:
        """The breakers held where the kernel cannot see them, by (caller instance, callee)."""

    def breakers_of(self, instance: str) -> dict[str, str]:
        """The breakers ``instance`` holds where the kernel cannot see them, by name."""

    def in_flight(self) -> dict[str, int]:
        """Calls being served, for the instances the kernel's own metrics do not see (0s included)."""

    def share_access_rule(self, service: str, callers: Iterable[str] | None) -> None: ...

    def share_fallback(self, service: str, method: str, fallback: Fallback) -> None: ...

    def settle(self, quiet: float, timeout: float) -> float:
        """Wait until the telemetry of calls already made has arrived; return the seconds waited."""

    def stop(self, handlers_end: float | None = None) -> None:
        """End every instance (deregistered first) and what the placement runs beside them; a
        handler still running at ``handlers_end`` (monotonic) is left behind."""


class KernelPlacement:
    """Every instance a ``grpc.server`` in this process, with the mesh's interceptors, runtime and
    admin interface; registered by the kernel."""

    name = "kernel"
    otlp = None

    def __init__(self, mesh: str, seed: int | None, roster: Roster, registration: Registration,
                 configs: ConfigCenter, clients: Clients, tracing: Tracing, metrics: Metrics, logs: LogStore,
                 identities: Identities):
        self._mesh, self._seed, self._roster, self._registration = mesh, seed, roster, registration
        self._configs, self._clients = configs, clients
        self._tracing, self._metrics, self._logs, self._identities = tracing, metrics, logs, identities
        self._runtimes: dict[str, InstanceRuntime] = {}
        self._started: list[Instance] = []
        self._fan_out = ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"mesh-{mesh}-fanout")

    def add(self, kind: ServiceKind, numbers: Iterable[int], max_workers: int, version: str) -> list:
        return [self.start(kind, number, max_workers, version) for number in numbers]

    def start(self, kind: ServiceKind, number: int, max_workers: int = 16, version: str = "v1", port: int = 0,
              host: str = "127.0.0.1", advertise: str = "") -> Instance:
        """Start one instance (on ``host:port``, port 0 for any) and register it (at ``advertise``,
        ``host:port`` of a proxy in front of it, if given): what an instance's process does."""
        config = self._configs.get(kind.name, kind.settings) if kind.settings else None
        instance = Instance(kind, number, lambda i: i.kind.servicer(self._runtime(i, config)),
                            self._interceptors, host=host, max_workers=max_workers, version=version,
                            admin=lambda i: AdminServicer(
                                i, lambda: config.current if config else None,
                                lambda: self._clients.breakers_of(i.id), self._metrics, self._logs))
        instance.port = port
        instance.start()
        self._roster.add(instance)
        self._started.append(instance)
        self._registration.register(instance, address=advertise)
        return instance

    def _interceptors(self, instance: Instance) -> list[grpc.ServerInterceptor]:
        return [
            ServerContext(instance.service, instance.id, self._mesh),
            ServerTracing(self._tracing, instance.service, instance.id),
            ServerMetrics(self._metrics, instance.service, instance.id, on_call=instance.count_call),
            ServerIdentity(self._identities, instance.service),
            FaultInjector(rng_for(self._seed, "faults", instance.id), instance.stopping),
        ]

    def _runtime(self, instance: Instance, config) -> InstanceRuntime:
        runtime = self._runtimes.get(instance.id)
        if runtime is None:
            def client_for(service: str, caller: Instance):
                return self._clients.stack(caller.service, caller.id, service).stub

            runtime = InstanceRuntime(instance, client_for, config, self._fan_out)
            self._runtimes[instance.id] = runtime
        return runtime

    def runtime(self, instance: str) -> InstanceRuntime:
        return self._runtimes[instance]

    def breaker_states(self) -> dict[tuple[str, str], str]:
        return {}

    def breakers_of(self, instance: str) -> dict[str, str]:
        return {}

    def in_flight(self) -> dict[str, int]:
        return {}

    def share_access_rule(self, service: str, callers: Iterable[str] | None) -> None:
        pass  # the kernel's servers read the mesh's own identities

    def share_fallback(self, service: str, method: str, fallback: Fallback) -> None:
        pass  # the kernel's callers hold the mesh's own fallbacks

    def settle(self, quiet: float, timeout: float) -> float:
        return 0.0  # every span is recorded as its call ends

    def stop(self, handlers_end: float | None = None) -> None:
        """Deregister and stop this placement's instances; a handler that has not returned by
        ``handlers_end`` (monotonic; 2 s from now by default) is left behind."""
        handlers_end = time.monotonic() + 2.0 if handlers_end is None else handlers_end
        for instance in self._started:
            self._registration.deregister(instance.id)
            instance.stop(grace=None, wait=max(handlers_end - time.monotonic(), 0.0))
        self._fan_out.shutdown(wait=True)
