"""The services the mesh can run, each described once by a :class:`ServiceKind`."""

from ._kind import ServiceKind
from .greeter import GREETER, GreeterServicer, GreeterSettings

KINDS: dict[str, ServiceKind] = {GREETER.name: GREETER}

__all__ = ["GREETER", "KINDS", "GreeterServicer", "GreeterSettings", "ServiceKind"]
