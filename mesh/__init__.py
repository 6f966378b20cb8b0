"""The real mesh: gRPC services on loopback that register with and discover each other.

Start with ``Mesh({"greeter": 3})``; see ``notebooks/00-tour.ipynb``.
"""

import os

# gRPC's C core logs connection events (GOAWAY on a killed instance) at INFO; in a notebook
# that is noise under every cell. It must be set before grpc is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from ._channel import BalancedChannel, NoHealthyInstances
from ._instance import SERVED_BY, Instance
from ._mesh import Mesh, MeshEvent, stop_all
from .discovery import Discovery, Endpoint, ServiceWatch
from .registry import Registry
from .services import GREETER, KINDS, ServiceKind
from .traffic import CallRecord, burst, tally

__all__ = [
    "GREETER",
    "KINDS",
    "SERVED_BY",
    "BalancedChannel",
    "CallRecord",
    "Discovery",
    "Endpoint",
    "Instance",
    "Mesh",
    "MeshEvent",
    "NoHealthyInstances",
    "Registry",
    "ServiceKind",
    "ServiceWatch",
    "burst",
    "stop_all",
    "tally",
]
