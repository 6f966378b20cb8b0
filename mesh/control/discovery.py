"""Client-side discovery: follow a service's passing instances with Consul blocking queries.

A :class:`ServiceWatch` holds one long-poll ``GET /v1/health/service/<name>?passing&index=N`` open
at a time, so it hears of a change as soon as the registry makes it, without polling on a timer.
If the registry cannot be reached it keeps the last instances it knew, logs the outage once, and
retries with a growing pause (:class:`~mesh.control.BlockingWatch`).

A ``prefix`` keeps meshes that share one registry apart (a class on one Consul, a learner each):
the watch asks for ``<prefix>-<service>`` and reports ids and names without the prefix, so the
rest of the mesh never sees it (:mod:`mesh.control.keys`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import consul

from ._kv_watch import BlockingWatch
from .keys import local_name, registry_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """One passing instance of a service, as the registry reports it."""

    id: str
    service: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    weight: int = 1

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def version(self) -> str:
        """The version the instance registered (``Meta.version``; "" if it gave none)."""
        return self.meta.get("version", "")

    @classmethod
    def from_health(cls, entry: dict, prefix: str = "") -> Endpoint:
        service = entry["Service"]
        return cls(
            id=local_name(prefix, service["ID"]),
            service=local_name(prefix, service["Service"]),
            address=service.get("Address") or entry["Node"]["Address"],
            port=service["Port"],
            tags=tuple(service.get("Tags") or ()),
            meta=dict(service.get("Meta") or {}),
            weight=(service.get("Weights") or {}).get("Passing", 1),
        )


Listener = Callable[[tuple[Endpoint, ...]], None]


class ServiceWatch:
    """The passing instances of one service, kept current by a background blocking query."""

    def __init__(self, client: consul.Consul, service: str, wait: str = "5s", prefix: str = ""):
        self.service = service
        self.prefix = prefix
        self._client = client
        self._wait = wait
        self._endpoints: tuple[Endpoint, ...] = ()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._first = threading.Event()
        self.updates = 0
        self._watch = BlockingWatch(self._query, self._take, f"watch-{service}",
                                    f"while watching {service!r}", log)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def wait_first(self, timeout: float = 5.0) -> bool:
        """Block until the first answer from the registry (or ``timeout``); return if it came."""
        return self._first.wait(timeout)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(endpoints)`` now and after every change (from the watch thread)."""
        with self._lock:
            self._listeners.append(listener)
            current = self._endpoints
        listener(current)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def request_stop(self) -> None:
        """Ask the watch to end after its current query (which a registry change ends early)."""
        self._watch.request_stop()

    def stop(self, timeout: float = 10.0) -> None:
        self._watch.stop(timeout)

    def _query(self, index: str | None):
        return self._client.health.service(registry_name(self.prefix, self.service), passing=True,
                                           index=index, wait=self._wait)

    def _take(self, entries: list[dict]) -> None:
        self._publish(tuple(Endpoint.from_health(e, self.prefix) for e in entries))

    def _publish(self, endpoints: tuple[Endpoint, ...]) -> None:
        with self._lock:
            changed = endpoints != self._endpoints or not self._first.is_set()
            self._endpoints = endpoints
            listeners = list(self._listeners) if changed else []
            if changed:
                self.updates += 1
        self._first.set()
        for listener in listeners:
            listener(endpoints)


class Discovery:
    """One :class:`ServiceWatch` per service name, started on first use."""

    def __init__(self, client: consul.Consul, wait: str = "5s", prefix: str = ""):
        self._client = client
        self._wait = wait
        self.prefix = prefix
        self._watches: dict[str, ServiceWatch] = {}
        self._lock = threading.Lock()

    def watch(self, service: str) -> ServiceWatch:
        with self._lock:
            watch = self._watches.get(service)
            if watch is None:
                watch = self._watches[service] = ServiceWatch(self._client, service, self._wait, self.prefix)
        watch.wait_first()
        return watch

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        return self.watch(service).endpoints

    def request_stop(self) -> None:
        with self._lock:
            for watch in self._watches.values():
                watch.request_stop()

    def stop(self) -> None:
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()
