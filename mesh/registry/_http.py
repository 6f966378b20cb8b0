"""Consul's HTTP API (the subset in DOCS below) over aiohttp, on the registry's event loop.

Bodies, field names, headers and status codes follow Consul's documentation, so py-consul and any
other Consul client work unchanged. Rejected requests change nothing: every handler validates the
whole request before it writes to the catalog.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._catalog import CRITICAL, PASSING, Catalog, Check, Service
from ._checks import CheckRunner, check_type
from ._decode import DecodeError, decode_service, parse_duration, parse_json

CONSUL_VERSION = "1.20.0"
DEFAULT_WAIT = 300.0  # Consul's default blocking wait: 5 minutes
MAX_WAIT = 600.0      # and its maximum: 10 minutes
MAX_BODY = 1 << 20    # bodies above 1 MiB are answered 413

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _flag(request: web.Request, name: str) -> bool:
    """Return True for ``?name``, ``?name=true`` or ``?name=1`` (Consul's boolean query flags)."""
    if name not in request.query:
        return False
    return request.query[name].lower() not in ("false", "0")


class ConsulAPI:
    """Request handlers bound to one catalog and its check runner."""

    def __init__(self, catalog: Catalog, checks: CheckRunner, leader: str):
        self.catalog = catalog
        self.checks = checks
        self.leader = leader
        self._changed = asyncio.Event()
        self.closing = False

    # -- change notification for blocking queries ----------------------------------------------
    def notify(self) -> None:
        """Wake every blocking query so that it re-reads its index."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closing = True
        self.notify()

    async def _block(self, request: web.Request, *tables: str) -> int:
        """Hold a request that carries ``?index=`` until a table it reads passes that index.

        Returns the index to report. Without ``index`` (or with 0) the query answers at once.
        """
        try:
            wanted = int(request.query.get("index", "0") or 0)
            wait = parse_duration(request.query["wait"], "wait") if "wait" in request.query else DEFAULT_WAIT
        except (ValueError, DecodeError) as exc:
            raise web.HTTPBadRequest(text=f"Invalid blocking query: {exc}") from None
        wait = min(max(wait, 0.0), MAX_WAIT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while wanted > 0 and self.catalog.table_index(*tables) <= wanted and not self.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return self.catalog.table_index(*tables)

    def _json(self, data: Any, index: int | None = None) -> web.Response:
        headers = {"X-Consul-Default-Acl-Policy": "allow"}
        if index is not None:
            headers.update({
                "X-Consul-Index": str(index),
                "X-Consul-Knownleader": "true",
                "X-Consul-Lastcontact": "0",
                "X-Consul-Effective-Consistency": "leader",
            })
        return web.Response(text=json.dumps(data), content_type="application/json", headers=headers)

    # -- /v1/agent ------------------------------------------------------------------------------
    async def agent_self(self, request: web.Request) -> web.Response:
        node = self.catalog.node
        return self._json({
            "Config": {
                "Datacenter": node.datacenter, "PrimaryDatacenter": node.datacenter,
                "NodeName": node.name, "NodeID": node.id, "Revision": "mesh.registry",
                "Server": True, "Version": CONSUL_VERSION, "BuildDate": "",
            },
            "DebugConfig": {},
            "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
            "Member": {
                "Name": node.name, "Addr": node.address, "Port": 8301,
                "Tags": {"dc": node.datacenter, "role": "consul", "build": CONSUL_VERSION},
                "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
            },
            "Stats": {},
            "Meta": {"consul-network-segment": "", "consul-version": CONSUL_VERSION},
        })

    async def agent_services(self, request: web.Request) -> web.Response:
        dc = self.catalog.node.datacenter
        return self._json({s.id: s.to_agent_json(dc) for s in self.catalog.services.values()})

    async def agent_service_register(self, request: web.Request) -> web.Response:
        try:
            definition = decode_service(parse_json(await request.read()))
            service, checks = self._build_service(definition)
        except DecodeError as exc:
            return _text(400, str(exc))
        for old in self.catalog.service_checks(service.id):
            self.checks.stop(old.check_id)
        self.catalog.upsert_service(service, checks, _flag(request, "replace-existing-checks"))
        for check in checks:
            self.checks.start(check)
        return _text(200, "")

    async def agent_service_deregister(self, request: web.Request) -> web.Response:
        service_id = request.match_info["service_id"]
        if service_id not in self.catalog.services:
            return _text(404, f'Unknown service ID "{service_id}". '
                              "Ensure that the service ID is passed, not the service name.")
        for check in self.catalog.service_checks(service_id):
            self.checks.stop(check.check_id)
        self.catalog.remove_service(service_id)
        return _text(200, "")

    def _build_service(self, d: dict[str, Any]) -> tuple[Service, list[Check]]:
        name = d.get("Name") or ""
        if not name:
            raise DecodeError("Missing service name")
        port = d.get("Port") or 0
        if not 0 <= port <= 65535:
            raise DecodeError(f"Invalid service port {port}")
        service = Service(
            id=d.get("ID") or name, name=name, address=d.get("Address") or "", port=port,
            tags=list(d.get("Tags") or []), meta=dict(d.get("Meta") or {}),
            weights={"Passing": 1, "Warning": 1, **(d.get("Weights") or {})},
            enable_tag_override=bool(d.get("EnableTagOverride")),
            tagged_addresses=dict(d.get("TaggedAddresses") or {}), kind=d.get("Kind") or "",
        )
        definitions = d["Checks"]
        checks = []
        for i, c in enumerate(definitions):
            kind = check_type(c)
            if c.get("ScriptArgs"):
                raise DecodeError("Scripts are disabled on this agent; to enable, configure "
                                  "'enable_script_checks' or 'enable_local_script_checks' to true")
            if not kind:
                raise DecodeError("Invalid check: TTL, TCP, HTTP or GRPC must be given "
                                  "(other check kinds are not run by this registry)")
            if kind != "ttl" and not c.get("Interval"):
                raise DecodeError("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, "
                                  "TCP or UDP checks")
            suffix = "" if len(definitions) == 1 else f":{i + 1}"
            default_id = f"service:{service.id}{suffix}"
            checks.append(Check(
                node=self.catalog.node.name, check_id=c.get("CheckID") or default_id,
                name=c.get("Name") or f"Service '{name}' check", status=c.get("Status") or CRITICAL,
                notes=c.get("Notes") or "", service_id=service.id, service_name=name, type=kind,
                interval=c.get("Interval") or 0.0, timeout=c.get("Timeout") or 0.0, definition=c,
            ))
        if len({c.check_id for c in checks}) != len(checks):
            raise DecodeError("Invalid check: duplicate CheckID")
        return service, checks

    # -- /v1/health and /v1/catalog -------------------------------------------------------------
    async def health_service(self, request: web.Request) -> web.Response:
        name = request.match_info["service"]
        index = await self._block(request, f"service.{name}", "nodes")
        tag = request.query.getall("tag", [])
        entries = [
            self.catalog.health_entry(s) for s in self.catalog.instances(name)
            if all(t in s.tags for t in tag)
            and (not _flag(request, "passing") or self.catalog.aggregate_status(s) == PASSING)
        ]
        return self._json(entries, index)

    async def catalog_services(self, request: web.Request) -> web.Response:
        index = await self._block(request, "services")
        names: dict[str, list[str]] = {}
        for service in self.catalog.services.values():
            tags = names.setdefault(service.name, [])
            tags.extend(t for t in service.tags if t not in tags)
        return self._json(dict(sorted(names.items())), index)

    async def status_leader(self, request: web.Request) -> web.Response:
        return self._json(self.leader)

    async def status_peers(self, request: web.Request) -> web.Response:
        return self._json([self.leader])

    # -- application ----------------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_consul_errors])
        app.add_routes([
            web.get("/v1/agent/self", self.agent_self),
            web.get("/v1/agent/services", self.agent_services),
            web.put("/v1/agent/service/register", self.agent_service_register),
            web.put("/v1/agent/service/deregister/{service_id}", self.agent_service_deregister),
            web.get("/v1/health/service/{service}", self.health_service),
            web.get("/v1/catalog/services", self.catalog_services),
            web.get("/v1/status/leader", self.status_leader),
            web.get("/v1/status/peers", self.status_peers),
        ])
        return app


@web.middleware
async def _consul_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer routing and size errors with Consul's plain-text bodies."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return _text(405, f"method {request.method} not allowed")
    except web.HTTPRequestEntityTooLarge:
        return _text(413, f"Request body too large, max size: {MAX_BODY} bytes")
    except web.HTTPNotFound:
        return _text(404, "404 page not found")
