"""Client-side load balancing as a ``grpc.Channel``: every call goes to an instance chosen anew.

Behind the client stack, each attempt goes to the instance the call plan chose for it
(:data:`chosen_instance`, set by the resilience interceptor): the plan applies release routing,
outlier detection and the balancer, and hears how the attempt went. On its own —
``GreeterStub(BalancedChannel(watch))``, or in the discovery proxy — the channel picks with its
``balancer`` from the instances discovery reports passing, and tells the balancer how each call
went. Channels of instances that leave the passing set are closed, so one that comes back gets a
fresh connection instead of a channel stuck in reconnect back-off.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import grpc

from ..control.discovery import Endpoint, ServiceWatch
from ..policies import Balancer, RoundRobin
from ..policies.plan import no_instance
from .outcome import MeshRpcError

#: The instance the current call's plan chose for this attempt (None: the channel picks).
chosen_instance: contextvars.ContextVar[Endpoint | None] = contextvars.ContextVar("chosen_instance",
                                                                                 default=None)


class NoHealthyInstances(MeshRpcError):
    """Raised by a call when discovery knows no passing instance (of the version the release routes
    to): status UNAVAILABLE."""

    def __init__(self, details: str):
        super().__init__(grpc.StatusCode.UNAVAILABLE, details)


class BalancedChannel(grpc.Channel):
    """A channel over all passing instances of one service."""

    def __init__(self, watch: ServiceWatch, balancer: Balancer | None = None):
        self.service = watch.service
        self.balancer = balancer or RoundRobin()
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
        """The instances discovery reports passing now."""
        return self._endpoints

    def channel_to(self, endpoint: Endpoint) -> grpc.Channel:
        """Return an open channel to ``endpoint`` (made on first use)."""
        with self._lock:
            if self._closed:
                raise ValueError("channel closed")
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channels[endpoint] = grpc.insecure_channel(endpoint.target)
            return channel

    def multicallable(self, endpoint: Endpoint, method: str, serializer, deserializer):
        """Return (and keep) the unary multi-callable of ``method`` on ``endpoint``'s channel."""
        key = (endpoint, method)
        found = self._callables.get(key)
        if found is None:
            channel = self.channel_to(endpoint)
            found = channel.unary_unary(method, request_serializer=serializer,
                                        response_deserializer=deserializer, _registered_method=True)
            with self._lock:
                if self._channels.get(endpoint) is channel:
                    self._callables[key] = found
        return found

    def pick(self, request: Any = None) -> tuple[Endpoint, grpc.Channel]:
        """Return the endpoint the balancer chooses for a call of its own and an open channel to it."""
        with self._lock:
            if self._closed:
                raise ValueError("channel closed")
            if not self._endpoints:
                raise NoHealthyInstances(no_instance(self.service))
            endpoint = self.balancer.pick(self._endpoints, request)
            self.balancer.on_start(endpoint)
        return endpoint, self.channel_to(endpoint)

    def finished(self, endpoint: Endpoint, latency: float, code: str) -> None:
        """Tell the balancer how a call the channel picked for ended."""
        with self._lock:
            self.balancer.on_end(endpoint, latency, code == "OK")

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
    """A unary multi-callable that sends each invocation to the instance the plan chose, or else
    picks one and reports how it went."""

    def __init__(self, owner: BalancedChannel, method: str, serializer, deserializer):
        self._owner = owner
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def _target(self, request: Any) -> tuple[Endpoint | None, Any]:
        """Return (the endpoint to report on, or None when a plan chose it and hears the outcome;
        the multi-callable to it)."""
        owner = self._owner
        endpoint = chosen_instance.get()
        if endpoint is not None:
            return None, owner.multicallable(endpoint, self._method, self._serializer, self._deserializer)
        endpoint, _ = owner.pick(request)
        return endpoint, owner.multicallable(endpoint, self._method, self._serializer, self._deserializer)

    def _invoke(self, request, args, kwargs, with_call: bool):
        endpoint, callable_ = self._target(request)
        if endpoint is None:  # the plan chose the instance and hears the outcome
            return callable_.with_call(request, *args, **kwargs) if with_call else \
                callable_(request, *args, **kwargs)
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
        future = callable_.future(request, *args, **kwargs)
        if endpoint is None:
            return future
        start = time.perf_counter()

        def done(f) -> None:
            error = f.exception()
            self._owner.finished(endpoint, time.perf_counter() - start,
                                 "OK" if error is None else error.code().name)

        future.add_done_callback(done)
        return future
