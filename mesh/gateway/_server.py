"""The API gateway (API 网关): one HTTP entry in front of the mesh's gRPC services.

Runs an aiohttp server on its own thread and event loop (like the registry). For each request:
match a :class:`Route` (404/405 otherwise), authenticate (JWT, 401/403), rate-limit the caller
(token bucket from :mod:`mesh.policies`, 429 + ``Retry-After``), turn the query string or JSON
body into the method's request message (400 if it does not fit), answer from the cache (GET
routes with ``cache_ttl``), else call the service through the mesh as caller ``gateway`` —
balanced, with the callers' policies, traced — and answer its reply as JSON. A failed call is
answered with the HTTP status of its gRPC status, or, when the route has a ``fallback`` and the
service is unavailable, slow or overloaded, with that static answer and ``x-degraded``.
Every request leaves one :class:`GatewayRecord` in :attr:`Gateway.log` and gets an ``x-request-id``.
A service's reason for a failure (``google.rpc.ErrorInfo``, :mod:`mesh.client.errors`) is part of the
error body; ``GET /openapi.json`` is the routes' OpenAPI document and ``/docs`` Swagger UI
(:mod:`mesh.gateway._openapi`).

What a caller is told is the gateway's, never the service's: a failed call is answered with a
generic text for its status and the request id; the service's own error text (which may hold
stack details) stays in the record's ``detail``, for the operator. Limits (stated in the README):
the route's ``timeout`` is end to end — time queued for a worker counts — and each service has its
own pool of ``max_workers`` threads, so a hanging service cannot hold the others' routes; a
connection must send its request header within :data:`HEADER_TIMEOUT` seconds and its body within
:data:`BODY_TIMEOUT`; a body is at most 1 MiB of UTF-8 JSON (aiohttp's limit; numbers of at most
4,300 digits, Python's); at most :data:`MAX_BUCKETS` callers' rate-limit buckets are kept.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import descriptor_pool, message_factory
from swagger_ui_bundle import swagger_ui_path

from ..background import LoopThread
from ..client.errors import reason_of
from ..client.headers import SERVED_BY
from ..client.outcome import MeshRpcError
from ..core.lifetime import ByName
from ..policies import TokenBucket
from ..services import KINDS
from ..workload.traffic import initial_metadata
from ._auth import AuthError, Tokens
from ._openapi import DOCS_PATH, SPEC_PATH, openapi, swagger_page
from ._routes import Route, RouteTable
from ._transcode import BadRequest, http_status, to_json, to_message

DEGRADE_ON = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}
MAX_LOG = 100_000
MAX_CACHED = 10_000  # answers kept at once; the oldest go first
HEADER_TIMEOUT = 10.0  # seconds a connection has to send a request header (and idles between requests)
BODY_TIMEOUT = 10.0  # seconds a request has to send its body
MAX_BODY = 1 << 20  # bytes of body a request may send
MAX_BUCKETS = 100_000  # callers' rate-limit buckets kept at once (see Gateway._admit)
#: What a caller is told when a call fails with this status (the service's own words stay in the log).
PUBLIC_ERRORS = {
    "DEADLINE_EXCEEDED": "the service did not answer in time",
    "UNAVAILABLE": "the service is unavailable; try again later",
    "RESOURCE_EXHAUSTED": "the service is overloaded; try again later",
    "INVALID_ARGUMENT": "the service refused the request as invalid",
    "FAILED_PRECONDITION": "the request cannot be done as things stand (see reason)",
    "NOT_FOUND": "not found",
    "PERMISSION_DENIED": "the service refused the request",
    "UNAUTHENTICATED": "the service refused the request",
}
_running = ByName()
#: Swagger UI's files the gateway serves under /docs/ (from swagger-ui-bundle: no internet needed).
SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-bundle.js.map", "swagger-ui.css.map"}


@dataclass(frozen=True)
class GatewayRecord:
    """One request through the gateway."""

    time: float  # on the gateway's clock
    method: str
    path: str
    client: str  # the token's subject, or the caller's address
    status: int
    latency: float
    served_by: str = ""
    note: str = ""  # cache hit, degraded: <status>, rate limited, ...
    request_id: str = ""  # the x-request-id the caller was given
    detail: str = ""  # what went wrong, in the service's own words (never sent to the caller)


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    note: str = ""
    served_by: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    detail: str = ""


class Gateway:
    """``Gateway(mesh, [Route("/api/greet", "greeter", "SayHello"), ...])``; ``gateway.url``."""

    def __init__(self, mesh, routes: Sequence[Route], secret: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, name: str = "gateway", clock: Callable[[], float] = time.monotonic,
                 max_workers: int = 16, header_timeout: float = HEADER_TIMEOUT,
                 max_buckets: int = MAX_BUCKETS):
        self.routes = RouteTable(list(routes))
        taken = [r.path for r in self.routes
                 if r.path == SPEC_PATH or r.path.split("/")[1:2] == [DOCS_PATH[1:]]]
        if taken:
            raise ValueError(f"{taken[0]} is the gateway's own (its API documentation): choose another path")
        self._methods = {(r.service, r.method): _method(r.service, r.method) for r in self.routes}
        _running.replace(name)
        self.name = name
        self.mesh = mesh
        self.tokens = Tokens(secret or secrets.token_urlsafe(32))
        self.host, self.port = host, port
        self.log: deque[GatewayRecord] = deque(maxlen=MAX_LOG)
        self._clock = clock
        self._lock = threading.Lock()
        self._limiters: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()  # least recently used first
        self._cache: dict[tuple, tuple[float, dict, str]] = {}
        self._stubs = {service: mesh.client(service, caller="gateway") for service, _ in self._methods}
        # one pool per service (a bulkhead): a service that hangs holds only its own routes' workers
        self._pools = {service: ThreadPoolExecutor(max_workers, thread_name_prefix=f"{name}-{service}")
                       for service in self._stubs}
        self._header_timeout, self._max_buckets = header_timeout, max_buckets
        self._request_ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._thread = LoopThread(self._serve, f"{name}-http")
        try:
            self._thread.start()
        except BaseException:
            for pool in self._pools.values():
                pool.shutdown(wait=False)
            raise
        _running.claim(name, self)

    # -- public ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def issue_token(self, subject: str, scopes: Sequence[str] = (), ttl: float = 3600.0) -> str:
        """Return a token for ``subject`` (send it as ``Authorization: Bearer <token>``)."""
        return self.tokens.issue(subject, scopes, ttl)

    @property
    def rate_limited_callers(self) -> int:
        """Callers whose rate-limit bucket the gateway keeps now (idle, refilled ones are dropped)."""
        with self._lock:
            return len(self._limiters)

    def records(self) -> list[dict[str, Any]]:
        """Return the log as one dict per request."""
        return [asdict(r) for r in list(self.log)]

    def stop(self) -> None:
        """Stop serving and end the gateway's threads (requests in flight are answered first)."""
        self._thread.stop(timeout=10)
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        _running.release(self.name, self)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Gateway {self.url}: {len(list(self.routes))} routes>"

    # -- the loop thread -------------------------------------------------------------------------
    async def _serve(self, ready: Callable[[], None], stopping: asyncio.Event) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0,
                               keepalive_timeout=self._header_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            ready()
            await stopping.wait()
        finally:
            await runner.cleanup()

    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI document of the gateway's routes (also served at ``/openapi.json``)."""
        return openapi(list(self.routes), self._methods, title=f"{self.name}: the workbench's API gateway")

    # -- one request -----------------------------------------------------------------------------
    def _documentation(self, request: web.Request) -> web.StreamResponse | None:
        """Answer a GET for the API documentation (the spec, Swagger UI's page and its files)."""
        if request.method != "GET":
            return None
        if request.path == SPEC_PATH:
            return web.json_response(self.openapi())
        if request.path in (DOCS_PATH, DOCS_PATH + "/"):
            return web.Response(text=swagger_page(f"{self.name} API"), content_type="text/html")
        name = request.path.removeprefix(DOCS_PATH + "/")
        if request.path.startswith(DOCS_PATH + "/") and name in SWAGGER_FILES:
            return web.FileResponse(Path(swagger_ui_path) / name)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        documentation = self._documentation(request)
        if documentation is not None:
            return documentation
        start = self._clock()
        request_id = f"{self._id_prefix}-{next(self._request_ids)}"
        client = request.remote or "?"
        try:
            route, allowed = self.routes.find(request.method, request.path)
            if route is not None:
                answer, client = await self._route(route, request, client, start)
            elif allowed:
                methods = ", ".join(allowed)
                answer = _Answer(405, {"error": f"{request.method} is not allowed here; use {methods}"},
                                 "no route", headers={"Allow": methods})
            else:
                answer = _Answer(404, {"error": f"no route for {request.path}"}, "no route")
        except Exception as exc:  # a bug of ours: the caller learns only that, and the request id
            answer = _Answer(500, {"error": "internal error in the gateway"}, "internal error",
                             detail=repr(exc))
        if answer.status >= 500 or (answer.status >= 400 and answer.detail):
            answer.body["request_id"] = request_id  # to quote when asking the operator
        self.log.append(GatewayRecord(start, request.method, request.path, client, answer.status,
                                      self._clock() - start, answer.served_by, answer.note, request_id,
                                      answer.detail))
        return web.json_response(answer.body, status=answer.status,
                                 headers={**answer.headers, "x-request-id": request_id})

    async def _route(self, route: Route, request: web.Request, client: str,
                     start: float) -> tuple[_Answer, str]:
        """Return the answer to a routed request, and who the caller turned out to be."""
        try:
            if route.scope:
                client = self.tokens.check(request.headers.get("Authorization"), route.scope)["sub"]
            if route.rate_limit and not self._admit(route, client):
                retry = str(max(1, math.ceil(1 / route.rate_limit)))
                limited = {"error": f"rate limit of {route.rate_limit:g}/s for {client!r} reached"}
                return _Answer(429, limited, "rate limited", headers={"Retry-After": retry}), client
            data = dict(request.query) if route.http_method == "GET" else await _json_body(request)
            request_type, _ = self._methods[(route.service, route.method)]
            message = to_message(data, request_type)
        except AuthError as exc:
            return _Answer(exc.status, {"error": exc.message}, "unauthorized",
                           headers={"WWW-Authenticate": "Bearer"}), client
        except BadRequest as exc:
            return _Answer(exc.status, {"error": str(exc)}, "bad request"), client
        key = (route.path, tuple(sorted(data.items()))) if route.cache_ttl else None
        cached = self._cached(key)
        if cached is not None:
            return _Answer(200, cached[0], "cache hit", cached[1], {"x-cache": "hit"}), client
        deadline = start + route.timeout  # end to end: time queued for a worker counts
        loop = asyncio.get_running_loop()
        try:
            work = loop.run_in_executor(self._pools[route.service], self._call, route, message, deadline)
            reply, served_by = await asyncio.wait_for(work, max(deadline - self._clock(), 0.0) + 0.05)
        except (grpc.RpcError, asyncio.TimeoutError) as exc:
            if isinstance(exc, grpc.RpcError):
                code, details = exc.code().name, exc.details()
                failed_at = initial_metadata(exc).get(SERVED_BY, "")
            else:
                code, details, failed_at = "DEADLINE_EXCEEDED", "no answer by the route's timeout", ""
            if route.fallback is not None and code in DEGRADE_ON:
                degraded = _Answer(200, route.fallback, f"degraded: {code}", failed_at, {"x-degraded": code},
                                   detail=details)
                return degraded, client
            failed = {"error": PUBLIC_ERRORS.get(code, "the service failed"), "grpc_status": code}
            reason = reason_of(exc) if isinstance(exc, grpc.RpcError) else None
            if reason is not None:  # a reason the service chose to give its callers: part of the API
                failed.update(reason)
            return _Answer(http_status(code), failed, code, failed_at, detail=details), client
        except ValueError as exc:  # the mesh's channels are closed: the mesh was stopped
            return _Answer(503, {"error": "the mesh behind the gateway is not running"},
                           "mesh stopped", detail=str(exc)), client
        body = to_json(reply)
        headers = {SERVED_BY: served_by}
        if key is not None:
            headers["x-cache"] = "miss"
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    del self._cache[next(iter(self._cache))]
                self._cache[key] = (self._clock() + route.cache_ttl, body, served_by)
        return _Answer(200, body, "", served_by, headers), client

    def _call(self, route: Route, message, deadline: float):
        left = deadline - self._clock()
        if left <= 0:  # it waited for a worker until the route's time was up: do not call at all
            raise MeshRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, f"the route's {route.timeout:g} s "
                               "passed while the request waited for a worker")
        method = getattr(self._stubs[route.service], route.method)
        reply, call = method.with_call(message, timeout=left)
        return reply, initial_metadata(call).get(SERVED_BY, "")

    def _admit(self, route: Route, client: str) -> bool:
        """Take a token from the caller's bucket. A bucket that has refilled to ``burst`` is the
        same as a new one, so idle callers' buckets are dropped once full — waiting for that gains a
        caller nothing it would not have had anyway. Past :data:`MAX_BUCKETS` callers at once, the
        least recently seen one's bucket is dropped early (the only way a caller can gain)."""
        key = (route.path, client)
        with self._lock:
            bucket = self._limiters.pop(key, None)
            while self._limiters:
                oldest = next(iter(self._limiters.values()))
                if oldest.available < oldest.burst and len(self._limiters) < self._max_buckets:
                    break
                self._limiters.popitem(last=False)
            if bucket is None:
                bucket = TokenBucket(route.rate_limit, route.burst, self._clock)
            self._limiters[key] = bucket  # most recently used last
            return bucket.acquire(timeout=0) is not None

    def _cached(self, key) -> tuple[dict, str] | None:
        if key is None:
            return None
        with self._lock:
            found = self._cache.get(key)
            if found is None or found[0] <= self._clock():
                self._cache.pop(key, None)
                return None
            return found[1], found[2]


async def _json_body(request: web.Request) -> Any:
    """Return the request's JSON body; raise :class:`BadRequest` (400, 408, 413) if it has none the
    gateway can read."""
    if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
        raise BadRequest(f"the body must be UTF-8 JSON, not {request.charset}")
    try:
        raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT)
    except asyncio.TimeoutError:
        raise BadRequest(f"the body did not arrive within {BODY_TIMEOUT:g} s", 408) from None
    except web.HTTPRequestEntityTooLarge:
        raise BadRequest(f"the body is over the gateway's limit of {MAX_BODY:,} bytes", 413) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (byte {exc.start}); send JSON as UTF-8") from None
    try:
        return json.loads(text or "{}")
    except ValueError as exc:  # JSONDecodeError, or a number longer than Python converts (4,300 digits)
        raise BadRequest(f"the body is not JSON the gateway reads: {exc}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deep") from None



def _method(service: str, method: str) -> tuple[type, type]:
    """Return the request and reply classes of ``service.method`` (from the generated descriptors)."""
    kind = KINDS.get(service)
    if kind is None:
        raise ValueError(f"unknown service {service!r}; known: {sorted(KINDS)}")
    descriptor = descriptor_pool.Default().FindServiceByName(kind.grpc_service)
    found = descriptor.methods_by_name.get(method)
    if found is None:
        raise ValueError(f"{service} has no method {method!r}; it has {sorted(descriptor.methods_by_name)}")
    return (message_factory.GetMessageClass(found.input_type),
            message_factory.GetMessageClass(found.output_type))
