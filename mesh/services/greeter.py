"""The chapter's Greeter service (section 6.6.4), with the printed sample's defects corrected.

The chapter subclasses ``ServerInterfaceServicer`` and sets a field ``int = 24``; the proto it
compiles generates ``GreeterServicer`` and names the field ``age``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mesh.pb import greeter_pb2, greeter_pb2_grpc

from ._kind import ServiceKind


@dataclass(frozen=True)
class GreeterSettings:
    """What the config center can change in a running Greeter: the age it answers with, and the
    CPU it burns per call (``cpu_ms``: a busy loop holding its interpreter, as real request
    handling would; 0 by default) — what bench/process_mode.py loads it with."""

    age: int = 24
    cpu_ms: float = 0.0


class _Fixed:
    current = GreeterSettings()


class GreeterServicer(greeter_pb2_grpc.GreeterServicer):
    """Answer SayHello with the chapter's reply, greeting the caller by name.

    In the mesh, ``runtime.config`` is the live :class:`mesh.control.config.ServiceConfig` of the Greeter,
    read on every call so that a change in the config center applies at once.
    """

    def __init__(self, runtime=None):
        self._config = runtime.config if runtime is not None and runtime.config is not None else _Fixed()

    def SayHello(self, request: greeter_pb2.HelloRequest, context) -> greeter_pb2.HelloReply:
        settings = self._config.current
        if settings.cpu_ms > 0:
            _burn(min(settings.cpu_ms, 1000.0) / 1000.0)
        return greeter_pb2.HelloReply(
            id=1234, name=request.name or "Jason", age=settings.age, title=["apple", "purple"]
        )


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


GREETER = ServiceKind(
    name="greeter",
    grpc_service="Greeter",
    servicer=GreeterServicer,
    add_to_server=greeter_pb2_grpc.add_GreeterServicer_to_server,
    stub=greeter_pb2_grpc.GreeterStub,
    settings=GreeterSettings,
)
