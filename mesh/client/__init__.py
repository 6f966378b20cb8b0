"""The call path a caller sees: the metadata keys, the balanced channel, call outcomes and rich
errors, the caller's identity, the call being served, and the discovery proxy."""

from . import headers
from ._inbound import Inbound, inbound
from .channel import BalancedChannel, NoHealthyInstances
from .discovery_proxy import DiscoveryProxy
from .errors import DOMAIN, abort_with_reason, pass_on, reason_of
from .identity import Identities, IdentityError
from .outcome import (
    LOCALLY_CANCELLED,
    Answered,
    Completed,
    Failed,
    MeshRpcError,
    as_seen_by_caller,
    code_of,
    status_of,
)
from .servers import listen, new_server

__all__ = [
    "DOMAIN",
    "LOCALLY_CANCELLED",
    "Answered",
    "BalancedChannel",
    "Completed",
    "DiscoveryProxy",
    "Failed",
    "Identities",
    "IdentityError",
    "Inbound",
    "MeshRpcError",
    "NoHealthyInstances",
    "abort_with_reason",
    "as_seen_by_caller",
    "code_of",
    "headers",
    "inbound",
    "listen",
    "new_server",
    "pass_on",
    "reason_of",
    "status_of",
]
