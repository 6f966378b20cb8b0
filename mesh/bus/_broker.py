"""The bus's bookkeeping, without transport or threads: topics, subscriptions, leases, dead letters.

Semantics of a pull subscription (as Google Pub/Sub's): a message published to a topic is copied
to every subscription of that topic; the consumers of one subscription share its messages. A
pulled message is leased for ``ack_deadline`` seconds; acknowledged, it is gone; not acknowledged
in time, it is delivered again (at-least-once: a consumer may see a message twice). After
``max_deliveries`` deliveries it moves to the subscription's dead-letter list. Time comes from
``clock``; ids from a counter, so runs repeat.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


class BusError(ValueError):
    """A request the bus refuses (unknown topic or subscription, bad settings)."""


@dataclass(frozen=True)
class Message:
    id: str
    topic: str
    data: bytes
    attributes: dict[str, str]
    published_at: float


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
    # ack id -> (message, deliveries so far, lease end)
    leased: dict[str, tuple[Message, int, float]] = field(default_factory=dict)
    dead: list[Message] = field(default_factory=list)
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
        if ack_deadline <= 0 or max_deliveries < 1:
            raise BusError("ack_deadline must be > 0 and max_deliveries >= 1")
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
        message = Message(self._id("m"), topic, data, dict(attributes or {}), self._clock())
        for name in self._topics[topic]:
            self._subscriptions[name].ready[message.id] = (message, 0)
        self.published += 1
        return message.id

    def pull(self, subscription: str, max_messages: int = 10) -> list[Delivery]:
        """Lease up to ``max_messages`` messages (oldest first, expired leases included)."""
        sub = self.subscription(subscription)
        self._expire(sub)
        deliveries = []
        until = self._clock() + sub.ack_deadline
        while sub.ready and len(deliveries) < max_messages:
            _, (message, attempts) = sub.ready.popitem(last=False)
            ack_id = self._id("a")
            sub.leased[ack_id] = (message, attempts + 1, until)
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

    def _expire(self, sub: Subscription) -> None:
        now = self._clock()
        for ack_id, (message, attempts, until) in list(sub.leased.items()):
            if until > now:
                continue
            del sub.leased[ack_id]
            if attempts >= sub.max_deliveries:
                sub.dead.append(message)
            else:
                sub.ready[message.id] = (message, attempts)
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
