"""Client-side load balancing as a ``grpc.Channel``: every call goes to an instance picked anew.

``GreeterStub(BalancedChannel(watch))`` is an ordinary generated stub; each call it makes asks the
balancer for one of the instances the discovery watch currently reports passing, and runs on a
channel to that instance. Channels of instances that leave the passing set are closed, so one that
comes back later gets a fresh connection instead of a channel stuck in reconnect back-off.
"""

from __future__ import annotations

import threading
from typing import Any

import grpc

from .discovery import Endpoint, ServiceWatch
from .policies import Balancer, RoundRobin


class NoHealthyInstances(grpc.RpcError, grpc.Call):
    """Raised by a call when discovery knows no passing instance: status UNAVAILABLE."""

    def __init__(self, service: str):
        super().__init__(f"no passing instance of {service!r}")
        self._details = f"no passing instance of {service!r} in the registry"

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details

    def initial_metadata(self):
        return ()

    def trailing_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


class BalancedChannel(grpc.Channel):
    """A channel over all passing instances of one service."""

    def __init__(self, watch: ServiceWatch, balancer: Balancer | None = None):
        self.service = watch.service
        self.balancer = balancer or RoundRobin()
        self._watch = watch
        self._lock = threading.Lock()
        self._endpoints: tuple[Endpoint, ...] = ()
        self._channels: dict[Endpoint, grpc.Channel] = {}
        self._closed = False
        watch.subscribe(self._on_endpoints)

    def _on_endpoints(self, endpoints: tuple[Endpoint, ...]) -> None:
        with self._lock:
            if self._closed:
                return
            self._endpoints = endpoints
            gone = [e for e in self._channels if e not in endpoints]
            stale = [self._channels.pop(e) for e in gone]
        for channel in stale:
            channel.close()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def pick(self, request: Any = None) -> tuple[Endpoint, grpc.Channel]:
        """Return the endpoint chosen for one call and an open channel to it."""
        with self._lock:
            if self._closed:
                raise ValueError("channel closed")
            if not self._endpoints:
                raise NoHealthyInstances(self.service)
            endpoint = self.balancer.pick(self._endpoints, request)
            channel = self._channels.get(endpoint)
            if channel is None:
                channel = self._channels[endpoint] = grpc.insecure_channel(endpoint.target)
            return endpoint, channel

    def close(self) -> None:
        self._watch.unsubscribe(self._on_endpoints)
        with self._lock:
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
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
        return _Balanced(self, "unary_unary", method, request_serializer, response_deserializer)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        return _Balanced(self, "unary_stream", method, request_serializer, response_deserializer)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        return _Balanced(self, "stream_unary", method, request_serializer, response_deserializer)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None,
                      _registered_method=False):
        return _Balanced(self, "stream_stream", method, request_serializer, response_deserializer)


class _Balanced:
    """A multi-callable that picks an instance per invocation and delegates to its channel."""

    def __init__(self, owner: BalancedChannel, kind: str, method: str, serializer, deserializer):
        self._owner = owner
        self._kind = kind
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def _target(self, request: Any):
        _, channel = self._owner.pick(request)
        return getattr(channel, self._kind)(
            self._method, request_serializer=self._serializer,
            response_deserializer=self._deserializer, _registered_method=True,
        )

    def __call__(self, request, *args, **kwargs):
        return self._target(request)(request, *args, **kwargs)

    def with_call(self, request, *args, **kwargs):
        return self._target(request).with_call(request, *args, **kwargs)

    def future(self, request, *args, **kwargs):
        return self._target(request).future(request, *args, **kwargs)
