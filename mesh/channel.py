"""Client-side load balancing as a ``grpc.Channel``: every call goes to an instance picked anew.

``GreeterStub(BalancedChannel(watch))`` is an ordinary generated stub; each call asks the balancer
for one of the instances discovery reports passing — of the versions the release routing allows
(blue-green, canary) — minus the ones outlier detection has ejected
and the ones this call's earlier attempts failed on, and runs on a channel to that instance. The
balancer and the outlier detector hear how each call went. Channels of instances that leave the
passing set are closed, so one that comes back gets a fresh connection instead of a channel stuck
in reconnect back-off.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from .discovery import Endpoint, ServiceWatch
from .outcome import MeshRpcError
from .policies import Balancer, OutlierDetector, Release, RoundRobin, route

#: Instance ids the current call should not go to (set by the retry logic for its next attempt).
avoid_instances: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("avoid", default=frozenset())
#: A version the current call asked for itself (an ``x-version`` header: a tester's dark launch).
asked_version: contextvars.ContextVar[str] = contextvars.ContextVar("asked_version", default="")
#: The instance id the last pick in this context chose (read by tracing and retries).
picked_instance: contextvars.ContextVar[str] = contextvars.ContextVar("picked", default="")

# Status codes that say the instance is unwell (what outlier detection counts).
SERVER_ERRORS = {"UNAVAILABLE", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "DATA_LOSS"}


class NoHealthyInstances(MeshRpcError):
    """Raised by a call when discovery knows no passing instance (of the version the release routes
    to): status UNAVAILABLE."""

    def __init__(self, service: str, version: str = ""):
        of = f"{service!r} version {version!r}" if version else repr(service)
        super().__init__(grpc.StatusCode.UNAVAILABLE, f"no passing instance of {of} in the registry")


class BalancedChannel(grpc.Channel):
    """A channel over all passing instances of one service."""

    def __init__(self, watch: ServiceWatch, balancer: Balancer | None = None,
                 outlier: OutlierDetector | None = None, release: Release | None = None,
                 draw: Callable[[], float] | None = None):
        self.service = watch.service
        self.balancer = balancer or RoundRobin()
        self.outlier = outlier
        self.release = release or Release()
        self._draw = draw or (lambda: 0.5)
        self._watch = watch
        self._lock = threading.Lock()
        self._endpoints: tuple[Endpoint, ...] = ()
        self._channels: dict[Endpoint, grpc.Channel] = {}
        self._callables: dict[tuple[Endpoint, str], object] = {}
        self._closed = False
        watch.subscribe(self._on_endpoints)

    def _on_endpoints(self, endpoints: tuple[Endpoint, ...]) -> None:
        with self._lock:
            if self._closed:
                return
            self._endpoints = endpoints
            gone = [e for e in self._channels if e not in endpoints]
            stale = [self._channels.pop(e) for e in gone]
            self._callables = {k: v for k, v in self._callables.items() if k[0] not in gone}
        for channel in stale:
            channel.close()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def multicallable(self, endpoint: Endpoint, channel: grpc.Channel, method: str, serializer, deserializer):
        """Return (and keep) the unary multi-callable of ``method`` on ``endpoint``'s channel."""
        key = (endpoint, method)
        found = self._callables.get(key)
        if found is None:
            found = channel.unary_unary(method, request_serializer=serializer,
                                        response_deserializer=deserializer, _registered_method=True)
            with self._lock:
                if self._channels.get(endpoint) is channel:
                    self._callables[key] = found
        return found

    def pick(self, request: Any = None) -> tuple[Endpoint, grpc.Channel]:
        """Return the endpoint chosen for one call and an open channel to it."""
        with self._lock:
            if self._closed:
                raise ValueError("channel closed")
            candidates = list(self._endpoints)
            release, asked = self.release, asked_version.get()
            if candidates and (release.active or asked):
                key = str(request) if release.sticky else ""
                candidates = route(candidates, release, self._draw(), key=key, asked=asked)
            if not candidates:
                raise NoHealthyInstances(self.service, release.version)
            if self.outlier is not None:
                candidates = self.outlier.available(candidates)
            endpoint = self._pick_avoiding(candidates, request, avoid_instances.get())
            self.balancer.on_start(endpoint)
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channels[endpoint] = grpc.insecure_channel(endpoint.target)
        picked_instance.set(endpoint.id)
        return endpoint, channel

    def _pick_avoiding(self, candidates: list[Endpoint], request: Any, avoid: frozenset[str]) -> Endpoint:
        """Ask the balancer again while it picks an instance this call already failed on.

        Re-picking from the whole list (as Envoy's previous-hosts retry predicate does) keeps each
        balancer's own logic; filtering the list instead would skew round robin's rotation. A
        balancer that keeps answering the same (a hash ring) gets the next instance in the list.
        """
        endpoint = self.balancer.pick(candidates, request)
        if not avoid or endpoint.id not in avoid:
            return endpoint
        for _ in range(len(candidates)):
            endpoint = self.balancer.pick(candidates, request)
            if endpoint.id not in avoid:
                return endpoint
        allowed = [e for e in candidates if e.id not in avoid]
        return allowed[0] if allowed else endpoint

    def finished(self, endpoint: Endpoint, latency: float, code: str) -> None:
        """Tell the balancer and the outlier detector how a call to ``endpoint`` ended."""
        with self._lock:
            self.balancer.on_end(endpoint, latency, code == "OK")
            if self.outlier is not None:
                self.outlier.on_result(endpoint, code not in SERVER_ERRORS, len(self._endpoints))

    def close(self) -> None:
        self._watch.unsubscribe(self._on_endpoints)
        with self._lock:
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
            self._callables = {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> BalancedChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, callback, try_to_connect=False):
        raise NotImplementedError("connectivity of a balanced channel is per instance")

    def unsubscribe(self, callback):
        raise NotImplementedError("connectivity of a balanced channel is per instance")

    def unary_unary(self, method, request_serializer=None, response_deserializer=None,
                    _registered_method=False):
        return _Balanced(self, method, request_serializer, response_deserializer)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        raise NotImplementedError("the mesh balances unary calls only")

    def stream_unary(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        raise NotImplementedError("the mesh balances unary calls only")

    def stream_stream(self, method, request_serializer=None, response_deserializer=None,
                      _registered_method=False):
        raise NotImplementedError("the mesh balances unary calls only")


class _Balanced:
    """A unary multi-callable that picks an instance per invocation and reports how it went."""

    def __init__(self, owner: BalancedChannel, method: str, serializer, deserializer):
        self._owner = owner
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def _target(self, request: Any):
        endpoint, channel = self._owner.pick(request)
        return endpoint, self._owner.multicallable(endpoint, channel, self._method, self._serializer,
                                                   self._deserializer)

    def _invoke(self, request, args, kwargs, with_call: bool):
        endpoint, callable_ = self._target(request)
        start = time.perf_counter()
        try:
            result = callable_.with_call(request, *args, **kwargs) if with_call else \
                callable_(request, *args, **kwargs)
        except grpc.RpcError as exc:
            self._owner.finished(endpoint, time.perf_counter() - start, exc.code().name)
            raise
        self._owner.finished(endpoint, time.perf_counter() - start, "OK")
        return result

    def with_call(self, request, *args, **kwargs):
        return self._invoke(request, args, kwargs, with_call=True)

    def __call__(self, request, *args, **kwargs):
        return self._invoke(request, args, kwargs, with_call=False)

    def future(self, request, *args, **kwargs):
        endpoint, callable_ = self._target(request)
        start = time.perf_counter()
        future = callable_.future(request, *args, **kwargs)

        def done(f) -> None:
            error = f.exception()
            self._owner.finished(endpoint, time.perf_counter() - start,
                                 "OK" if error is None else error.code().name)

        future.add_done_callback(done)
        return future
