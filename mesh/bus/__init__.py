"""A message bus (消息总线) on the mesh: asynchronous calls with at-least-once delivery.

:class:`Bus` deploys the bus as a gRPC service of the mesh; :class:`Consumer` pulls, handles and
acknowledges. The bookkeeping (:class:`Broker`) is pure and clock-injected. Lesson 08's experiment
(duplicates, idempotency, lag, backlog) is in :mod:`lessons.bus`.
"""

from ._broker import Broker, BusError, Delivery, Message, Subscription
from ._service import Bus, BusServicer, Consumer, Handled

__all__ = ["Broker", "Bus", "BusError", "BusServicer", "Consumer", "Delivery", "Handled", "Message",
           "Subscription"]
