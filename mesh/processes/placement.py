"""Every instance an OS process of its own: the placement of ``Mesh(mode="processes")``.

:class:`ProcessPlacement` starts each instance with ``python -m mesh.serve`` (on hosts made of
network namespaces, behind a delaying proxy where a host is delayed, when the mesh has hosts),
receives their spans and log lines over OTLP, passes faults, access rules and fallbacks on through
the KV store, and asks a process's admin interface what only it knows (its breakers, the calls it
is serving). A kind a process cannot build — a service defined in a notebook cell — runs in the
kernel, through the kernel placement it is given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import consul

from ..client.servers import listen, new_server
from ..control.keys import MeshKeys
from ..control.registration import Registration
from ..control.shared_state import SharedStatePublisher
from ..policies import Fallback
from ..policies.names import breaker_name, instance_id
from ..services import KINDS, ServiceKind
from ..telemetry.otlp import OtlpReceiver
from .delay_proxy import DelayProxy
from .hosts import Hosts
from .instance import ProcessInstance, SpawnSpec
from .remote_faults import RemoteFaults

__all__ = ["ProcessPlacement"]


class ProcessPlacement:
    """Instances as processes started as ``spec`` says (sending their telemetry to ``receiver``),
    each added to the mesh's ``roster`` (:class:`mesh.core.roster.Roster`) as it starts."""

    name = "processes"

    def __init__(self, spec: SpawnSpec, client: consul.Consul, keys: MeshKeys, registration: Registration,
                 roster, kernel, receiver: OtlpReceiver, hosts: Hosts | None = None,
                 watch_settings=lambda kind: None):
        self.otlp = receiver
        self.spec = spec
        self._client, self._keys, self._registration = client, keys, registration
        self._roster, self._kernel, self._hosts = roster, kernel, hosts
        self._watch_settings = watch_settings  # a kind's settings are watched before its processes start
        self._processes: list[ProcessInstance] = []
        self._relayed: list = []  # servers of state the kernel keeps for its processes
        self._publisher = SharedStatePublisher(client, keys)

    @staticmethod
    def spawnable(kind: ServiceKind) -> bool:
        """Whether a process can build ``kind``: one of ``KINDS``, or a kind made at run time that
        says how (``serve_args``: the bus's replicas)."""
        return bool(kind.serve_args) or KINDS.get(kind.name) is kind

    def add(self, kind: ServiceKind, numbers: Iterable[int], max_workers: int, version: str) -> list:
        if kind.relay is not None:  # its state stays here; its instances forward to it
            kind = kind.relay(self._serve_here(kind))
        if not self.spawnable(kind):
            return self._kernel.add(kind, numbers, max_workers, version)
        # Started together, then waited for: each takes a second or two to import and serve.
        spawned = [self._spawn(kind, number, max_workers, version) for number in numbers]
        for instance in spawned:
            instance.wait_ready()
        return spawned

    def _spawn(self, kind: ServiceKind, number: int, max_workers: int, version: str) -> ProcessInstance:
        self._watch_settings(kind)
        machine = proxy = None
        if self._hosts is not None:  # round robin over the hosts
            machine = self._hosts.hosts[len(self._processes) % len(self._hosts.hosts)]
            if self._hosts.delayed(machine.name):
                hosts, name = self._hosts, machine.name
                proxy = DelayProxy(hosts.gateway, None, lambda: hosts.latency(name))
        faults = RemoteFaults(self._client, self._keys, instance_id(kind.name, number))
        instance = ProcessInstance(self.spec, kind, number, faults, max_workers, version, hosts=self._hosts,
                                   machine=machine, proxy=proxy)
        self._roster.add(instance)
        self._processes.append(instance)
        return instance.spawn()

    def _serve_here(self, kind: ServiceKind) -> str:
        """Serve ``kind``'s servicer from the kernel on a private (unregistered) address; return it."""
        server = new_server(ThreadPoolExecutor(8, thread_name_prefix=f"{kind.name}-relayed"))
        kind.add_to_server(kind.servicer(None), server)
        host = self._hosts.gateway if self._hosts is not None else "127.0.0.1"
        port = listen(server, host, 0, f"{kind.name}'s relayed state")
        server.start()
        self._relayed.append(server)
        return f"{host}:{port}"

    def runtime(self, instance: str):
        return self._kernel.runtime(instance)

    def _running(self) -> list[ProcessInstance]:
        return [i for i in self._processes if i.running]

    def breaker_states(self) -> dict[tuple[str, str], str]:
        states: dict[tuple[str, str], str] = {}
        for instance in self._running():  # their callers' breakers are in them: ask
            states.update(instance.breakers())
        return states

    def breakers_of(self, instance: str) -> dict[str, str]:
        found = next((i for i in self._processes if i.id == instance), None)
        held = sorted(found.breakers().items()) if found is not None else []
        return {breaker_name(*pair): state for pair, state in held}

    def in_flight(self) -> dict[str, int]:
        counts = {}
        for instance in self._running():
            found = instance.status()
            counts[instance.id] = found.in_flight if found is not None else 0
        return counts

    def share_access_rule(self, service: str, callers: Iterable[str] | None) -> None:
        self._publisher.access_rule(service, callers)

    def share_fallback(self, service: str, method: str, fallback: Fallback) -> None:
        self._publisher.fallback(service, method, fallback)

    def settle(self, quiet: float, timeout: float) -> float:
        """Processes export in batches (every 0.1 s): wait until nothing has arrived for ``quiet``
        seconds (at most ``timeout``), as one waits for a collector before reading it."""
        start = last_change = time.monotonic()
        seen = self.otlp.received
        while (now := time.monotonic()) - last_change < quiet and now - start < timeout:
            time.sleep(0.02)
            if self.otlp.received != seen:
                seen, last_change = self.otlp.received, time.monotonic()
        return time.monotonic() - start

    def stop(self, handlers_end: float | None = None) -> None:
        """End every process: all asked at once (each then deregisters and sends its last spans),
        then each given until ``handlers_end`` (at least half a second) before SIGKILL."""
        handlers_end = time.monotonic() + 2.0 if handlers_end is None else handlers_end
        for instance in self._processes:
            instance.terminate()
        for instance in self._processes:
            self._registration.deregister(instance.id)
            instance.stop(grace=max(handlers_end - time.monotonic(), 0.5))
            instance.release()
            with contextlib.suppress(Exception):  # the registry may be gone already
                instance.faults.forget()  # a later mesh of the same names starts without them
        for server in self._relayed:
            server.stop(grace=0.5).wait()
        self._kernel.stop(handlers_end)
        self.otlp.stop()
        self._publisher.forget()
