"""Consul's HTTP API over aiohttp: the routes of every API area, and Consul-style errors.

Bodies, field names, headers and status codes follow Consul's documentation, so py-consul and any
other Consul client work unchanged. Rejected requests change nothing: every handler validates the
whole request before it writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ._api_acl import ACLAPI
from ._api_agent import AgentAPI
from ._api_catalog import CatalogAPI
from ._api_kv import KVAPI, MiscAPI
from ._api_out_of_scope import OutOfScopeAPI
from ._context import ACL_FILTERED, Context, text
from ._txn import TxnAPI
from .acl import ACLError

MAX_BODY = 1 << 20    # bodies above 1 MiB are answered 413
#: Where Consul forwards a request to the datacenter its ``?dc`` names (the agent API is local).
_FORWARDED = ("/v1/catalog/", "/v1/health/", "/v1/kv/", "/v1/session/", "/v1/status/", "/v1/event/",
              "/v1/txn", "/v1/coordinate/", "/v1/query")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _consul_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer routing, size and bad-request errors with Consul's plain-text bodies."""
    try:
        response = await handler(request)
    except ACLError as exc:  # refused by the ACL system: Consul's status and words
        return text(exc.status, str(exc))
    except web.HTTPMethodNotAllowed:
        return text(405, f"method {request.method} not allowed")
    except web.HTTPRequestEntityTooLarge:
        return text(413, f"Request body too large, max size: {MAX_BODY} bytes")
    except web.HTTPNotFound:
        return text(404, "404 page not found")
    except web.HTTPBadRequest as exc:
        return text(400, exc.text or "Bad request")
    except ConnectionResetError:
        # The client went away while sending its body (a process killed mid-request): nobody to
        # answer, nothing written, and nothing for the registry's log either.
        return text(400, "client closed the connection before its request was read")
    if request.get(ACL_FILTERED):
        response.headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
    return response


def _consistency(ctx: Context):
    """Consul's query options every read shares: ``?dc`` (only this one is reachable), ``?stale``,
    ``?consistent`` and ``?cached`` — refused in the combinations Consul refuses, and answered
    with the headers Consul sets (one server: every mode reads the same, up-to-date state)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        query = request.query
        forwarded = request.path.startswith(_FORWARDED)
        if forwarded and query.get("dc") and query["dc"] != ctx.catalog.datacenter:
            return text(500, "No path to datacenter")
        if "stale" in query and "consistent" in query:
            return text(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        if "cached" in query and "consistent" in query:
            return text(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")
        response = await handler(request)
        if "X-Consul-Index" in response.headers:
            mode = "stale" if "stale" in query else "consistent" if "consistent" in query else "leader"
            response.headers["X-Consul-Effective-Consistency"] = mode
            if "cached" in query:
                response.headers["X-Cache"] = "MISS"  # no agent cache here: every read is fresh
        return response

    return middleware


def application(ctx: Context) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_consul_errors, _consistency(ctx)])
    for api in (AgentAPI(ctx), CatalogAPI(ctx), KVAPI(ctx), TxnAPI(ctx), MiscAPI(ctx), ACLAPI(ctx),
                OutOfScopeAPI(ctx)):
        app.add_routes(api.routes())
    return app
