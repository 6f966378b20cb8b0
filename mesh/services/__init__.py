"""The services the mesh can run, each described once by a :class:`ServiceKind`; and the
streaming Ticker, served on its own (the mesh balances unary calls only)."""

from ._kind import ServiceKind
from .greeter import GREETER, GreeterServicer, GreeterSettings
from .shop import SHOP, SHOP_CALLS, ShopSettings, shop_topology
from .ticker import TickerServicer

KINDS: dict[str, ServiceKind] = {kind.name: kind for kind in (GREETER, *SHOP)}

__all__ = ["GREETER", "KINDS", "SHOP", "SHOP_CALLS", "GreeterServicer", "GreeterSettings", "ServiceKind",
           "ShopSettings", "TickerServicer", "shop_topology"]
