"""``/v1/txn``: key/value operations applied together or not at all, in Consul's shape.

A transaction is a list of up to 128 ``{"KV": {"Verb": ..., "Key": ..., ...}}`` operations. They
run in order (a ``get`` sees the ``set`` before it); if any fails — a stale index, a lock held by
another session, a key that must not exist, a permission the token lacks — none is applied and
the answer is ``409`` with each failure's operation index and Consul's words. To get there
without undoing anything, the operations are first tried on a copy of the store
(:meth:`~._kv.KVStore.trial`), then applied for real only if every one succeeded. Consul's
Node, Service and Check operations are not kept here (400, saying so).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from ._context import Context, text
from ._decode import DecodeError, parse_json
from ._kv import KVError, KVStore
from .acl import READ, WRITE, Authorizer

MAX_OPS = 128  # Consul's txn_max_req_len counts bytes; its operation limit is 128 (64 before 1.13)
_READS = ("get", "get-tree", "check-index", "check-session", "check-not-exists")
_VERBS = (*_READS, "set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas")


class OpFailed(Exception):
    """One operation of a transaction failed; the message is Consul's."""


def decode(raw: Any) -> list[dict[str, Any]]:
    """Return a transaction's KV operations (field names canonical), or raise ``DecodeError``."""
    if not isinstance(raw, list):
        raise DecodeError("Failed to parse body: a transaction is a JSON array of operations")
    if len(raw) > MAX_OPS:
        raise DecodeError(f"Transaction contains too many operations ({len(raw)} > {MAX_OPS})", status=413)
    ops = []
    for number, op in enumerate(raw):
        if not isinstance(op, dict) or len(op) != 1:
            raise DecodeError(f"Failed to parse body: operation {number} must hold exactly one of KV, "
                              "Node, Service, Check")
        (kind, body), = op.items()
        if kind.upper() != "KV":
            raise DecodeError(f"{kind} operations are not supported by the embedded registry (KV only)")
        if not isinstance(body, dict):
            raise DecodeError(f"Failed to parse body: operation {number}: KV must be an object")
        fields = {k.lower(): v for k, v in body.items()}
        verb, key = fields.get("verb"), fields.get("key")
        if verb not in _VERBS:
            raise DecodeError(f"Failed to parse body: operation {number}: unknown verb {verb!r}")
        if not isinstance(key, str) or (not key and verb not in ("get-tree", "delete-tree")):
            raise DecodeError(f"Failed to parse body: operation {number}: Key must be a string")
        value = fields.get("value")
        try:
            value = base64.b64decode(value, validate=True) if value else b""
        except (binascii.Error, TypeError, ValueError):
            raise DecodeError(f"Failed to parse body: operation {number}: Value must be base64") from None
        for name in ("flags", "index"):
            number_ = fields.get(name)
            if number_ is not None and (type(number_) is not int or number_ < 0):
                raise DecodeError(f"Failed to parse body: operation {number}: {name.title()} must be a "
                                  "number")
        ops.append({"Verb": verb, "Key": key, "Value": value, "Flags": fields.get("flags"),
                    "Index": fields.get("index") or 0, "Session": fields.get("session") or ""})
    return ops


def run(kv: KVStore, authz: Authorizer, ops: list[dict[str, Any]]) -> tuple[list, list]:
    """Apply ``ops`` to ``kv``; return (results, errors) — errors non-empty means nothing changed."""
    trial, errors = kv.trial(), []
    for number, op in enumerate(ops):
        try:
            _apply(trial, authz, op)
        except OpFailed as exc:
            errors.append({"OpIndex": number, "What": str(exc)})
    if errors:
        return [], errors
    return [result for op in ops for result in _apply(kv, authz, op)], []


def _apply(kv: KVStore, authz: Authorizer, op: dict[str, Any]) -> list[dict[str, Any]]:
    verb, key = op["Verb"], op["Key"]
    if verb == "delete-tree":
        if not authz.may_write_every_key_under(key):
            raise OpFailed("Permission denied")
    elif not authz.allows("key", READ if verb in _READS else WRITE, key):
        raise OpFailed("Permission denied")
    entry = kv.entries.get(key)
    quoted = json.dumps(key)
    if verb in ("get", "check-index", "check-session") and entry is None:
        raise OpFailed(f"key {quoted} doesn't exist")
    try:
        if verb == "get-tree":
            return [{"KV": e.to_json()} for e in kv.matching(key, recurse=True)
                    if authz.allows("key", READ, e.key)]
        if verb == "check-index" and entry.modify_index != op["Index"]:
            raise OpFailed(f"current modify index {entry.modify_index} != {op['Index']}")
        if verb == "check-session" and entry.session != (op["Session"] or None):
            raise OpFailed(f"failed session check for key {quoted}, current session {entry.session} != "
                           f"{op['Session']}")
        if verb == "check-not-exists" and entry is not None:
            raise OpFailed(f"key {quoted} exists")
        if verb in ("set", "cas", "lock", "unlock"):
            done = kv.put(key, op["Value"], op["Flags"], cas=op["Index"] if verb == "cas" else None,
                          acquire=op["Session"] if verb == "lock" else None,
                          release=op["Session"] if verb == "unlock" else None)
            if not done:
                raise OpFailed({"cas": f"failed to set key {quoted}, index is stale",
                                "lock": f"failed to lock key {quoted}, lock is already held",
                                "unlock": f"failed to unlock key {quoted}, lock isn't held, or is held by "
                                          "another session"}[verb])
        elif verb in ("delete", "delete-tree", "delete-cas"):
            cas = op["Index"] if verb == "delete-cas" else None
            if not kv.delete(key, recurse=verb == "delete-tree", cas=cas):
                raise OpFailed(f"failed to delete key {quoted}, index is stale")
            return []
    except KVError as exc:
        raise OpFailed(str(exc)) from None
    found = kv.entries.get(key)
    if found is None:
        return []
    shown = found.to_json()
    if verb not in ("get",):
        shown["Value"] = None  # Consul returns the value for a get only
    return [{"KV": shown}]


class TxnAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def txn(self, request: web.Request) -> web.Response:
        try:
            ops = decode(parse_json(await request.read()))
        except DecodeError as exc:
            return text(exc.status, str(exc))
        results, errors = run(self.ctx.kv, self.ctx.authz(request), ops)
        if errors:
            return self.ctx.json({"Results": None, "Errors": errors}, status=409)
        return self.ctx.json({"Results": results or None, "Errors": None}, self.ctx.indexes.table("kvs"))

    def routes(self) -> list[web.RouteDef]:
        return [web.put("/v1/txn", self.txn)]
