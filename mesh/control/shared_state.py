"""What a mesh's kernel shares with its instances' processes through the KV store, beyond settings,
policies and faults: who may call whom, and the fallbacks callers answer with.

The kernel writes (:class:`SharedStatePublisher`, for ``mesh.allow_callers`` and ``mesh.fallback``);
each process follows a prefix with a blocking query (:class:`PrefixWatch`) and applies every change
to its own mesh (:meth:`mesh.core.shared.SharedState.follow`). The keys (:mod:`mesh.control.keys`):

- ``<root>/access/<service>``: the JSON list of the callers allowed (no key: anyone may call);
- ``<root>/fallbacks/<service>/<method>``: ``{"type", "static", "cache"}`` — the static answer as
  the protobuf message's full name and its bytes in base64 (or null), and whether to answer with
  the last good response (each process keeps its own cache).

The identity tokens' signing key reaches a process in its environment (``MESH_IDENTITY_SECRET``),
never in the KV store or its command line.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import consul
from google.protobuf import message_factory, symbol_database

from ..policies import Fallback
from ._kv_watch import BlockingWatch, kv_query
from .keys import SHARED_WITH_PROCESSES, MeshKeys

__all__ = ["SECRET_VARIABLE", "PrefixWatch", "SharedStatePublisher", "decode_access_rules", "decode_fallback",
           "decode_fallbacks", "encode_access_rule", "encode_fallback"]

log = logging.getLogger(__name__)

SECRET_VARIABLE = "MESH_IDENTITY_SECRET"


def encode_access_rule(callers: Iterable[str]) -> str:
    return json.dumps(sorted(callers))


def encode_fallback(fallback: Fallback) -> str:
    static = fallback.static
    return json.dumps({"type": static.DESCRIPTOR.full_name if static is not None else None,
                       "static": base64.b64encode(static.SerializeToString()).decode() if static is not None
                       else None, "cache": bool(fallback.cache)}, sort_keys=True)


def decode_fallback(text: str) -> Fallback:
    """Return the fallback ``text`` describes; raise ValueError for anything else (an unknown
    message type included: the process has not imported it)."""
    try:
        fields = json.loads(text)
        kind, static, cache = fields["type"], fields["static"], fields["cache"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a fallback: {exc}") from None
    message = None
    if static is not None:
        try:
            descriptor = symbol_database.Default().pool.FindMessageTypeByName(kind)
        except KeyError:
            raise ValueError(f"unknown message type {kind!r}") from None
        message = message_factory.GetMessageClass(descriptor)()
        message.ParseFromString(base64.b64decode(static))
    return Fallback(static=message, cache=bool(cache))


def decode_access_rules(found: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Return the access rules in ``found`` (``service -> JSON list``) and what was wrong with any.

    A rule that cannot be read lets nobody in, rather than everyone."""
    rules, problems = {}, {}
    for service, text in found.items():
        try:
            callers = json.loads(text)
        except ValueError:
            callers = None
        if not isinstance(callers, list) or not all(isinstance(c, str) for c in callers):
            problems[service] = f"the access rule of {service} is not a list of names: {text[:100]!r}"
            callers = []
        rules[service] = callers
    return rules, problems


def decode_fallbacks(found: dict[str, str]) -> tuple[dict[str, dict[str, Fallback]], dict[str, str]]:
    """Return the fallbacks in ``found`` (``service/method -> JSON``) by service and method, and
    what was wrong with any (one bad value spoils only itself)."""
    fallbacks: dict[str, dict[str, Fallback]] = {}
    problems = {}
    for key, text in found.items():
        service, _, method = key.partition("/")
        try:
            fallbacks.setdefault(service, {})[method] = decode_fallback(text)
        except ValueError as exc:
            problems[key] = f"ignored the fallback {key}: {exc}"
    return fallbacks, problems


class PrefixWatch:
    """Follow every key under ``prefix`` and call ``apply({key after the prefix: text})`` with all
    of them after each change (from the watch's thread)."""

    def __init__(self, client: consul.Consul, prefix: str, apply: Callable[[dict[str, str]], Any],
                 name: str = "shared-state"):
        self.prefix, self._apply = prefix.rstrip("/") + "/", apply
        self._watch = BlockingWatch(kv_query(client, self.prefix, recurse=True), self._take, name,
                                    f"under {self.prefix}", log)

    def wait_first(self, timeout: float = 5.0) -> bool:
        return self._watch.first.wait(timeout)

    def _take(self, entries: list[dict] | None) -> None:
        self._apply({e["Key"][len(self.prefix):]: (e["Value"] or b"").decode(errors="replace")
                     for e in entries or ()})

    def request_stop(self) -> None:
        self._watch.request_stop()

    def stop(self) -> None:
        self._watch.stop(5)


class SharedStatePublisher:
    """The kernel's side: write each change where the mesh's processes follow it, and remove it
    all when the mesh stops (so a later mesh of the same names starts without it)."""

    def __init__(self, client: consul.Consul, keys: MeshKeys):
        self._client, self._keys = client, keys

    def access_rule(self, service: str, callers: Iterable[str] | None) -> None:
        if callers is None:
            self._client.kv.delete(self._keys.access(service))
        else:
            self._client.kv.put(self._keys.access(service), encode_access_rule(callers))

    def fallback(self, service: str, method: str, fallback: Fallback) -> None:
        self._client.kv.put(self._keys.fallback(service, method), encode_fallback(fallback))

    def forget(self) -> None:
        for root in SHARED_WITH_PROCESSES:
            with contextlib.suppress(Exception):  # the registry may be gone already
                self._client.kv.delete(self._keys.root(root), recurse=True)
