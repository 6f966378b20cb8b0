"""The admin interface (管理接口) of every instance, and what gRPC server reflection tells a tool.

Each instance serves, beside its own service and the standard health service, an ``admin.Admin``
service (``protos/admin.proto``) whose ``Status`` answers what an operator asks first: which
instance and version this is, whether it reports SERVING, how many calls it has served and is
serving, the live settings it runs with (config center), the state of its circuit breakers towards
the services it calls (their state now), and its latest errors with their trace ids (from
:mod:`mesh.telemetry.logs`). Every
instance also turns on gRPC server reflection (``grpcio-reflection``), so that a tool — ``grpcurl``,
Postman, :func:`describe` here — can list its services and methods without the ``.proto`` files.

:func:`status` and :func:`describe` call one instance directly, by address, not through discovery:
an operator asks a particular replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from ..pb import admin_pb2, admin_pb2_grpc

__all__ = ["ADMIN_SERVICE", "HEALTH_SERVICE", "AdminServicer", "describe", "enable_reflection", "status"]

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class AdminServicer(admin_pb2_grpc.AdminServicer):
    """``Status`` of one instance, read from the mesh's own records when asked."""

    def __init__(self, instance, settings: Callable[[], Any], breakers: Callable[[], dict[str, str]], metrics,
                 logs):
        self._instance, self._settings, self._breakers = instance, settings, breakers
        self._metrics, self._logs = metrics, logs

    def Status(self, request: admin_pb2.StatusRequest, context) -> admin_pb2.StatusReply:
        instance = self._instance
        current = self._settings()
        settings = {k: str(v) for k, v in dataclasses.asdict(current).items()} if current is not None else {}
        breakers = self._breakers()
        errors = [r for r in self._logs.records(service=instance.service, level="warning")
                  if r["instance"] == instance.id][-(request.recent_errors or 10):]
        return admin_pb2.StatusReply(
            instance=instance.id, service=instance.service, version=instance.version,
            health="SERVING" if instance.serving else "NOT_SERVING", calls_served=instance.served,
            in_flight=self._metrics.in_flight().get(instance.id, 0), settings=settings,
            breakers=[admin_pb2.Breaker(name=name, state=state) for name, state in sorted(breakers.items())],
            recent_errors=[admin_pb2.RecentError(time=r["time"], method=str(r.get("method", "")),
                                                 code=str(r.get("code", r["level"])), message=r["message"],
                                                 trace_id=r["trace_id"]) for r in errors])


def enable_reflection(server: grpc.Server, service_names: list[str]) -> None:
    """Let tools list ``service_names`` (and reflection itself) on ``server``."""
    reflection.enable_server_reflection([*service_names, reflection.SERVICE_NAME], server)


def status(address: str, recent_errors: int = 10, timeout: float = 2.0) -> admin_pb2.StatusReply:
    """Ask the instance at ``address`` for its admin status."""
    with grpc.insecure_channel(address) as channel:
        return admin_pb2_grpc.AdminStub(channel).Status(admin_pb2.StatusRequest(recent_errors=recent_errors),
                                                        timeout=timeout)


def describe(address: str, timeout: float = 2.0) -> dict[str, list[str]]:
    """List the services the instance at ``address`` serves and their methods, by reflection alone."""
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        return {name: [method.name for method in pool.FindServiceByName(name).methods]
                for name in sorted(database.get_services())}

