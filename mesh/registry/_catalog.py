"""The registry's catalog: nodes, their services and checks, as Consul's state store keeps them.

The agent's own node is ``catalog.local``; ``/v1/catalog/register`` may add other nodes (external
services). Services and checks are keyed by ``(node, id)``. The catalog is plain data with no
locks: the registry touches it only from its event-loop thread. Time comes from ``clock``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._decode import format_duration
from ._index import Indexes

PASSING, WARNING, CRITICAL, MAINTENANCE = "passing", "warning", "critical", "maintenance"
STATUS_ORDER = {PASSING: 0, WARNING: 1, CRITICAL: 2, MAINTENANCE: 3}
SERF_CHECK_ID = "serfHealth"
NODE_MAINT_ID = "_node_maintenance"
SERVICE_MAINT_PREFIX = "_service_maintenance:"
CONSUL_VERSION = "1.20.0"
CONSUL_SERVICE = "consul"


@dataclass
class Node:
    name: str
    id: str
    address: str
    datacenter: str
    tagged_addresses: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0

    def to_json(self) -> dict[str, Any]:
        tagged = self.tagged_addresses or {
            "lan": self.address, "lan_ipv4": self.address, "wan": self.address, "wan_ipv4": self.address,
        }
        return {
            "ID": self.id, "Node": self.name, "Address": self.address, "Datacenter": self.datacenter,
            "TaggedAddresses": dict(tagged), "Meta": dict(self.meta),
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }


@dataclass
class Service:
    id: str
    name: str
    node: str = ""
    address: str = ""
    port: int = 0
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=lambda: {"Passing": 1, "Warning": 1})
    enable_tag_override: bool = False
    tagged_addresses: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    create_index: int = 0
    modify_index: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the service as ``/v1/health/service`` embeds it."""
        out: dict[str, Any] = {
            "ID": self.id, "Service": self.name, "Tags": list(self.tags), "Address": self.address,
            "Meta": dict(self.meta), "Port": self.port, "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {}, "PeerName": "",
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }
        if self.kind:
            out["Kind"] = self.kind
        if self.tagged_addresses:
            out["TaggedAddresses"] = dict(self.tagged_addresses)
        return out

    def to_agent_json(self, datacenter: str) -> dict[str, Any]:
        """Return the service as ``/v1/agent/services`` lists it."""
        out = self.to_json()
        for key in ("CreateIndex", "ModifyIndex", "PeerName", "Proxy", "Connect"):
            out.pop(key)
        out["Datacenter"] = datacenter
        return out

    def to_catalog_json(self, node: Node) -> dict[str, Any]:
        """Return the flat ``ServiceNode`` of ``/v1/catalog/service/:name``."""
        return {
            "ID": node.id, "Node": node.name, "Address": node.address, "Datacenter": node.datacenter,
            "TaggedAddresses": node.to_json()["TaggedAddresses"], "NodeMeta": dict(node.meta),
            "ServiceKind": self.kind, "ServiceID": self.id, "ServiceName": self.name,
            "ServiceTags": list(self.tags), "ServiceAddress": self.address,
            "ServiceTaggedAddresses": dict(self.tagged_addresses) or None,
            "ServiceWeights": dict(self.weights), "ServiceMeta": dict(self.meta), "ServicePort": self.port,
            "ServiceEnableTagOverride": self.enable_tag_override,
            "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "ServiceConnect": {},
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }


@dataclass
class Check:
    node: str
    check_id: str
    name: str
    status: str = CRITICAL
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    type: str = ""
    interval: float = 0.0
    timeout: float = 0.0
    definition: dict[str, Any] = field(default_factory=dict)
    deregister_after: float = 0.0
    critical_since: float | None = None
    create_index: int = 0
    modify_index: int = 0

    def to_json(self, service_tags: list[str]) -> dict[str, Any]:
        return {
            "Node": self.node, "CheckID": self.check_id, "Name": self.name, "Status": self.status,
            "Notes": self.notes, "Output": self.output, "ServiceID": self.service_id,
            "ServiceName": self.service_name, "ServiceTags": list(service_tags), "Type": self.type,
            "Interval": format_duration(self.interval) if self.interval else "",
            "Timeout": format_duration(self.timeout) if self.timeout else "",
            "ExposedPort": 0, "Definition": {},
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }


class Catalog:
    """Nodes, services and checks, with indexes for blocking queries."""

    def __init__(self, indexes: Indexes, node_name: str, address: str, datacenter: str,
                 clock: Callable[[], float]):
        self.indexes = indexes
        self.clock = clock
        self.datacenter = datacenter
        self.local = node_name
        self.nodes: dict[str, Node] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.checks: dict[tuple[str, str], Check] = {}
        self.ensure_node(node_name, address, meta={"consul-network-segment": "",
                                                   "consul-version": CONSUL_VERSION})
        self.upsert_check(Check(node_name, SERF_CHECK_ID, "Serf Health Status", PASSING,
                                output="Agent alive and reachable"))
        # A Consul server lists itself as the service "consul" (catalog, health and DNS; not in
        # /v1/agent/services).
        self.upsert_service(Service(CONSUL_SERVICE, CONSUL_SERVICE, node_name, port=8300), [])

    @property
    def node(self) -> Node:
        return self.nodes[self.local]

    # -- writes ------------------------------------------------------------------------------
    def ensure_node(self, name: str, address: str, node_id: str | None = None,
                    meta: dict[str, str] | None = None, tagged: dict[str, str] | None = None) -> Node:
        """Create the node, or update its address and metadata; one write either way."""
        node = self.nodes.get(name)
        names = {s.name for s in self.node_services(name)}
        stamp = self.indexes.write("nodes", *(f"service.{n}" for n in names))
        if node is None:
            node = self.nodes[name] = Node(name, node_id or str(uuid.uuid4()), address, self.datacenter,
                                           create_index=stamp)
        node.address = address or node.address
        if meta is not None:
            node.meta = dict(meta)
        if tagged is not None:
            node.tagged_addresses = dict(tagged)
        node.modify_index = stamp
        return node

    def remove_node(self, name: str) -> bool:
        if name not in self.nodes or name == self.local:
            return False
        names = {s.name for s in self.node_services(name)}
        for key in [k for k in self.services if k[0] == name]:
            del self.services[key]
        for key in [k for k in self.checks if k[0] == name]:
            del self.checks[key]
        del self.nodes[name]
        self.indexes.write("nodes", "services", "checks", *(f"service.{n}" for n in names))
        return True

    def upsert_service(self, service: Service, checks: list[Check], replace_checks: bool = False) -> None:
        """Add or replace a service and its checks in one write."""
        key = (service.node, service.id)
        old = self.services.get(key)
        names = {service.name} | ({old.name} if old else set())
        stamp = self.indexes.write("services", "checks", *(f"service.{n}" for n in names))
        service.create_index = old.create_index if old else stamp
        service.modify_index = stamp
        self.services[key] = service
        if replace_checks:
            keep = {c.check_id for c in checks}
            for check in self.service_checks(service.node, service.id):
                if check.check_id not in keep and not check.check_id.startswith(SERVICE_MAINT_PREFIX):
                    del self.checks[(check.node, check.check_id)]
        for check in checks:
            self._store_check(check, stamp)

    def _store_check(self, check: Check, stamp: int) -> None:
        previous = self.checks.get((check.node, check.check_id))
        check.create_index = previous.create_index if previous else stamp
        check.modify_index = stamp
        if previous is not None and "Status" not in check.definition and previous.type == check.type:
            # As Consul does: re-registering keeps a running check's last result, so updating a
            # service's tags or weights does not take a healthy instance out of discovery.
            check.status, check.output = previous.status, previous.output
            check.critical_since = previous.critical_since
        if check.status == CRITICAL and check.critical_since is None:
            check.critical_since = self.clock()
        self.checks[(check.node, check.check_id)] = check

    def upsert_check(self, check: Check) -> None:
        names = self._names_affected_by(check)
        stamp = self.indexes.write("checks", *(f"service.{n}" for n in names))
        self._store_check(check, stamp)

    def remove_check(self, node: str, check_id: str) -> Check | None:
        check = self.checks.pop((node, check_id), None)
        if check is not None:
            self.indexes.write("checks", *(f"service.{n}" for n in self._names_affected_by(check)))
        return check

    def remove_service(self, node: str, service_id: str) -> Service | None:
        """Remove a service and its checks; return it, or None if it was not registered."""
        service = self.services.pop((node, service_id), None)
        if service is None:
            return None
        for check in self.service_checks(node, service_id):
            del self.checks[(node, check.check_id)]
        self.indexes.write("services", "checks", f"service.{service.name}")
        return service

    def set_check_status(self, node: str, check_id: str, status: str, output: str,
                         notes: str | None = None) -> bool:
        """Record a check result; return True if it changed what a query sees.

        As in Consul, only a change of status or output is a write; an identical result leaves
        every index alone, so watchers are not woken by checks that keep passing.
        """
        check = self.checks.get((node, check_id))
        if check is None or (check.status == status and check.output == output):
            return False
        if status == CRITICAL and check.status != CRITICAL:
            check.critical_since = self.clock()
        elif status != CRITICAL:
            check.critical_since = None
        check.status, check.output = status, output
        if notes is not None:
            check.notes = notes
        names = self._names_affected_by(check)
        check.modify_index = self.indexes.write("checks", *(f"service.{n}" for n in names))
        return True

    def _names_affected_by(self, check: Check) -> set[str]:
        if check.service_name:
            return {check.service_name}
        return {s.name for s in self.node_services(check.node)}

    # -- reads -------------------------------------------------------------------------------
    def local_services(self) -> list[Service]:
        """Return the services registered with this agent (not the built-in ``consul``)."""
        return [s for s in self.node_services(self.local) if s.id != CONSUL_SERVICE]

    def node_services(self, node: str) -> list[Service]:
        return [s for (n, _), s in self.services.items() if n == node]

    def local_service(self, service_id: str) -> Service | None:
        if service_id == CONSUL_SERVICE:
            return None
        return self.services.get((self.local, service_id))

    def service_checks(self, node: str, service_id: str) -> list[Check]:
        return [c for c in self.checks.values() if c.node == node and c.service_id == service_id]

    def node_checks(self, node: str) -> list[Check]:
        return [c for c in self.checks.values() if c.node == node and not c.service_id]

    def instances(self, name: str) -> list[Service]:
        return sorted((s for s in self.services.values() if s.name == name), key=lambda s: (s.node, s.id))

    def aggregate_status(self, service: Service) -> str:
        """Return the worst status among the service's checks and its node's checks."""
        checks = self.service_checks(service.node, service.id) + self.node_checks(service.node)
        return max((c.status for c in checks), key=STATUS_ORDER.__getitem__, default=PASSING)

    def health_entry(self, service: Service) -> dict[str, Any]:
        """Return one element of ``/v1/health/service/:name``."""
        checks = self.node_checks(service.node) + self.service_checks(service.node, service.id)
        return {
            "Node": self.nodes[service.node].to_json(),
            "Service": service.to_json(),
            "Checks": [self.check_json(c) for c in checks],
        }

    def check_json(self, check: Check) -> dict[str, Any]:
        service = self.services.get((check.node, check.service_id)) if check.service_id else None
        return check.to_json(service.tags if service else [])

    def critical_too_long(self, now: float) -> list[Service]:
        """Return local services with a check critical for longer than its DeregisterCriticalServiceAfter."""
        due = []
        for check in self.checks.values():
            if (check.node == self.local and check.service_id and check.deregister_after
                    and check.status == CRITICAL and check.critical_since is not None
                    and now - check.critical_since >= check.deregister_after):
                service = self.local_service(check.service_id)
                if service is not None and service not in due:
                    due.append(service)
        return due
