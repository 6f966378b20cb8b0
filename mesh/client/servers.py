"""How the mesh builds every gRPC server it runs — instances, the discovery proxy, the OTLP
receiver, the monolith, a bus's log — written once.

A server never shares its port: gRPC turns ``SO_REUSEPORT`` on by default, so a second server
could bind a port already in use and silently take half of its calls (a revived instance, say).
Binding a port that is taken fails loudly, saying why, instead of returning 0 as grpcio does.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc

__all__ = ["listen", "new_server"]


def new_server(pool: ThreadPoolExecutor, interceptors: Sequence[grpc.ServerInterceptor] = (),
               handlers: Sequence[grpc.GenericRpcHandler] = ()) -> grpc.Server:
    """Return a server on ``pool`` that keeps its port to itself."""
    return grpc.server(pool, handlers=list(handlers) or None, interceptors=list(interceptors) or None,
                       options=[("grpc.so_reuseport", 0)])


def listen(server: grpc.Server, host: str = "127.0.0.1", port: int = 0, who: str = "the server") -> int:
    """Bind ``server`` to ``host:port`` (port 0: any free one) and return the port; raise OSError
    saying who could not listen where, and why."""
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpcio raises when it cannot bind at all
        bound, reason = 0, str(exc)
    else:
        reason = "address in use?"
    if bound == 0:
        raise OSError(f"{who} cannot listen on {host}:{port}: {reason}")
    return bound
