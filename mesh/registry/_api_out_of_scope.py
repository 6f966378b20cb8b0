"""The parts of Consul's API the workbench does not teach — Connect (the service mesh's mTLS and
intentions) and cluster peering — answered as a Consul agent with Connect disabled and no peers
answers them, so that a client sees Consul's shapes and words, not a bare 404."""

from __future__ import annotations

import json

from aiohttp import web

from ._context import Context, text

CONNECT_DISABLED = "Connect must be enabled in order to use this endpoint"


class OutOfScopeAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def connect_disabled(self, request: web.Request) -> web.Response:
        return text(500, CONNECT_DISABLED)

    async def no_connect_instances(self, request: web.Request) -> web.Response:
        """``/v1/catalog/connect/:service`` and ``/v1/health/connect/:service``: no instance is
        Connect-capable, so the list is empty (a blocking query still blocks, as on Consul)."""
        name = request.match_info["service"]
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table(f"service.{name}", "nodes"))
        return self.ctx.json([], index)

    async def peerings(self, request: web.Request) -> web.Response:
        return self.ctx.json([], self.ctx.indexes.table("peerings"))

    async def peering(self, request: web.Request) -> web.Response:
        return text(404, f"Peering not found for {json.dumps(request.match_info['name'])}")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/v1/connect/{tail:.*}", self.connect_disabled),
            web.route("*", "/v1/agent/connect/{tail:.*}", self.connect_disabled),
            web.get("/v1/discovery-chain/{service}", self.connect_disabled),
            web.get("/v1/catalog/connect/{service}", self.no_connect_instances),
            web.get("/v1/health/connect/{service}", self.no_connect_instances),
            web.get("/v1/peerings", self.peerings),
            web.get("/v1/peering/{name}", self.peering),
        ]
