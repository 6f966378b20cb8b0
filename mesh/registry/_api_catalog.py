"""``/v1/catalog/*`` and ``/v1/health/*``: what every node runs, and how healthy it is."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._api_agent import build_service
from ._catalog import CRITICAL, PASSING, WARNING, Check
from ._context import Context, check_owner, check_owners, flag, instance_owners, owned_by, text
from ._decode import DecodeError, _canonical, _index, decode_check, decode_service, parse_json
from .acl import WRITE

_REGISTER = _index(["ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "Service",
                    "Check", "Checks", "SkipNodeUpdate"])
_DEREGISTER = _index(["Node", "Datacenter", "ServiceID", "CheckID"])
STATES = ("any", PASSING, WARNING, CRITICAL)


def _agent_service(raw: object) -> object:
    """Catalog registration names the service ``Service`` (Consul's AgentService); agents say ``Name``."""
    if isinstance(raw, dict):
        names = [k for k in raw if k.lower() == "service"]
        if names and not any(k.lower() == "name" for k in raw):
            raw = {("Name" if k == names[0] else k): v for k, v in raw.items()}
    return raw


class CatalogAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    @property
    def catalog(self):
        return self.ctx.catalog

    def _tables(self, name: str) -> int:
        return self.ctx.indexes.table(f"service.{name}", "nodes")

    def _on_nodes(self, request: web.Request):
        """Return a test of node names for the query's ``node-meta=key:value`` filters (all must
        hold), and whether the query names a cluster peer — none is known, so it sees nothing."""
        wanted = [pair.partition(":") for pair in request.query.getall("node-meta", [])]
        peer = bool(request.query.get("peer"))

        def ok(node_name: str) -> bool:
            if peer:
                return False
            node = self.catalog.nodes.get(node_name)
            meta = node.meta if node is not None else {}
            return all(meta.get(key) == value for key, _, value in wanted)

        return ok

    # -- catalog -----------------------------------------------------------------------------
    async def services(self, request: web.Request) -> web.Response:
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("services"))
        on_node = self._on_nodes(request)
        names: dict[str, list[str]] = {}
        for service in self.ctx.visible(request, self.catalog.services.values(), instance_owners):
            if not on_node(service.node):
                continue
            tags = names.setdefault(service.name, [])
            tags.extend(t for t in service.tags if t not in tags)
        return self.ctx.json(dict(sorted(names.items())), index)

    async def service(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        index = await self.ctx.block(request, lambda: self._tables(name))
        tags = request.query.getall("tag", [])
        on_node = self._on_nodes(request)
        rows = [s.to_catalog_json(self.catalog.nodes[s.node])
                for s in self.ctx.visible(request, self.catalog.instances(name), instance_owners)
                if all(t in s.tags for t in tags) and on_node(s.node)]
        return self.ctx.json(self.ctx.filtered(request, rows), index)

    async def datacenters(self, request: web.Request) -> web.Response:
        return self.ctx.json([self.catalog.datacenter])

    async def nodes(self, request: web.Request) -> web.Response:
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("nodes"))
        on_node = self._on_nodes(request)
        names = self.ctx.visible(request, sorted(self.catalog.nodes), owned_by("node"))
        rows = [self.catalog.nodes[name].to_json() for name in names if on_node(name)]
        return self.ctx.json(self.ctx.filtered(request, rows), index)

    async def node(self, request: web.Request) -> web.Response:
        name = request.match_info["node"]
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("nodes", "services"))
        node = self.catalog.nodes.get(name)
        if node is None or not self.ctx.visible(request, [name], owned_by("node")):
            return self.ctx.json(None, index)
        readable = self.ctx.visible(request, self.catalog.node_services(name), instance_owners)
        services = {s.id: s.to_json() for s in readable}
        return self.ctx.json({"Node": node.to_json(), "Services": services}, index)

    async def register(self, request: web.Request) -> web.Response:
        """Register a node, optionally with a service and checks (external services)."""
        try:
            body = _canonical(parse_json(await request.read()), _REGISTER, "Register")
            node_name, address = body.get("Node"), body.get("Address")
            if not isinstance(node_name, str) or not node_name:
                raise DecodeError("Must provide node")
            if not isinstance(address, str) or not address:
                raise DecodeError("Must provide address if SkipNodeUpdate is not set")
            service = checks = None
            if body.get("Service") is not None:
                definition = decode_service(_agent_service(body["Service"]))
                service, _ = build_service(self.ctx, definition, node_name)
            raw_checks = ([body["Check"]] if body.get("Check") else []) + list(body.get("Checks") or [])
            checks = [decode_check(c, "Check") for c in raw_checks]
            for c in checks:
                if not c.get("CheckID") and not c.get("Name"):
                    raise DecodeError("Missing check name")
        except DecodeError as exc:
            return text(exc.status, str(exc))
        self.ctx.require(request, "node", WRITE, node_name)
        if service is not None:
            self.ctx.require(request, "service", WRITE, service.name)
            held = self.catalog.services.get((node_name, service.id))
            if held is not None:
                self.ctx.require(request, "service", WRITE, held.name)
        for c in checks:  # a check is its service's to set (and an existing one, its owner's)
            owner = self.catalog.services.get((node_name, c.get("ServiceID") or ""))
            if owner is not None:
                self.ctx.require(request, "service", WRITE, owner.name)
            existing = self.catalog.checks.get((node_name, c.get("CheckID") or c.get("Name")))
            if existing is not None:
                self.ctx.require(request, check_owner(existing)[0], WRITE, check_owner(existing)[1])
        self.catalog.ensure_node(node_name, address, body.get("ID"), body.get("NodeMeta"),
                                 body.get("TaggedAddresses"))
        if service is not None:
            self.catalog.upsert_service(service, [])
        for c in checks:
            owner = self.catalog.services.get((node_name, c.get("ServiceID") or ""))
            self.catalog.upsert_check(Check(
                node_name, c.get("CheckID") or c["Name"], c.get("Name") or c["CheckID"],
                c.get("Status") or CRITICAL, notes=c.get("Notes") or "", output="",
                service_id=owner.id if owner else "", service_name=owner.name if owner else "",
            ))
        return self.ctx.json(True)

    async def deregister(self, request: web.Request) -> web.Response:
        try:
            body = _canonical(parse_json(await request.read()), _DEREGISTER, "Deregister")
        except DecodeError as exc:
            return text(exc.status, str(exc))
        node = body.get("Node")
        if not node:
            return text(400, "Must provide node")
        if node == self.catalog.local:
            return text(400, "cannot deregister the agent's own node through the catalog; "
                             "use /v1/agent/service/deregister")
        if body.get("ServiceID"):
            held = self.catalog.services.get((node, body["ServiceID"]))
            if held is not None:
                self.ctx.require(request, "service", WRITE, held.name)
            self.catalog.remove_service(node, body["ServiceID"])
        elif body.get("CheckID"):
            check = self.catalog.checks.get((node, body["CheckID"]))
            if check is not None:
                self.ctx.require(request, check_owner(check)[0], WRITE, check_owner(check)[1])
            self.catalog.remove_check(node, body["CheckID"])
        else:
            self.ctx.require(request, "node", WRITE, node)
            self.catalog.remove_node(node)
        return self.ctx.json(True)

    # -- health ------------------------------------------------------------------------------
    async def health_service(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        index = await self.ctx.block(request, lambda: self._tables(name))
        tags = request.query.getall("tag", [])
        passing = flag(request, "passing")
        on_node = self._on_nodes(request)
        entries = [
            self.catalog.health_entry(s)
            for s in self.ctx.visible(request, self.catalog.instances(name), instance_owners)
            if all(t in s.tags for t in tags) and on_node(s.node)
            and (not passing or self.catalog.aggregate_status(s) == PASSING)
        ]
        return self.ctx.json(self.ctx.filtered(request, entries), index)

    def _checks_json(self, request: web.Request, checks: list[Check]) -> list[dict[str, Any]]:
        checks = self.ctx.visible(request, checks, check_owners)
        rows = [self.catalog.check_json(c) for c in sorted(checks, key=lambda c: (c.node, c.check_id))]
        return self.ctx.filtered(request, rows)

    async def health_checks(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        index = await self.ctx.block(request, lambda: self._tables(name))
        on_node = self._on_nodes(request)
        checks = [c for c in self.catalog.checks.values() if c.service_name == name and on_node(c.node)]
        return self.ctx.json(self._checks_json(request, checks), index)

    async def health_state(self, request: web.Request) -> web.Response:
        state = request.match_info["state"]
        if state not in STATES:
            return text(400, f"Invalid state '{state}': must be one of any, passing, warning, critical")
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("checks"))
        on_node = self._on_nodes(request)
        checks = [c for c in self.catalog.checks.values()
                  if (state == "any" or c.status == state) and on_node(c.node)]
        return self.ctx.json(self._checks_json(request, checks), index)

    async def health_node(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("checks", "nodes"))
        checks = [c for c in self.catalog.checks.values() if c.node == node]
        return self.ctx.json(self._checks_json(request, checks), index)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/catalog/services", self.services),
            web.get("/v1/catalog/service/{service}", self.service),
            web.get("/v1/catalog/datacenters", self.datacenters),
            web.get("/v1/catalog/nodes", self.nodes),
            web.get("/v1/catalog/node/{node}", self.node),
            web.put("/v1/catalog/register", self.register),
            web.put("/v1/catalog/deregister", self.deregister),
            web.get("/v1/health/service/{service}", self.health_service),
            web.get("/v1/health/checks/{service}", self.health_checks),
            web.get("/v1/health/state/{state}", self.health_state),
            web.get("/v1/health/node/{node}", self.health_node),
        ]
