"""What every HTTP handler shares: the stores, the check runner, responses and blocking waits."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from ._catalog import CRITICAL, Catalog, Check
from ._decode import DecodeError, parse_duration
from ._events import EventLog
from ._filter import FilterError, apply_filter
from ._index import Indexes
from ._kv import KVStore
from .acl import ALLOW_ALL, READ, ACLConfig, ACLStore, Authorizer, Token, permission_denied

#: What a request carries once asked: its token, what that token may do, and whether a listing
#: left something out for it (the response then says so).
ACL_TOKEN = web.RequestKey("acl_token", Token)
ACL_AUTHZ = web.RequestKey("acl_authz", Authorizer)
ACL_FILTERED = web.RequestKey("acl_filtered", bool)
#: What a request may do when the registry runs without ACLs: everything, as Consul without ACLs.
UNCHECKED = Authorizer(management=True)
#: What an item of a listing belongs to, for the ACL system: ``(resource, name)`` pairs.
Owners = Callable[[Any], Iterable[tuple[str, str]]]
DEFAULT_WAIT = 300.0  # Consul's default blocking wait: 5 minutes
MAX_WAIT = 600.0      # and its maximum: 10 minutes


def text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def flag(request: web.Request, name: str) -> bool:
    """Return True for ``?name``, ``?name=true`` or ``?name=1`` (Consul's boolean query flags)."""
    if name not in request.query:
        return False
    return request.query[name].lower() not in ("false", "0")


def owned_by(resource: str, name_of: Callable[[Any], str] = str) -> Owners:
    """``owners`` for :meth:`Context.visible` where every item is one ``resource`` named ``name_of(item)``."""
    return lambda item: ((resource, name_of(item)),)


def check_owner(check: Check) -> tuple[str, str]:
    """What a check belongs to, for the ACL system: its service's, or else its node's."""
    return ("service", check.service_name) if check.service_id else ("node", check.node)


def check_owners(check: Check) -> tuple[tuple[str, str]]:
    return (check_owner(check),)


def instance_owners(instance) -> tuple[tuple[str, str], tuple[str, str]]:
    """A service instance is readable with read on its service and on the node it runs on."""
    return ("service", instance.name), ("node", instance.node)


class Context:
    """The registry's state and the helpers handlers use to read, write and answer."""

    def __init__(self, node_name: str, address: str, datacenter: str, rng: random.Random,
                 clock: Callable[[], float], reap_min: float, acl: ACLConfig | None = None):
        self.closing = False
        self._changed: dict[str, asyncio.Event] = {}  # table -> the event its next write sets; "" any
        self.indexes = Indexes(on_change=self.notify)
        self.clock = clock
        self.rng = rng
        self.reap_min = reap_min
        self.catalog = Catalog(self.indexes, node_name, address, datacenter, clock)
        self.kv = KVStore(self.indexes, clock)
        self.events = EventLog(self.indexes, rng)
        self.leader = f"{address}:8300"
        self.runner = None  # set by the server: the CheckRunner
        # None: ACLs off, every request may do everything
        self.acl = None if acl is None else ACLStore(lambda: self.indexes.write("acl"), acl, clock,
                                                     datacenter=datacenter)

    # -- who is asking -------------------------------------------------------------------------------
    @staticmethod
    def secret_of(request: web.Request) -> str:
        """The token a request carries, where Consul looks for it: ``?token``, then the
        ``X-Consul-Token`` header, then ``Authorization: Bearer``."""
        bearer = request.headers.get("Authorization", "")
        return (request.query.get("token") or request.headers.get("X-Consul-Token")
                or (bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""))

    def token(self, request: web.Request) -> Token | None:
        """The request's token (None with ACLs off); an unknown one is refused, 403 "ACL not found"."""
        if self.acl is None:
            return None
        if ACL_TOKEN not in request:
            request[ACL_TOKEN] = self.acl.resolve(self.secret_of(request))
        return request[ACL_TOKEN]

    def authz(self, request: web.Request) -> Authorizer:
        """What the request's token may do (everything with ACLs off)."""
        token = self.token(request)
        if token is None:
            return UNCHECKED
        if ACL_AUTHZ not in request:
            request[ACL_AUTHZ] = self.acl.authorizer(token)
        return request[ACL_AUTHZ]

    def anonymous_authz(self) -> Authorizer:
        """What a DNS query may do: the agent's dns (or default) token's rights, else the anonymous
        token's."""
        return UNCHECKED if self.acl is None else self.acl.authorizer(self.acl.resolve(None, use="dns"))

    def require(self, request: web.Request, resource: str, access: str, name: str | None = None) -> None:
        """Refuse the request (Consul's 403 and words) unless its token has ``access`` to ``resource``."""
        if not self.authz(request).allows(resource, access, name or ""):
            raise permission_denied(self.token(request).accessor_id, resource, access, name)

    def visible(self, request: web.Request, items: Iterable, owners: Owners) -> list:
        """Return the ``items`` the request's token may read: every ``(resource, name)`` that
        ``owners(item)`` gives must be readable (see :func:`owned_by`). A listing that left something
        out says so in its response."""
        items = list(items)
        authz = self.authz(request)
        if authz.management:
            return items
        kept = [item for item in items
                if all(authz.allows(resource, READ, name) for resource, name in owners(item))]
        if len(kept) < len(items):
            request[ACL_FILTERED] = True
        return kept

    # -- change notification for blocking queries ----------------------------------------------
    def notify(self, tables: tuple[str, ...] = ()) -> None:
        """Wake the blocking queries on ``tables`` (and those on any change) to re-read their index."""
        for table in ("", *tables):
            event = self._changed.pop(table, None)
            if event is not None:
                event.set()

    def close(self) -> None:
        self.closing = True
        for table in list(self._changed):
            self._changed.pop(table).set()

    async def block(self, request: web.Request, index_of: Callable[[], int], table: str = "") -> int:
        """Hold a request carrying ``?index=N`` until ``index_of()`` passes N or the wait ends.

        Returns the index to report. Without ``index`` (or with 0) the query answers at once. As
        Consul does, a wait is capped at 10 minutes and gets up to wait/16 of random jitter. With
        ``table``, the query re-reads its index only when that table is written (a KV watcher does
        not wake for a health check); without, on every write.
        """
        raw_index = request.query.get("index", "")
        if raw_index and not (raw_index.isascii() and raw_index.isdigit() and int(raw_index) < 1 << 64):
            raise web.HTTPBadRequest(text="Invalid index")  # Consul parses it as a uint64
        wanted = int(raw_index or 0)
        try:
            wait = parse_duration(request.query["wait"], "wait") if "wait" in request.query else DEFAULT_WAIT
        except (ValueError, DecodeError):
            raise web.HTTPBadRequest(text="Invalid wait time") from None
        wait = min(max(wait, 0.0), MAX_WAIT)
        wait += self.rng.uniform(0, wait / 16)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while wanted > 0 and index_of() <= wanted and not self.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                changed = self._changed.setdefault(table, asyncio.Event())
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return index_of()

    # -- responses ------------------------------------------------------------------------------
    def json(self, data: Any, index: int | None = None, status: int = 200) -> web.Response:
        return self.json_bytes(json.dumps(data).encode(), index, status)

    def json_bytes(self, body: bytes, index: int | None = None, status: int = 200) -> web.Response:
        """Answer an already encoded JSON ``body`` with Consul's headers."""
        headers = {"X-Consul-Default-Acl-Policy": self.acl.default_policy if self.acl else ALLOW_ALL}
        if index is not None:
            headers.update({
                "X-Consul-Index": str(index), "X-Consul-Knownleader": "true",
                "X-Consul-Lastcontact": "0", "X-Consul-Effective-Consistency": "leader",
            })
        return web.Response(body=body, status=status, content_type="application/json", headers=headers)

    @staticmethod
    def filtered(request: web.Request, items: list[Any]) -> list[Any]:
        try:
            return apply_filter(request.query.get("filter"), items)
        except FilterError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    # -- check results --------------------------------------------------------------------------
    def record_check(self, check: Check, status: str, output: str, notes: str | None = None) -> None:
        """Store a check result; a check turning critical invalidates the sessions tied to it."""
        was = check.status
        self.catalog.set_check_status(check.node, check.check_id, status, output, notes)
        if status == CRITICAL and was != CRITICAL:
            for session_id in self.kv.sessions_on_check(check.node, check.check_id, check.service_id):
                self.kv.destroy_session(session_id)

    def reap(self) -> None:
        """Deregister services critical for too long, and expire sessions past their TTL."""
        now = self.clock()
        for service in self.catalog.critical_too_long(now):
            for check in self.catalog.service_checks(service.node, service.id):
                self.runner.stop(check.check_id)
            self.catalog.remove_service(service.node, service.id)
        self.kv.expire_sessions(now)
        self.kv.prune_tombstones(now)
