"""The services the mesh can run, each described once by a :class:`ServiceKind`."""

from ._kind import ServiceKind
from .greeter import GREETER, GreeterServicer, GreeterSettings
from .shop import SHOP, SHOP_CALLS, ShopSettings, shop_topology

KINDS: dict[str, ServiceKind] = {kind.name: kind for kind in (GREETER, *SHOP)}

__all__ = ["GREETER", "KINDS", "SHOP", "SHOP_CALLS", "GreeterServicer", "GreeterSettings", "ServiceKind",
           "ShopSettings", "shop_topology"]
