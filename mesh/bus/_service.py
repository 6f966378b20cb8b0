"""The bus on the mesh: a gRPC service registered and health-checked like any other, and the
consumers that pull from it.

:class:`Bus` deploys ``replicas`` instances of the ``bus.Bus`` service into a mesh; they share one
:class:`~mesh.bus._broker.Broker` (as a broker cluster shares its replicated log), so publishers
and consumers reach it through discovery and balancing, and a replica can be killed. In a mesh of
processes the kernel keeps the log and each replica is a process that serves from it
(:mod:`mesh.bus._replica`). Topics and
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
from ._broker import Broker, BusError, DeadLetter
from ._replica import bus_replica


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
            ack_deadline = self._broker.subscription(request.subscription).ack_deadline
        return bus_pb2.PullReply(ack_deadline=ack_deadline, deliveries=[
            bus_pb2.Delivery(ack_id=d.ack_id, message_id=d.message.id, data=d.message.data,
                             attributes=d.message.attributes, delivery_attempt=d.attempt,
                             published_at=d.message.published_at) for d in deliveries])

    def Ack(self, request, context):
        with self._lock, _refusing(context):
            done = self._broker.ack(request.subscription, list(request.ack_ids))
        return bus_pb2.AckReply(acknowledged=done)

    def Extend(self, request, context):
        with self._lock, _refusing(context):
            done = self._broker.extend(request.subscription, list(request.ack_ids), request.seconds)
        return bus_pb2.AckReply(acknowledged=done)

    def Nack(self, request, context):
        with self._lock, _refusing(context):
            done = self._broker.nack(request.subscription, list(request.ack_ids), request.reason)
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
        self.log_address = ""  # where replicas that are processes reach the log the kernel keeps
        kind = ServiceKind(name=name, grpc_service="bus.Bus",
                           servicer=lambda runtime: BusServicer(self.broker, self._lock),
                           add_to_server=bus_pb2_grpc.add_BusServicer_to_server,
                           stub=bus_pb2_grpc.BusStub, relay=self._replica_at)
        self.instances = mesh.add_service(kind, replicas)
        mesh.wait_until_passing(name)
        self.stub = mesh.client(name)

    def _replica_at(self, log_address: str) -> ServiceKind:
        """The replica a process runs: it forwards every call to the log at ``log_address``."""
        self.log_address = log_address
        return bus_replica(self.name, log_address)

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

    def dead_letters(self, subscription: str) -> list[DeadLetter]:
        """The messages ``subscription`` gave up on, each with its number of deliveries and why."""
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
    """Pull from ``subscription``, call ``handler(data, attributes)``, acknowledge — until stopped.

    While it holds a message (handling it, or waiting for its turn in the batch) a second thread
    extends its lease every third of the ack deadline, for at most ``max_lease`` seconds in all
    (``max_lease=0``: never — a batch slower than the deadline is then delivered again). Handled
    messages are acknowledged at the end of the batch, or sooner once half a deadline has passed.
    A handler that raises gives its message back at once with the error as the reason.
    """

    def __init__(self, bus: Bus, subscription: str, handler: Callable[[bytes, dict], None],
                 idempotent: bool = False, lose_ack_percent: float = 0.0,
                 rng: np.random.Generator | None = None, batch: int = 10, poll: float = 0.005,
                 max_lease: float = 60.0, name: str = "consumer"):
        if not 0 <= lose_ack_percent <= 100:
            raise ValueError("lose_ack_percent must be in [0, 100]")
        if max_lease < 0:
            raise ValueError("max_lease must be >= 0 seconds (0: never extend a lease)")
        # refuse an unknown subscription now, not on the thread
        self._ack_deadline = bus.broker.subscription(subscription).ack_deadline
        self.bus, self.subscription, self.handler = bus, subscription, handler
        self.idempotent, self.lose_ack_percent = idempotent, lose_ack_percent
        self._rng = rng or np.random.default_rng(0)
        self.batch, self.poll, self.max_lease = batch, poll, max_lease
        self.handled: list[Handled] = []
        self.failures: list[tuple[str, int, str]] = []  # (message id, attempt, error) the handler raised
        self.errors: deque[str] = deque(maxlen=1000)  # status codes of calls to the bus that failed
        self._seen: set[str] = set()
        self._held: dict[str, float] = {}  # ack id -> when it was pulled, while not yet acked or given back
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._crashed = threading.Event()
        self._closed = False  # the mesh closed its channels
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name=f"{name}-{subscription}", daemon=True)
        self._keeper = threading.Thread(target=self._keep_leases, name=f"{name}-{subscription}-leases",
                                        daemon=True)
        self._thread.start()
        self._keeper.start()

    def _run(self) -> None:
        stub, clock = self.bus.stub, self.bus.clock
        while not self._stop.is_set():
            if not self._running.is_set():
                self._stop.wait(self.poll)
                continue
            pull = bus_pb2.PullRequest(subscription=self.subscription, max_messages=self.batch)
            reply = self._call(stub.Pull, pull)
            if reply is None:
                if self._closed:
                    return
                self._stop.wait(0.05)  # the bus is down: try again shortly
                continue
            self._ack_deadline = reply.ack_deadline or self._ack_deadline
            with self._held_lock:
                self._held.update((d.ack_id, clock()) for d in reply.deliveries)
            if not self._handle_batch(reply.deliveries):
                return
            if not reply.deliveries:
                self._stop.wait(self.poll)

    def _handle_batch(self, deliveries) -> bool:
        """Handle a pulled batch in order; return False if the consumer must end (crashed, closed)."""
        clock, acks, flushed = self.bus.clock, [], self.bus.clock()
        for delivery in deliveries:
            if self._stop.is_set():
                break  # stopping: the rest come back when their leases end
            skip = self.idempotent and delivery.message_id in self._seen
            if not skip:
                try:
                    self.handler(delivery.data, dict(delivery.attributes))
                except Exception as exc:  # a poison message: back at once, then dead-lettered
                    if self._crashed.is_set():
                        return False
                    self.failures.append((delivery.message_id, delivery.delivery_attempt, repr(exc)))
                    self._let_go([delivery.ack_id])
                    self._call(self.bus.stub.Nack, bus_pb2.NackRequest(
                        subscription=self.subscription, ack_ids=[delivery.ack_id], reason=repr(exc)))
                    continue
                self._seen.add(delivery.message_id)
            if self._crashed.is_set():
                return False  # crashed in the handler: no ack, and no more lease extensions
            self.handled.append(Handled(delivery.message_id, delivery.delivery_attempt,
                                        delivery.published_at, clock(), skip))
            if self.lose_ack_percent and self._rng.random() * 100 < self.lose_ack_percent:
                self._let_go([delivery.ack_id])  # crashed after the work, before the ack
                continue
            acks.append(delivery.ack_id)
            if clock() - flushed > self._ack_deadline / 2:
                self._ack(acks)
                acks, flushed = [], clock()
        if self._crashed.is_set():
            return False
        self._ack(acks)
        return not self._closed

    def _ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._let_go(ack_ids)
            self._call(self.bus.stub.Ack, bus_pb2.AckRequest(subscription=self.subscription, ack_ids=ack_ids))

    def _let_go(self, ack_ids: list[str]) -> None:
        with self._held_lock:
            for ack_id in ack_ids:
                self._held.pop(ack_id, None)

    def _keep_leases(self) -> None:
        """Extend the leases of held messages, every third of the ack deadline, up to ``max_lease``."""
        clock = self.bus.clock
        while not self._stop.wait(self._ack_deadline / 3):
            now = clock()
            with self._held_lock:
                ids = [ack_id for ack_id, since in self._held.items() if now - since < self.max_lease]
            if ids:
                self._call(self.bus.stub.Extend, bus_pb2.ExtendRequest(
                    subscription=self.subscription, ack_ids=ids, seconds=self._ack_deadline))

    def _call(self, method, request):
        """One call to the bus; its failure is counted in :attr:`errors`, not raised."""
        try:
            return method(request, timeout=2)
        except grpc.RpcError as exc:
            self.errors.append(exc.code().name)
        except ValueError:  # the mesh was stopped and closed its channels: nothing left to consume
            self.errors.append("CLOSED")
            self._closed = True
        return None

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
        """Finish the message in hand, acknowledge what was handled, and end; the batch's other
        messages come back to the subscription when their leases end."""
        self._stop.set()
        self._thread.join(5)
        self._keeper.join(5)

    def crash(self) -> None:
        """End as a crashed process would: nothing more is acknowledged or extended, so whatever
        it held is delivered again once its lease runs out (call it from the handler too)."""
        self._crashed.set()
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)
        self._keeper.join(5)

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
