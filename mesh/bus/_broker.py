"""The bus's bookkeeping, without transport or threads: topics, subscriptions, leases, dead letters.

Semantics of a pull subscription (as Google Pub/Sub's): a message published to a topic is copied
to every subscription of that topic; the consumers of one subscription share its messages. A
pulled message is leased for ``ack_deadline`` seconds; acknowledged, it is gone; not acknowledged
in time, it is delivered again (at-least-once: a consumer may see a message twice). After
``max_deliveries`` deliveries it moves to the subscription's dead-letter list, with the reason it
could not be delivered (the handler's last error, or a lease that ran out each time). Time comes
from ``clock``; ids from a counter, so runs repeat.

The delivery contract, and its limits:

- A message's data plus attributes is at most :data:`MAX_MESSAGE_BYTES` (1 MiB); a bigger one is
  refused at publish, so nothing is accepted that could not be delivered.
- A pull returns at most :data:`MAX_PULL_BYTES` (3 MiB) of messages — always at least one — so a
  batch fits in gRPC's 4 MiB message limit however big the messages are.
- A consumer that is still working on a message extends its lease (:meth:`Broker.extend`, as
  Pub/Sub's ``ModifyAckDeadline``), by at most :data:`MAX_ACK_DEADLINE` seconds at a time; a
  handler that fails gives the message back at once with its reason (:meth:`Broker.nack`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

#: The largest message (data plus attribute keys and values) the bus accepts, in bytes.
MAX_MESSAGE_BYTES = 1 << 20
#: The most message bytes one pull returns (a batch stays under gRPC's 4 MiB default).
MAX_PULL_BYTES = 3 << 20
#: The most messages one pull returns.
MAX_PULL_MESSAGES = 1000
#: The longest one lease or one extension may be, in seconds (Pub/Sub's limit too).
MAX_ACK_DEADLINE = 600.0


class BusError(ValueError):
    """A request the bus refuses (unknown topic or subscription, bad settings, too big)."""


@dataclass(frozen=True)
class Message:
    id: str
    topic: str
    data: bytes
    attributes: dict[str, str]
    published_at: float

    @property
    def size(self) -> int:
        """Bytes counted against :data:`MAX_MESSAGE_BYTES` and :data:`MAX_PULL_BYTES`."""
        return message_size(self.data, self.attributes)


def message_size(data: bytes, attributes: dict[str, str]) -> int:
    """Return a message's size: its data and its attributes' keys and values, in bytes."""
    return len(data) + sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())


@dataclass(frozen=True)
class DeadLetter:
    """A message given up on after ``deliveries`` deliveries, and why."""

    message: Message
    deliveries: int
    reason: str


@dataclass
class _Lease:
    message: Message
    attempts: int
    until: float
    failure: str = ""  # the handler's error, when the consumer gave this delivery back


@dataclass
class Delivery:
    ack_id: str
    message: Message
    attempt: int


@dataclass
class Subscription:
    name: str
    topic: str
    ack_deadline: float
    max_deliveries: int
    # message id -> (message, deliveries so far), oldest first
    ready: OrderedDict[str, tuple[Message, int]] = field(default_factory=OrderedDict)
    leased: dict[str, _Lease] = field(default_factory=dict)  # by ack id
    dead: list[DeadLetter] = field(default_factory=list)
    acked: int = 0
    redelivered: int = 0

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged (waiting or leased)."""
        return len(self.ready) + len(self.leased)


class Broker:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._topics: dict[str, list[str]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._counters = {"m": 0, "a": 0}  # message ids, ack ids
        self.published = 0

    def _id(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return f"{prefix}-{self._counters[prefix]}"

    # -- administration ---------------------------------------------------------------------------
    def create_topic(self, topic: str) -> None:
        if not topic:
            raise BusError("a topic needs a name")
        self._topics.setdefault(topic, [])

    def subscribe(self, name: str, topic: str, ack_deadline: float = 1.0, max_deliveries: int = 5) -> None:
        """Create a subscription of ``topic`` (it receives messages published from now on)."""
        if topic not in self._topics:
            raise BusError(f"no topic {topic!r}; topics: {sorted(self._topics)}")
        if name in self._subscriptions:
            raise BusError(f"subscription {name!r} exists")
        if not 0 < ack_deadline <= MAX_ACK_DEADLINE or max_deliveries < 1:
            raise BusError(f"ack_deadline must be in (0, {MAX_ACK_DEADLINE:g}] seconds "
                           "and max_deliveries >= 1")
        self._subscriptions[name] = Subscription(name, topic, ack_deadline, max_deliveries)
        self._topics[topic].append(name)

    def subscription(self, name: str) -> Subscription:
        try:
            return self._subscriptions[name]
        except KeyError:
            known = sorted(self._subscriptions)
            raise BusError(f"no subscription {name!r}; subscriptions: {known}") from None

    def topics(self) -> dict[str, list[str]]:
        return {topic: list(subs) for topic, subs in self._topics.items()}

    # -- the data path ----------------------------------------------------------------------------
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Append a message to every subscription of ``topic``; return its id."""
        if topic not in self._topics:
            raise BusError(f"no topic {topic!r}; topics: {sorted(self._topics)}")
        attributes = dict(attributes or {})
        size = message_size(data, attributes)
        if size > MAX_MESSAGE_BYTES:
            raise BusError(f"a message of {size:,} bytes is over the bus's limit of "
                           f"{MAX_MESSAGE_BYTES:,} bytes (data plus attributes): store the payload "
                           "elsewhere and publish a reference to it")
        message = Message(self._id("m"), topic, data, attributes, self._clock())
        for name in self._topics[topic]:
            self._subscriptions[name].ready[message.id] = (message, 0)
        self.published += 1
        return message.id

    def pull(self, subscription: str, max_messages: int = 10,
             max_bytes: int = MAX_PULL_BYTES) -> list[Delivery]:
        """Lease up to ``max_messages`` messages and ``max_bytes`` bytes of them — at least one if
        any waits — oldest first, expired leases included."""
        sub = self.subscription(subscription)
        self._expire(sub)
        max_messages = min(max(max_messages, 1), MAX_PULL_MESSAGES)
        max_bytes = min(max_bytes, MAX_PULL_BYTES)
        deliveries: list[Delivery] = []
        until = self._clock() + sub.ack_deadline
        size = 0
        while sub.ready and len(deliveries) < max_messages:
            message, attempts = next(iter(sub.ready.values()))
            if deliveries and size + message.size > max_bytes:
                break
            size += message.size
            del sub.ready[message.id]
            ack_id = self._id("a")
            sub.leased[ack_id] = _Lease(message, attempts + 1, until)
            deliveries.append(Delivery(ack_id, message, attempts + 1))
        return deliveries

    def ack(self, subscription: str, ack_ids: list[str]) -> int:
        """Acknowledge leased messages; return how many ack ids were still valid."""
        sub = self.subscription(subscription)
        self._expire(sub)
        done = 0
        for ack_id in ack_ids:
            if sub.leased.pop(ack_id, None) is not None:
                done += 1
        sub.acked += done
        return done

    def extend(self, subscription: str, ack_ids: list[str], seconds: float) -> int:
        """Extend the leases of ``ack_ids`` to ``seconds`` from now (a consumer still working on
        them); return how many were still leased. An expired lease cannot be extended."""
        if not 0 < seconds <= MAX_ACK_DEADLINE:
            raise BusError(f"a lease extension must be in (0, {MAX_ACK_DEADLINE:g}] seconds")
        sub = self.subscription(subscription)
        self._expire(sub)
        until = self._clock() + seconds
        done = 0
        for ack_id in ack_ids:
            lease = sub.leased.get(ack_id)
            if lease is not None:
                lease.until = until
                done += 1
        return done

    def nack(self, subscription: str, ack_ids: list[str], reason: str) -> int:
        """Give leased messages back at once because handling them failed with ``reason``: each
        is delivered again (first in line) or, after its last delivery, dead-lettered with that
        reason. Return how many were still leased."""
        sub = self.subscription(subscription)
        self._expire(sub)
        done = 0
        for ack_id in ack_ids:
            lease = sub.leased.pop(ack_id, None)
            if lease is not None:
                lease.failure = reason[:500] or "the consumer gave it back"
                self._release(sub, lease)
                done += 1
        return done

    def _expire(self, sub: Subscription) -> None:
        now = self._clock()
        for ack_id, lease in list(sub.leased.items()):
            if lease.until <= now:
                del sub.leased[ack_id]
                self._release(sub, lease)

    @staticmethod
    def _release(sub: Subscription, lease: _Lease) -> None:
        """Put a message whose lease ended unacknowledged back in line, or in the dead letters."""
        if lease.attempts >= sub.max_deliveries:
            last = (f"failed in the handler: {lease.failure}" if lease.failure else
                    f"was not acknowledged within the {sub.ack_deadline:g} s ack deadline (the consumer "
                    "crashed, lost its ack, or worked longer without extending its lease)")
            times = "1 delivery" if lease.attempts == 1 else f"{lease.attempts} deliveries"
            reason = f"gave up after {times}; the last one {last}"
            sub.dead.append(DeadLetter(lease.message, lease.attempts, reason))
            return
        message = lease.message
        sub.ready[message.id] = (message, lease.attempts)
        sub.ready.move_to_end(message.id, last=False)  # redeliver before newer messages
        sub.redelivered += 1

    def stats(self) -> list[dict]:
        """Return one row per subscription: backlog, leased, acknowledged, redelivered, dead."""
        rows = []
        for sub in self._subscriptions.values():
            self._expire(sub)
            rows.append({"subscription": sub.name, "topic": sub.topic, "backlog": sub.backlog,
                         "leased": len(sub.leased), "acked": sub.acked, "redelivered": sub.redelivered,
                         "dead_lettered": len(sub.dead)})
        return rows
