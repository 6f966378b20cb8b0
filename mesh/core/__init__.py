"""The mesh itself: ``Mesh`` (a facade over parts with one job each), its instances, what their
handlers use, the admin interface every instance serves, and one running object per name."""

from .admin import ADMIN_SERVICE, HEALTH_SERVICE, AdminServicer, describe, enable_reflection, status
from .clients import Clients, ClientStack
from .instance import Instance
from .lifetime import ByName
from .mesh import MODES, Mesh, stop_all
from .observing import MeshObserving
from .placement import KernelPlacement, Placement
from .roster import MeshEvent, Roster
from .runtime import InstanceRuntime
from .shared import SharedState

__all__ = [
    "ADMIN_SERVICE",
    "HEALTH_SERVICE",
    "MODES",
    "AdminServicer",
    "ByName",
    "ClientStack",
    "Clients",
    "Instance",
    "InstanceRuntime",
    "KernelPlacement",
    "Mesh",
    "MeshEvent",
    "MeshObserving",
    "Placement",
    "Roster",
    "SharedState",
    "describe",
    "enable_reflection",
    "status",
    "stop_all",
]
