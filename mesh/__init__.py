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
from .backends import Backend, BackendUnavailable, start_backend
from .config import ConfigError, ServiceConfig
from .discovery import Discovery, Endpoint, ServiceWatch
from .interceptors import Faults
from .load import LoadRecord, closed_loop, open_loop
from .metrics import Metrics
from .policy_spec import PolicySettings
from .proxy import DiscoveryProxy
from .registry import Registry
from .services import GREETER, KINDS, ServiceKind
from .tracing import CallNode, Tracing
from .traffic import CallRecord, burst, tally

__all__ = [
    "GREETER",
    "KINDS",
    "SERVED_BY",
    "Backend",
    "BackendUnavailable",
    "BalancedChannel",
    "CallNode",
    "CallRecord",
    "ConfigError",
    "Discovery",
    "DiscoveryProxy",
    "Endpoint",
    "Faults",
    "Instance",
    "LoadRecord",
    "Mesh",
    "MeshEvent",
    "Metrics",
    "NoHealthyInstances",
    "PolicySettings",
    "Registry",
    "ServiceConfig",
    "ServiceKind",
    "ServiceWatch",
    "Tracing",
    "burst",
    "closed_loop",
    "open_loop",
    "start_backend",
    "stop_all",
    "tally",
]
