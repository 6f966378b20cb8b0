"""Consul's HTTP API over aiohttp: the routes of every API area, and Consul-style errors.

Bodies, field names, headers and status codes follow Consul's documentation, so py-consul and any
other Consul client work unchanged. Rejected requests change nothing: every handler validates the
whole request before it writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ._api_agent import AgentAPI
from ._api_catalog import CatalogAPI
from ._api_kv import KVAPI, MiscAPI
from ._context import Context, text

MAX_BODY = 1 << 20    # bodies above 1 MiB are answered 413

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _consul_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer routing, size and bad-request errors with Consul's plain-text bodies."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return text(405, f"method {request.method} not allowed")
    except web.HTTPRequestEntityTooLarge:
        return text(413, f"Request body too large, max size: {MAX_BODY} bytes")
    except web.HTTPNotFound:
        return text(404, "404 page not found")
    except web.HTTPBadRequest as exc:
        return text(400, exc.text or "Bad request")


def application(ctx: Context) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_consul_errors])
    for api in (AgentAPI(ctx), CatalogAPI(ctx), KVAPI(ctx), MiscAPI(ctx)):
        app.add_routes(api.routes())
    return app
