"""The bus on the mesh: a gRPC service registered and health-checked like any other, and the
consumers that pull from it.

:class:`Bus` deploys ``replicas`` instances of the ``bus.Bus`` service into a mesh; they share one
:class:`~mesh.bus._broker.Broker` (as a broker cluster shares its replicated log), so publishers
and consumers reach it through discovery and balancing, and a replica can be killed. Topics and
subscriptions are created on the :class:`Bus` object; messages travel over gRPC.

:class:`Consumer` pulls, handles and acknowledges on a thread of its own. ``lose_ack_percent``
makes it crash between handling a message and acknowledging it (seeded), which is what makes
at-least-once delivery deliver twice; ``idempotent=True`` keeps the ids it has handled and skips a
message it has seen — a consumer that may see a message twice must not act twice. A handler that
raises leaves its message unacknowledged: it comes back, and after the subscription's
``max_deliveries`` it lands in the dead letters (a poison message does not block the rest).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from ..pb import bus_pb2, bus_pb2_grpc
from ..services import ServiceKind
from ._broker import Broker, BusError


class BusServicer(bus_pb2_grpc.BusServicer):
    def __init__(self, broker: Broker, lock: threading.Lock):
        self._broker = broker
        self._lock = lock

    def Publish(self, request, context):
        with self._lock, _refusing(context):
            message_id = self._broker.publish(request.topic, request.data, dict(request.attributes))
        return bus_pb2.PublishReply(message_id=message_id)

    def Pull(self, request, context):
        with self._lock, _refusing(context):
            deliveries = self._broker.pull(request.subscription, request.max_messages or 10)
        return bus_pb2.PullReply(deliveries=[
            bus_pb2.Delivery(ack_id=d.ack_id, message_id=d.message.id, data=d.message.data,
                             attributes=d.message.attributes, delivery_attempt=d.attempt,
                             published_at=d.message.published_at) for d in deliveries])

    def Ack(self, request, context):
        with self._lock, _refusing(context):
            done = self._broker.ack(request.subscription, list(request.ack_ids))
        return bus_pb2.AckReply(acknowledged=done)


class _refusing:
    """Turn a :class:`BusError` into the call's INVALID_ARGUMENT."""

    def __init__(self, context: grpc.ServicerContext):
        self._context = context

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, BusError):
            self._context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return False


class Bus:
    """``Bus(mesh)``: a message bus deployed into ``mesh`` as the service ``name``."""

    def __init__(self, mesh, replicas: int = 1, name: str = "bus",
                 clock: Callable[[], float] = time.monotonic):
        if mesh.instances(name):
            raise ValueError(f"the mesh already runs a service {name!r}: give this bus another name, "
                             "or start a new Mesh (re-running the cell that makes the mesh does)")
        self.name = name
        self.clock = clock
        self.broker = Broker(clock)
        self._lock = threading.Lock()
        kind = ServiceKind(name=name, grpc_service="bus.Bus",
                           servicer=lambda runtime: BusServicer(self.broker, self._lock),
                           add_to_server=bus_pb2_grpc.add_BusServicer_to_server, stub=bus_pb2_grpc.BusStub)
        self.instances = mesh.add_service(kind, replicas)
        mesh.wait_until_passing(name)
        self.stub = mesh.client(name)

    def create_topic(self, topic: str) -> None:
        with self._lock:
            self.broker.create_topic(topic)

    def subscribe(self, name: str, topic: str, ack_deadline: float = 1.0, max_deliveries: int = 5) -> None:
        with self._lock:
            self.broker.subscribe(name, topic, ack_deadline, max_deliveries)

    def publish(self, topic: str, data: bytes | str, timeout: float = 2.0, **attributes: str) -> str:
        """Publish one message over gRPC; return its id."""
        payload = data.encode() if isinstance(data, str) else data
        reply = self.stub.Publish(bus_pb2.PublishRequest(topic=topic, data=payload, attributes=attributes),
                                  timeout=timeout)
        return reply.message_id

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.broker.stats()

    def backlog(self, subscription: str) -> int:
        with self._lock:
            return self.broker.subscription(subscription).backlog

    def dead_letters(self, subscription: str) -> list:
        with self._lock:
            return list(self.broker.subscription(subscription).dead)


@dataclass(frozen=True)
class Handled:
    """One message a consumer handled (or skipped as a duplicate)."""

    message_id: str
    attempt: int
    published_at: float
    handled_at: float
    skipped: bool = False  # an idempotent consumer had handled it already

    @property
    def lag(self) -> float:
        return self.handled_at - self.published_at


class Consumer:
    """Pull from ``subscription``, call ``handler(data, attributes)``, acknowledge — until stopped."""

    def __init__(self, bus: Bus, subscription: str, handler: Callable[[bytes, dict], None],
                 idempotent: bool = False, lose_ack_percent: float = 0.0,
                 rng: np.random.Generator | None = None, batch: int = 10, poll: float = 0.005,
                 name: str = "consumer"):
        if not 0 <= lose_ack_percent <= 100:
            raise ValueError("lose_ack_percent must be in [0, 100]")
        bus.broker.subscription(subscription)  # refuse an unknown subscription now, not on the thread
        self.bus, self.subscription, self.handler = bus, subscription, handler
        self.idempotent, self.lose_ack_percent = idempotent, lose_ack_percent
        self._rng = rng or np.random.default_rng(0)
        self.batch, self.poll = batch, poll
        self.handled: list[Handled] = []
        self.failures: list[tuple[str, int, str]] = []  # (message id, attempt, error) the handler raised
        self.errors: deque[str] = deque(maxlen=1000)  # status codes of calls to the bus that failed
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name=f"{name}-{subscription}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stub, clock = self.bus.stub, self.bus.clock
        while not self._stop.is_set():
            if not self._running.is_set():
                self._stop.wait(self.poll)
                continue
            try:
                pull = bus_pb2.PullRequest(subscription=self.subscription, max_messages=self.batch)
                reply = stub.Pull(pull, timeout=2)
            except grpc.RpcError as exc:  # the bus is down: try again shortly
                self.errors.append(exc.code().name)
                self._stop.wait(0.05)
                continue
            except ValueError:  # the mesh was stopped and closed its channels: nothing left to consume
                self.errors.append("CLOSED")
                return
            acks = []
            for delivery in reply.deliveries:
                skip = self.idempotent and delivery.message_id in self._seen
                if not skip:
                    try:
                        self.handler(delivery.data, dict(delivery.attributes))
                    except Exception as exc:  # a poison message: no ack, so it comes back, then dead-letters
                        self.failures.append((delivery.message_id, delivery.delivery_attempt, repr(exc)))
                        continue
                    self._seen.add(delivery.message_id)
                self.handled.append(Handled(delivery.message_id, delivery.delivery_attempt,
                                            delivery.published_at, clock(), skip))
                if self.lose_ack_percent and self._rng.random() * 100 < self.lose_ack_percent:
                    continue  # crashed after the work, before the ack: the lease will expire
                acks.append(delivery.ack_id)
            if acks:
                try:
                    stub.Ack(bus_pb2.AckRequest(subscription=self.subscription, ack_ids=acks), timeout=2)
                except grpc.RpcError as exc:
                    self.errors.append(exc.code().name)
                except ValueError:
                    self.errors.append("CLOSED")
                    return
            if not reply.deliveries:
                self._stop.wait(self.poll)

    def pause(self) -> None:
        """Stop pulling (a consumer outage); messages wait on the bus."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def duplicates(self) -> int:
        """Messages handled more than once (what an idempotent consumer avoids)."""
        done = [h.message_id for h in self.handled if not h.skipped]
        return len(done) - len(set(done))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
