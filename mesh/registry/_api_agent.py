"""``/v1/agent/*``: the local agent's services and checks, TTL updates, maintenance mode."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from typing import Any

from aiohttp import web

from ._catalog import (
    CONSUL_SERVICE,
    CONSUL_VERSION,
    CRITICAL,
    NODE_MAINT_ID,
    PASSING,
    SERVICE_MAINT_PREFIX,
    WARNING,
    Check,
    Service,
)
from ._checks import check_type
from ._context import Context, check_owner, check_owners, flag, owned_by, text
from ._decode import DecodeError, decode_check, decode_service, parse_json
from .acl import READ, WRITE

MAINT_DEFAULT_REASON = ("Maintenance mode is enabled for this service, but no reason was provided. "
                        "This is a default message.")
NODE_MAINT_DEFAULT_REASON = ("Maintenance mode is enabled for this node, but no reason was provided. "
                             "This is a default message.")


def _unknown_service(service_id: str) -> web.Response:
    return text(404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
                     "not the service name.")


def _unknown_check(check_id: str) -> web.Response:
    return text(404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, '
                     "not the check name.")


def _enable_flag(request: web.Request) -> bool:
    """Return the required ``?enable=true|false`` of the maintenance endpoints (400 otherwise)."""
    if "enable" not in request.query:
        raise web.HTTPBadRequest(text="Missing value for enable")
    value = request.query["enable"].lower()
    if value not in ("true", "false"):
        raise web.HTTPBadRequest(text=f"Invalid value for enable: {request.query['enable']!r}")
    return value == "true"


def build_check(ctx: Context, c: dict[str, Any], default_id: str, default_name: str,
                service: Service | None) -> Check:
    """Validate one decoded check definition and return the Check it registers."""
    kind = check_type(c)
    if c.get("ScriptArgs"):  # Consul refuses a script check registered over HTTP with a 500
        raise DecodeError("Scripts are disabled on this agent from remote calls; to enable, configure "
                          "'enable_script_checks' to true", status=500)
    if not kind:
        raise DecodeError("Invalid check: TTL, TCP, HTTP or GRPC must be given "
                          "(other check kinds are not run by this registry)")
    if kind != "ttl" and not c.get("Interval"):
        raise DecodeError("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks")
    deregister_after = c.get("DeregisterCriticalServiceAfter") or 0.0
    if deregister_after:
        deregister_after = max(deregister_after, ctx.reap_min)
    return Check(
        node=ctx.catalog.local, check_id=c.get("CheckID") or default_id,
        name=c.get("Name") or default_name, status=c.get("Status") or CRITICAL,
        notes=c.get("Notes") or "", service_id=service.id if service else "",
        service_name=service.name if service else "", type=kind,
        interval=c.get("Interval") or 0.0, timeout=c.get("Timeout") or 0.0, definition=c,
        deregister_after=deregister_after,
    )


def build_service(ctx: Context, d: dict[str, Any], node: str) -> tuple[Service, list[Check]]:
    name = d.get("Name") or ""
    if not name:
        raise DecodeError("Missing service name")
    port = d.get("Port") or 0
    if not 0 <= port <= 65535:
        raise DecodeError(f"Invalid service port {port}")
    if CONSUL_SERVICE in (name, d.get("ID")) and node == ctx.catalog.local:
        raise DecodeError(f'the service "{CONSUL_SERVICE}" is the registry\'s own: it cannot be registered '
                          "or replaced")
    service = Service(
        id=d.get("ID") or name, name=name, node=node, address=d.get("Address") or "", port=port,
        tags=list(d.get("Tags") or []), meta=dict(d.get("Meta") or {}),
        weights={"Passing": 1, "Warning": 1, **(d.get("Weights") or {})},
        enable_tag_override=bool(d.get("EnableTagOverride")),
        tagged_addresses=dict(d.get("TaggedAddresses") or {}), kind=d.get("Kind") or "",
    )
    definitions = d["Checks"]
    checks = []
    for i, c in enumerate(definitions):
        suffix = "" if len(definitions) == 1 else f":{i + 1}"
        checks.append(build_check(ctx, c, f"service:{service.id}{suffix}",
                                  f"Service '{name}' check", service))
    if len({c.check_id for c in checks}) != len(checks):
        raise DecodeError("Invalid check: duplicate CheckID")
    return service, checks


class AgentAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- the agent itself --------------------------------------------------------------------
    def _member(self) -> dict[str, Any]:
        node = self.ctx.catalog.node
        return {
            "Name": node.name, "Addr": node.address, "Port": 8301,
            "Tags": {"dc": node.datacenter, "role": "consul", "build": CONSUL_VERSION, "id": node.id},
            "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
        }

    async def self_(self, request: web.Request) -> web.Response:
        node = self.ctx.catalog.node
        self.ctx.require(request, "agent", READ, node.name)
        checks, index = self._local_checks(), str(self.ctx.indexes.index)
        return self.ctx.json({
            "Config": {
                "Datacenter": node.datacenter, "PrimaryDatacenter": node.datacenter,
                "NodeName": node.name, "NodeID": node.id, "Revision": "mesh.registry",
                "Server": True, "Version": CONSUL_VERSION, "BuildDate": "",
            },
            "DebugConfig": {
                "Datacenter": node.datacenter, "PrimaryDatacenter": node.datacenter, "NodeName": node.name,
                "NodeID": node.id, "ServerMode": True, "Bootstrap": True, "BootstrapExpect": 0,
                "ClientAddrs": [self.ctx.catalog.node.address], "ConnectEnabled": False,
                "EnableScriptChecks": False, "DNSOnlyPassing": True, "DNSUDPAnswerLimit": 3,
                "TombstoneTTL": "15m0s", "Version": CONSUL_VERSION, "Revision": "mesh.registry",
            },
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
            "Member": self._member(),
            "Stats": {  # Consul's sections, every value a string as Consul gives them
                "agent": {"check_monitors": "0", "check_ttls": str(sum(c.type == "ttl" for c in checks)),
                          "checks": str(len(checks)), "services": str(len(self.ctx.catalog.local_services()))
                          },
                "build": {"prerelease": "", "revision": "mesh.registry", "version": CONSUL_VERSION,
                          "version_metadata": ""},
                "consul": {"acl": "enabled" if self.ctx.acl else "disabled", "bootstrap": "true",
                           "known_datacenters": "1", "leader": "true", "leader_addr": self.ctx.leader,
                           "server": "true"},
                "raft": {"applied_index": index, "commit_index": index, "last_log_index": index,
                         "num_peers": "0", "state": "Leader"},
                "runtime": {"arch": platform.machine(), "os": sys.platform,
                            "version": platform.python_version()},
                "serf_lan": {"members": "1", "failed": "0", "left": "0"},
                "serf_wan": {"members": "1", "failed": "0", "left": "0"},
            },
            "Meta": dict(node.meta),
            "xDS": {"SupportedProxies": {"envoy": []}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
        })

    async def members(self, request: web.Request) -> web.Response:
        members = self.ctx.visible(request, [self._member()], owned_by("node", lambda m: m["Name"]))
        return self.ctx.json(members)

    # -- services ----------------------------------------------------------------------------
    async def services(self, request: web.Request) -> web.Response:
        dc = self.ctx.catalog.datacenter
        services = self.ctx.visible(request, self.ctx.catalog.local_services(),
                                    owned_by("service", lambda s: s.name))
        items = {s.id: s.to_agent_json(dc) for s in services}
        keep = {s["ID"] for s in self.ctx.filtered(request, list(items.values()))}
        return self.ctx.json({k: v for k, v in items.items() if k in keep})

    async def service(self, request: web.Request) -> web.Response:
        if request.match_info["service_id"] == "register":  # Consul routes this path to register
            return text(405, f"method {request.method} not allowed")
        service = self.ctx.catalog.local_service(request.match_info["service_id"])
        if service is None:
            return text(404, f"unknown service ID: {request.match_info['service_id']}")
        self.ctx.require(request, "service", READ, service.name)
        out = service.to_agent_json(self.ctx.catalog.datacenter)
        out["ContentHash"] = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:16]
        return self.ctx.json(out)

    async def service_register(self, request: web.Request) -> web.Response:
        try:
            definition = decode_service(parse_json(await request.read()))
            service, checks = build_service(self.ctx, definition, self.ctx.catalog.local)
        except DecodeError as exc:
            return text(exc.status, str(exc))
        catalog = self.ctx.catalog
        self.ctx.require(request, "service", WRITE, service.name)
        held = catalog.local_service(service.id)
        if held is not None:  # re-registering an ID takes it from its present name too
            self.ctx.require(request, "service", WRITE, held.name)
        self._may_claim(request, service.id, [c.check_id for c in checks])
        for check in checks:  # a check ID already held by another service is that service's
            self._may_write_check(request, catalog.checks.get((catalog.local, check.check_id)))
        replace = flag(request, "replace-existing-checks")
        for old in catalog.service_checks(catalog.local, service.id):
            if replace or old.check_id in {c.check_id for c in checks}:
                self.ctx.runner.stop(old.check_id)
        catalog.upsert_service(service, checks, replace)
        for check in checks:
            self.ctx.runner.start(check)
        return text(200, "")

    async def service_deregister(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        catalog = self.ctx.catalog
        service = catalog.local_service(service_id)
        if service is None:
            return _unknown_service(service_id)
        self.ctx.require(request, "service", WRITE, service.name)
        for check in catalog.service_checks(catalog.local, service_id):
            self.ctx.runner.stop(check.check_id)
        catalog.remove_service(catalog.local, service_id)
        return text(200, "")

    async def service_maintenance(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        enable = _enable_flag(request)
        catalog = self.ctx.catalog
        service = catalog.local_service(service_id)
        if service is None:
            return _unknown_service(service_id)
        self.ctx.require(request, "service", WRITE, service.name)
        check_id = SERVICE_MAINT_PREFIX + service_id
        if enable:
            reason = request.query.get("reason") or MAINT_DEFAULT_REASON
            catalog.upsert_check(Check(catalog.local, check_id, "Service Maintenance Mode", CRITICAL,
                                       notes=reason, service_id=service.id, service_name=service.name,
                                       type="maintenance"))
        else:
            catalog.remove_check(catalog.local, check_id)
        return text(200, "")

    async def node_maintenance(self, request: web.Request) -> web.Response:
        enable = _enable_flag(request)
        catalog = self.ctx.catalog
        self.ctx.require(request, "node", WRITE, catalog.local)
        if enable:
            reason = request.query.get("reason") or NODE_MAINT_DEFAULT_REASON
            catalog.upsert_check(Check(catalog.local, NODE_MAINT_ID, "Node Maintenance Mode", CRITICAL,
                                       notes=reason, type="maintenance"))
        else:
            catalog.remove_check(catalog.local, NODE_MAINT_ID)
        return text(200, "")

    # -- checks ------------------------------------------------------------------------------
    def _local_checks(self) -> list[Check]:
        catalog = self.ctx.catalog
        return [c for c in catalog.checks.values() if c.node == catalog.local and c.check_id != "serfHealth"]

    def _may_claim(self, request: web.Request, service_id: str | None, check_ids: list[str]) -> None:
        """With ACLs on, an ID names what it belongs to as a service name would: a service ID, and
        a check ID ``service:<id>``, need ``service:write`` on that name. Beyond Consul (which checks
        the service's name alone), so that a classmate cannot take the IDs a learner's mesh will
        register under (``ada-greeter-1``, ``service:ada-greeter-1``) before it does."""
        if self.ctx.acl is None:
            return
        if service_id is not None:
            self.ctx.require(request, "service", WRITE, service_id)
        for check_id in check_ids:
            if check_id.startswith("service:"):
                self.ctx.require(request, "service", WRITE, check_id.removeprefix("service:").split(":")[0])

    def _may_write_check(self, request: web.Request, check: Check | None) -> None:
        """A service's check is the service's to change; a node's check, the node's."""
        if check is not None:
            resource, name = check_owner(check)
            self.ctx.require(request, resource, WRITE, name)

    async def checks(self, request: web.Request) -> web.Response:
        readable = self.ctx.visible(request, self._local_checks(), check_owners)
        items = {c.check_id: self.ctx.catalog.check_json(c) for c in readable}
        keep = {c["CheckID"] for c in self.ctx.filtered(request, list(items.values()))}
        return self.ctx.json({k: v for k, v in items.items() if k in keep})

    async def check_register(self, request: web.Request) -> web.Response:
        catalog = self.ctx.catalog
        try:
            definition = decode_check(parse_json(await request.read()))
            if not definition.get("Name"):
                raise DecodeError("Missing check name")
            service = None
            if definition.get("ServiceID"):
                service = catalog.local_service(definition["ServiceID"])
                if service is None:  # Consul: 404, so py-consul's check.register returns False
                    return text(404, f"ServiceID {json.dumps(definition['ServiceID'])} does not exist")
            check = build_check(self.ctx, definition, definition["Name"], definition["Name"], service)
        except DecodeError as exc:
            return text(exc.status, str(exc))
        self._may_write_check(request, check)
        self._may_write_check(request, catalog.checks.get((catalog.local, check.check_id)))
        self._may_claim(request, None, [check.check_id])
        self.ctx.runner.stop(check.check_id)
        catalog.upsert_check(check)
        self.ctx.runner.start(check)
        return text(200, "")

    async def check_deregister(self, request: web.Request) -> web.Response:
        check_id = request.match_info["check_id"]
        catalog = self.ctx.catalog
        if (catalog.local, check_id) not in catalog.checks or check_id == "serfHealth":
            return _unknown_check(check_id)
        self._may_write_check(request, catalog.checks[(catalog.local, check_id)])
        self.ctx.runner.stop(check_id)
        catalog.remove_check(catalog.local, check_id)
        return text(200, "")

    async def _ttl_update(self, request: web.Request, status: str, output: str | None = None) -> web.Response:
        check_id = request.match_info["check_id"]
        output = request.query.get("note", "") if output is None else output
        catalog = self.ctx.catalog
        check = catalog.checks.get((catalog.local, check_id))
        if check is None:
            return _unknown_check(check_id)
        self._may_write_check(request, check)
        if check.type != "ttl":
            return text(500, f'CheckID "{check_id}" does not have associated TTL')
        self.ctx.runner.touch_ttl(check, status, output)
        return text(200, "")

    async def check_pass(self, request: web.Request) -> web.Response:
        return await self._ttl_update(request, PASSING)

    async def check_warn(self, request: web.Request) -> web.Response:
        return await self._ttl_update(request, WARNING)

    async def check_fail(self, request: web.Request) -> web.Response:
        return await self._ttl_update(request, CRITICAL)

    async def check_update(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
            if not isinstance(body, dict):
                raise DecodeError("Request decode failed: body must be a JSON object")
        except DecodeError as exc:
            return text(exc.status, str(exc))
        status = body.get("Status") or body.get("status")
        if status not in (PASSING, WARNING, CRITICAL):
            return text(400, f"Invalid check status: '{status}'")
        output = body.get("Output") or body.get("output") or ""
        if not isinstance(output, str):
            return text(400, "Request decode failed: Output: expected string")
        return await self._ttl_update(request, status, output)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/agent/self", self.self_),
            web.get("/v1/agent/members", self.members),
            web.get("/v1/agent/services", self.services),
            web.get("/v1/agent/service/{service_id}", self.service),
            web.put("/v1/agent/service/register", self.service_register),
            web.put("/v1/agent/service/deregister/{service_id}", self.service_deregister),
            web.put("/v1/agent/service/maintenance/{service_id}", self.service_maintenance),
            web.put("/v1/agent/maintenance", self.node_maintenance),
            web.get("/v1/agent/checks", self.checks),
            web.put("/v1/agent/check/register", self.check_register),
            web.put("/v1/agent/check/deregister/{check_id}", self.check_deregister),
            web.put("/v1/agent/check/pass/{check_id}", self.check_pass),
            web.put("/v1/agent/check/warn/{check_id}", self.check_warn),
            web.put("/v1/agent/check/fail/{check_id}", self.check_fail),
            web.put("/v1/agent/check/update/{check_id}", self.check_update),
        ]
