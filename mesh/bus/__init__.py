"""A message bus (消息总线) on the mesh: asynchronous calls with at-least-once delivery.

:class:`Bus` deploys the bus as a gRPC service of the mesh; :class:`Consumer` pulls, handles and
acknowledges. The bookkeeping (:class:`Broker`) is pure and clock-injected. Lesson 09's experiment
(duplicates, idempotency, lag, backlog) is in :mod:`lessons.bus`.
"""

from ._broker import (
    MAX_ACK_DEADLINE,
    MAX_MESSAGE_BYTES,
    MAX_PULL_BYTES,
    MAX_PULL_MESSAGES,
    Broker,
    BusError,
    DeadLetter,
    Delivery,
    Message,
    Subscription,
)
from ._replica import LogForwarder, bus_replica
from ._service import Bus, BusServicer, Consumer, Handled

__all__ = ["MAX_ACK_DEADLINE", "MAX_MESSAGE_BYTES", "MAX_PULL_BYTES", "MAX_PULL_MESSAGES", "Broker", "Bus",
           "BusError", "BusServicer", "Consumer", "DeadLetter", "Delivery", "Handled", "LogForwarder",
           "Message", "Subscription", "bus_replica"]
