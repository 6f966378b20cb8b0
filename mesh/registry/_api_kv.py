"""``/v1/kv/*`` and ``/v1/session/*``: the key/value store, check-and-set, locks and sessions."""

from __future__ import annotations

import json

from aiohttp import web

from ._context import Context, flag, owned_by, text
from ._decode import DecodeError, _canonical, _index, parse_duration, parse_json
from ._kv import MAX_VALUE, KVError
from .acl import READ, WRITE, permission_denied

_SESSION = _index(["Name", "Node", "LockDelay", "Behavior", "TTL", "Checks", "NodeChecks",
                   "ServiceChecks"])


def _int_param(request: web.Request, name: str) -> int | None:
    if name not in request.query:
        return None
    try:
        value = int(request.query[name])
    except ValueError:
        raise web.HTTPBadRequest(text=f"Invalid {name} index: {request.query[name]!r}") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"Invalid {name} index: {value}")
    return value


class KVAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._answers: dict[tuple, tuple[int, bytes]] = {}  # rendered GET answers, by KV version

    @property
    def kv(self):
        return self.ctx.kv

    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        keys_only = flag(request, "keys")
        recurse = flag(request, "recurse") or keys_only
        authz = self.ctx.authz(request)
        if not recurse:
            self.ctx.require(request, "key", READ, key)
        index = await self.ctx.block(request, lambda: self.kv.index_for(key, recurse), table="kvs")
        raw = flag(request, "raw") and not keys_only
        separator = request.query.get("separator") or None
        # Watchers of one prefix woken by one write get the same answer: render it once. A listing
        # the ACLs filter for this request's token is rendered for it alone.
        asked = (self.kv.version, key, recurse, keys_only, separator, raw)
        if recurse and not authz.management:
            status, body = self._render(asked, request)
        else:
            status, body = self._answers.get(asked) or self._render(asked)
        if raw and status == 200:
            return web.Response(body=body, content_type="application/octet-stream",
                                headers={"X-Consul-Index": str(index)})
        return self.ctx.json_bytes(body, index, status)

    def _render(self, asked: tuple, filtered_for: web.Request | None = None) -> tuple[int, bytes]:
        """Render a GET's answer; for ``filtered_for`` a request, only what its token may read."""
        _, key, recurse, keys_only, separator, raw = asked
        if keys_only:
            listing = self.kv.keys(key, separator)
            if filtered_for is not None:
                listing = self.ctx.visible(filtered_for, listing, owned_by("key"))
            answer = (200, json.dumps(listing).encode()) if listing else (404, b"null")
        else:
            entries = self.kv.matching(key, recurse)
            if filtered_for is not None:
                entries = self.ctx.visible(filtered_for, entries, owned_by("key", lambda e: e.key))
                if not entries:
                    return 404, b""
            if not entries:
                answer = (404, b"")
            elif raw:
                answer = (200, entries[0].value or b"")
            else:
                answer = (200, json.dumps([e.to_json() for e in entries]).encode())
        if filtered_for is not None:
            return answer
        if len(self._answers) >= 64:
            self._answers.pop(next(iter(self._answers)))
        self._answers[asked] = answer
        return answer

    async def put(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.ctx.require(request, "key", WRITE, key)
        if request.content_length is not None and request.content_length > MAX_VALUE:
            return text(413, f"Request body(>{MAX_VALUE} bytes) too large, max size: {MAX_VALUE} bytes.")
        body = await request.read()
        try:
            flags = _int_param(request, "flags")
            cas = _int_param(request, "cas")
            ok = self.kv.put(key, body, flags=flags, cas=cas, acquire=request.query.get("acquire"),
                             release=request.query.get("release"))
        except KVError as exc:
            return text(exc.status, str(exc))
        return self.ctx.json(ok)

    async def delete(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if flag(request, "recurse"):
            if not self.ctx.authz(request).may_write_every_key_under(key):
                raise permission_denied(self.ctx.token(request).accessor_id, "key", WRITE, key)
        else:
            self.ctx.require(request, "key", WRITE, key)
        try:
            ok = self.kv.delete(key, recurse=flag(request, "recurse"), cas=_int_param(request, "cas"))
        except KVError as exc:
            return text(exc.status, str(exc))
        return self.ctx.json(ok)

    # -- sessions ----------------------------------------------------------------------------
    async def session_create(self, request: web.Request) -> web.Response:
        try:
            raw = parse_json(await request.read())
            body = _canonical(raw if raw is not None else {}, _SESSION, "Session")
            for field in ("Name", "Node", "Behavior"):
                if body.get(field) is not None and not isinstance(body[field], str):
                    raise DecodeError(f"Request decode failed: Session.{field}: expected string")
            node = body.get("Node") or self.ctx.catalog.local
            self.ctx.require(request, "session", WRITE, node)
            if node not in self.ctx.catalog.nodes:
                raise KVError(f"Missing node registration: {node!r}", status=500)
            lock_delay = 15.0
            if body.get("LockDelay") is not None:
                lock_delay = parse_duration(body["LockDelay"], "LockDelay")
            ttl = parse_duration(body["TTL"], "TTL") if body.get("TTL") else 0.0
            node_checks = body.get("NodeChecks", body.get("Checks"))
            for check_id in node_checks if node_checks is not None else ["serfHealth"]:
                check = self.ctx.catalog.checks.get((node, check_id))
                if check is None:
                    raise KVError(f"Missing check '{check_id}' registration", status=500)
                if check.status == "critical":
                    raise KVError(f"Check '{check_id}' is in critical state", status=500)
            session = self.kv.create_session(node, body.get("Name") or "", lock_delay,
                                             body.get("Behavior") or "release", ttl, node_checks,
                                             body.get("ServiceChecks"))
        except DecodeError as exc:
            return text(exc.status, str(exc))
        except KVError as exc:
            return text(exc.status, str(exc))
        return self.ctx.json({"ID": session.id})

    def _may_write_session(self, request: web.Request) -> None:
        session = self.kv.sessions.get(request.match_info["session"])
        if session is not None:
            self.ctx.require(request, "session", WRITE, session.node)

    def _readable_sessions(self, request: web.Request, sessions) -> list:
        readable = self.ctx.visible(request, sessions, owned_by("session", lambda s: s.node))
        return [s.to_json() for s in readable]

    async def session_destroy(self, request: web.Request) -> web.Response:
        self._may_write_session(request)
        self.kv.destroy_session(request.match_info["session"])
        return self.ctx.json(True)

    async def session_info(self, request: web.Request) -> web.Response:
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("sessions"))
        session = self.kv.sessions.get(request.match_info["session"])
        found = self._readable_sessions(request, [session] if session else [])
        return self.ctx.json(found or None, index)

    async def session_list(self, request: web.Request) -> web.Response:
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("sessions"))
        return self.ctx.json(self._readable_sessions(request, self.kv.sessions.values()), index)

    async def session_node(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("sessions"))
        on_node = [s for s in self.kv.sessions.values() if s.node == node]
        return self.ctx.json(self._readable_sessions(request, on_node), index)

    async def session_renew(self, request: web.Request) -> web.Response:
        self._may_write_session(request)
        try:
            session = self.kv.renew_session(request.match_info["session"])
        except KVError as exc:
            return text(exc.status, str(exc))
        return self.ctx.json([session.to_json()])

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/kv/{key:.*}", self.get),
            web.put("/v1/kv/{key:.*}", self.put),
            web.delete("/v1/kv/{key:.*}", self.delete),
            web.put("/v1/session/create", self.session_create),
            web.put("/v1/session/destroy/{session}", self.session_destroy),
            web.get("/v1/session/info/{session}", self.session_info),
            web.get("/v1/session/list", self.session_list),
            web.get("/v1/session/node/{node}", self.session_node),
            web.put("/v1/session/renew/{session}", self.session_renew),
        ]


class MiscAPI:
    """``/v1/status/*`` and ``/v1/event/*``."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def leader(self, request: web.Request) -> web.Response:
        return self.ctx.json(self.ctx.leader)

    async def peers(self, request: web.Request) -> web.Response:
        return self.ctx.json([self.ctx.leader])

    async def event_fire(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not name:
            return text(400, "Missing name")
        self.ctx.require(request, "event", WRITE, name)
        payload = await request.read()
        if len(payload) > 100 * 1024:
            return text(413, "Event payload too large: user event exceeds limit of 100 KB")
        q = request.query
        event = self.ctx.events.fire(name, payload, q.get("node", ""), q.get("service", ""), q.get("tag", ""))
        return self.ctx.json(event)

    async def event_list(self, request: web.Request) -> web.Response:
        index = await self.ctx.block(request, lambda: self.ctx.indexes.table("events"))
        events = self.ctx.events.list(request.query.get("name", ""))
        return self.ctx.json(self.ctx.visible(request, events, owned_by("event", lambda e: e["Name"])), index)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/status/leader", self.leader),
            web.get("/v1/status/peers", self.peers),
            web.put("/v1/event/fire/{name}", self.event_fire),
            web.get("/v1/event/list", self.event_list),
        ]
