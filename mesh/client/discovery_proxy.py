"""Server-side discovery: a load-balancing gRPC proxy for clients that know only one address.

The chapter draws two styles of discovery. In client-side discovery (``mesh.client``) the caller
asks the registry and picks an instance itself. Here the caller dials one address, the proxy's; the
proxy asks the registry (through the same blocking-query watch) and forwards each call to an
instance it picks. Requests and responses pass through as bytes, so one proxy serves any unary
method of any service; the instance's initial metadata (``x-served-by``) is passed back, with the
deadline and metadata of the caller passed on.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from ..control.discovery import ServiceWatch
from ..policies import Balancer
from .channel import BalancedChannel
from .headers import PROXIED_BY
from .servers import listen, new_server

_HOP_BY_HOP = {"grpc-timeout", "user-agent", "content-type", "te", "grpc-accept-encoding",
               "grpc-encoding", "accept-encoding"}


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: DiscoveryProxy):
        self._proxy = proxy

    def service(self, handler_call_details):
        method = handler_call_details.method
        proxy = self._proxy

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = tuple((k, v) for k, v in context.invocation_metadata() if k not in _HOP_BY_HOP)
            try:
                endpoint, channel = proxy.channel.pick()
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())
            start = time.perf_counter()
            try:
                response, call = channel.unary_unary(method, _registered_method=False).with_call(
                    request, timeout=context.time_remaining(), metadata=metadata)
            except grpc.RpcError as exc:
                proxy.channel.finished(endpoint, time.perf_counter() - start, exc.code().name)
                context.abort(exc.code(), exc.details())
            proxy.channel.finished(endpoint, time.perf_counter() - start, "OK")
            context.send_initial_metadata((*call.initial_metadata(), (PROXIED_BY, proxy.name)))
            with proxy._lock:
                proxy.forwarded += 1
            return response

        return grpc.unary_unary_rpc_method_handler(forward)


class DiscoveryProxy:
    """A gRPC server on loopback that forwards every unary call to a passing instance of ``service``."""

    def __init__(self, watch: ServiceWatch, balancer: Balancer | None = None, host: str = "127.0.0.1",
                 max_workers: int = 16):
        self.service = watch.service
        self.name = f"{watch.service}-proxy"
        self.channel = BalancedChannel(watch, balancer)
        self.forwarded = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=self.name)
        self._server = new_server(self._pool, handlers=[_Forward(self)])
        self.port = listen(self._server, host, 0, self.name)
        self.host = host
        self._server.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.stop(None).wait()
        self._pool.shutdown(wait=True)
        self.channel.close()

    def __repr__(self) -> str:
        return f"<DiscoveryProxy {self.service} at {self.address}, {self.forwarded} calls forwarded>"
