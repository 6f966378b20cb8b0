"""The registry's state: one node's services and checks, with Consul's Raft-style indexes.

Every write takes the next value of a single counter (as Consul's Raft log does) and stamps it on
what it changed, and on the "tables" a blocking query watches: ``services``, ``checks``,
``nodes`` and ``service.<name>``. A query's ``X-Consul-Index`` is the largest stamp among the
tables it reads, so a blocking query wakes when, and only when, something it could see changed.

The catalog is plain data with no locks: the registry touches it only from its event-loop thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._decode import format_duration

PASSING, WARNING, CRITICAL, MAINTENANCE = "passing", "warning", "critical", "maintenance"
STATUS_ORDER = {PASSING: 0, WARNING: 1, CRITICAL: 2, MAINTENANCE: 3}
SERF_CHECK_ID = "serfHealth"


@dataclass
class Node:
    name: str
    id: str
    address: str
    datacenter: str
    create_index: int = 0
    modify_index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Node": self.name,
            "Address": self.address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {
                "lan": self.address, "lan_ipv4": self.address,
                "wan": self.address, "wan_ipv4": self.address,
            },
            "Meta": {"consul-network-segment": "", "consul-version": "1.20.0"},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class Service:
    id: str
    name: str
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
        """Return the service as ``/v1/health/service`` and ``/v1/catalog/service`` embed it."""
        out: dict[str, Any] = {
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Address": self.address,
            "Meta": dict(self.meta),
            "Port": self.port,
            "Weights": dict(self.weights),
            "EnableTagOverride": self.enable_tag_override,
            "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {},
            "PeerName": "",
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
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
    create_index: int = 0
    modify_index: int = 0

    def to_json(self, service_tags: list[str]) -> dict[str, Any]:
        return {
            "Node": self.node,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": self.notes,
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": list(service_tags),
            "Type": self.type,
            "Interval": format_duration(self.interval) if self.interval else "",
            "Timeout": format_duration(self.timeout) if self.timeout else "",
            "ExposedPort": 0,
            "Definition": {},
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


class Catalog:
    """Services and checks of one agent node, with indexes for blocking queries."""

    def __init__(self, node_name: str, address: str, datacenter: str,
                 on_change: Callable[[], None] = lambda: None):
        self.index = 0
        self._tables: dict[str, int] = {}
        self._on_change = on_change
        self.node = Node(node_name, str(uuid.uuid4()), address, datacenter)
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        stamp = self._write("nodes", "checks")
        self.node.create_index = self.node.modify_index = stamp
        serf = Check(node_name, SERF_CHECK_ID, "Serf Health Status", PASSING,
                     output="Agent alive and reachable")
        serf.create_index = serf.modify_index = stamp
        self.checks[SERF_CHECK_ID] = serf

    # -- indexes -----------------------------------------------------------------------------
    def _write(self, *tables: str) -> int:
        self.index += 1
        for table in tables:
            self._tables[table] = self.index
        return self.index

    def table_index(self, *tables: str) -> int:
        """Return the latest index among ``tables`` (at least 1, as Consul never answers 0)."""
        return max([self._tables.get(t, 0) for t in tables] + [1])

    # -- writes ------------------------------------------------------------------------------
    def upsert_service(self, service: Service, checks: list[Check], replace_checks: bool) -> None:
        """Add or replace a service and its checks in one write."""
        old = self.services.get(service.id)
        touched = {"services", "checks", f"service.{service.name}"}
        if old is not None:
            touched.add(f"service.{old.name}")
        stamp = self._write(*touched)
        service.create_index = old.create_index if old else stamp
        service.modify_index = stamp
        self.services[service.id] = service
        if replace_checks:
            for check_id in [c.check_id for c in self.service_checks(service.id)]:
                if check_id not in {c.check_id for c in checks}:
                    del self.checks[check_id]
        for check in checks:
            previous = self.checks.get(check.check_id)
            check.create_index = previous.create_index if previous else stamp
            check.modify_index = stamp
            self.checks[check.check_id] = check
        self._on_change()

    def remove_service(self, service_id: str) -> Service | None:
        """Remove a service and its checks; return it, or None if it was not registered."""
        service = self.services.pop(service_id, None)
        if service is None:
            return None
        for check_id in [c.check_id for c in self.service_checks(service_id)]:
            del self.checks[check_id]
        self._write("services", "checks", f"service.{service.name}")
        self._on_change()
        return service

    def set_check_status(self, check_id: str, status: str, output: str) -> bool:
        """Record a check result; return True if it changed what a query sees.

        As Consul does, only a change of status or output is a write; an identical result
        leaves every index alone, so watchers are not woken by checks that keep passing.
        """
        check = self.checks.get(check_id)
        if check is None or (check.status == status and check.output == output):
            return False
        check.status, check.output = status, output
        tables = ["checks"]
        if check.service_name:
            tables.append(f"service.{check.service_name}")
        check.modify_index = self._write(*tables)
        self._on_change()
        return True

    # -- reads -------------------------------------------------------------------------------
    def service_checks(self, service_id: str) -> list[Check]:
        return [c for c in self.checks.values() if c.service_id == service_id]

    def node_checks(self) -> list[Check]:
        return [c for c in self.checks.values() if not c.service_id]

    def instances(self, name: str) -> list[Service]:
        return sorted((s for s in self.services.values() if s.name == name), key=lambda s: s.id)

    def aggregate_status(self, service: Service) -> str:
        """Return the worst status among the service's checks and its node's checks."""
        checks = self.service_checks(service.id) + self.node_checks()
        return max((c.status for c in checks), key=STATUS_ORDER.__getitem__, default=PASSING)

    def health_entry(self, service: Service) -> dict[str, Any]:
        """Return one element of ``/v1/health/service/:name``."""
        checks = self.node_checks() + self.service_checks(service.id)
        return {
            "Node": self.node.to_json(),
            "Service": service.to_json(),
            "Checks": [c.to_json(service.tags if c.service_id else []) for c in checks],
        }
