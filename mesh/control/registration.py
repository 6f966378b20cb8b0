"""How a mesh registers its instances: name and id (prefixed on a shared registry), address, the
version as a tag and in ``Meta``, a weight, and a gRPC health check the registry runs."""

from __future__ import annotations

import contextlib
from typing import Protocol

import consul

from .keys import MeshKeys

__all__ = ["Registrable", "Registration"]


class Registrable(Protocol):
    id: str
    service: str
    version: str
    address: str
    running: bool


class Registration:
    """Registers the instances of the mesh ``mesh`` with the agent ``client`` talks to."""

    def __init__(self, client: consul.Consul, keys: MeshKeys, mesh: str, check_interval: str = "1s",
                 check_timeout: str = "1s"):
        self.client, self.keys, self.mesh = client, keys, mesh
        self.check_interval, self.check_timeout = check_interval, check_timeout

    def register(self, instance: Registrable, weight: int = 1, address: str = "") -> None:
        """Register ``instance`` at ``address`` (``host:port`` of a proxy in front of it) or its own."""
        host, _, port = (address or instance.address).rpartition(":")
        self.client.agent.service.register(
            self.keys.registry_name(instance.service), service_id=self.keys.registry_name(instance.id),
            address=host, port=int(port),
            tags=["workbench", instance.version], meta={"mesh": self.mesh, "version": instance.version},
            weights={"Passing": weight, "Warning": 1},
            check=consul.Check.grpc(f"{host}:{port}", self.check_interval, timeout=self.check_timeout),
        )

    def health(self, instances: list[Registrable]) -> list[dict]:
        """One row per instance: id, address, whether it runs, and its own check's status and output
        as the registry has them (``deregistered`` if it has none)."""
        rows = []
        for name in sorted({i.service for i in instances}):
            _, entries = self.client.health.service(self.keys.registry_name(name))
            status = {self.keys.local_name(e["Service"]["ID"]): e["Checks"] for e in entries}
            for instance in (i for i in instances if i.service == name):
                checks = [c for c in status.get(instance.id, []) if c["ServiceID"]]
                rows.append({
                    "instance": instance.id,
                    "address": instance.address,
                    "running": instance.running,
                    "status": checks[0]["Status"] if checks else "deregistered",
                    "output": checks[0]["Output"] if checks else "",
                })
        return rows

    def deregister(self, instance_id: str) -> None:
        """Remove an instance; a registry that is already gone is no reason to fail."""
        with contextlib.suppress(Exception):
            self.client.agent.service.deregister(self.keys.registry_name(instance_id))
