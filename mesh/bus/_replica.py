"""A bus replica in a process of its own: the ``bus.Bus`` service, forwarded to the log the kernel keeps.

A bus's replicas share one log (:class:`~mesh.bus._broker.Broker`), as a broker cluster shares its
replicated log. In ``Mesh(mode="processes")`` the kernel serves that log on a private address,
unregistered, and each replica is a process (:func:`bus_replica`, started as
``python -m mesh.serve <name> <n> --bus-log host:port``) that registers, passes its health checks
and serves the bus's calls by handing each to the log, with what is left of the caller's
deadline. Killing a replica is then a real crash of one front of the bus — publishers and
consumers move to the others through discovery — while no message is lost with it.
"""

from __future__ import annotations

import threading

import grpc

from ..pb import bus_pb2_grpc
from ..services import ServiceKind

__all__ = ["LogForwarder", "bus_replica"]

#: The deadline given to a forwarded call whose caller set none.
DEFAULT_TIMEOUT = 10.0


class LogForwarder(bus_pb2_grpc.BusServicer):
    """Serve every call of ``bus.Bus`` by making it on the log at ``address``; its refusals (an
    unknown topic, a message too big) reach the caller as the log gave them."""

    def __init__(self, address: str):
        self.address = address
        self._log = None
        self._lock = threading.Lock()

    def _stub(self) -> bus_pb2_grpc.BusStub:
        with self._lock:
            if self._log is None:
                self._log = bus_pb2_grpc.BusStub(grpc.insecure_channel(self.address))
            return self._log

    def _forward(self, method: str, request, context):
        left = context.time_remaining()
        timeout = DEFAULT_TIMEOUT if left is None else max(left, 0.0)
        try:
            return getattr(self._stub(), method)(request, timeout=timeout)
        except grpc.RpcError as error:
            context.abort(error.code(), error.details() or f"the bus's log failed: {error.code().name}")

    def Publish(self, request, context):
        return self._forward("Publish", request, context)

    def Pull(self, request, context):
        return self._forward("Pull", request, context)

    def Ack(self, request, context):
        return self._forward("Ack", request, context)

    def Extend(self, request, context):
        return self._forward("Extend", request, context)

    def Nack(self, request, context):
        return self._forward("Nack", request, context)


def bus_replica(name: str, log_address: str) -> ServiceKind:
    """The kind of a bus replica named ``name`` that serves from the log at ``log_address``."""
    return ServiceKind(name=name, grpc_service="bus.Bus", servicer=lambda runtime: LogForwarder(log_address),
                       add_to_server=bus_pb2_grpc.add_BusServicer_to_server, stub=bus_pb2_grpc.BusStub,
                       serve_args=("--bus-log", log_address))
