"""What the mesh needs to know to serve, register and call one kind of service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceKind:
    """A gRPC service as the mesh deploys it.

    ``name`` is the name instances register under (``greeter``); ``grpc_service`` is the proto's
    full service name (``Greeter``), which the health service reports on; ``servicer`` builds a
    fresh servicer for each instance; ``add_to_server`` and ``stub`` are the generated helpers.
    ``settings``, if given, is a dataclass of live settings (see :mod:`mesh.control.config`). The servicer
    is built as ``servicer(runtime)`` with the instance's :class:`mesh.core.runtime.InstanceRuntime`
    (its ``config``, clients to other services, bounded work). ``serve_args``, for a kind made at
    run time, are the arguments with which ``python -m mesh.serve <name> <number>`` builds it in a
    process of its own (``Mesh(mode="processes")``); a kind without them, not one of
    :data:`mesh.services.KINDS`, runs in the kernel. ``relay``, for a service whose state must
    stay in one place (a bus's log): in a mesh of processes, the kernel serves ``servicer(None)``
    once, on a private address, and each instance is a process of ``relay(address)``, the kind
    that forwards every call there.
    """

    name: str
    grpc_service: str
    servicer: Callable[..., Any]
    add_to_server: Callable[[Any, Any], None]
    stub: type
    settings: type | None = None
    serve_args: tuple[str, ...] = ()
    relay: Callable[[str], ServiceKind] | None = None
