"""A message bus (消息总线) on the mesh: asynchronous calls with at-least-once delivery.

:class:`Bus` deploys the bus as a gRPC service of the mesh; :class:`Consumer` pulls, handles and
acknowledges; :func:`deliver_orders` is the notebook's experiment (duplicates, idempotency, lag,
backlog). The bookkeeping (:class:`Broker`) is pure and clock-injected.
"""

from ._broker import Broker, BusError, Delivery, Message, Subscription
from ._experiments import BusRun, deliver_orders
from ._service import Bus, BusServicer, Consumer, Handled

__all__ = ["Broker", "Bus", "BusError", "BusRun", "BusServicer", "Consumer", "Delivery", "Handled", "Message",
           "Subscription", "deliver_orders"]
