"""The message bus: its bookkeeping on a fake clock (leases, redelivery, dead letters, fan-out to
subscriptions, sharing within one), then on the real mesh — at-least-once delivery duplicates
when acks are lost, an idempotent consumer acts once, a paused consumer's backlog drains."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from lessons.bus import deliver_orders
from mesh import Mesh
from mesh.bus import (
    MAX_ACK_DEADLINE,
    MAX_MESSAGE_BYTES,
    MAX_PULL_BYTES,
    MAX_PULL_MESSAGES,
    Broker,
    Bus,
    BusError,
    Consumer,
)
from mesh.pb import bus_pb2

from .conftest import MODES


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def broker():
    clock = Clock()
    broker = Broker(clock)
    broker.clock = clock
    broker.create_topic("orders")
    broker.subscribe("billing", "orders", ack_deadline=1.0, max_deliveries=3)
    return broker


def test_every_subscription_gets_every_message_and_consumers_of_one_share_it(broker):
    broker.subscribe("shipping", "orders")
    ids = [broker.publish("orders", f"o{n}".encode()) for n in range(4)]
    first = broker.pull("billing", max_messages=2)
    second = broker.pull("billing", max_messages=10)  # another consumer of the same subscription
    assert [d.message.id for d in first + second] == ids  # shared, each once, oldest first
    assert [d.message.id for d in broker.pull("shipping")] == ids  # its own copy of each
    assert broker.pull("billing") == []


def test_an_unacknowledged_message_comes_back_after_its_deadline_then_goes_to_dead_letters(broker):
    message_id = broker.publish("orders", b"o1")
    for attempt in (1, 2, 3):
        (delivery,) = broker.pull("billing")
        assert (delivery.message.id, delivery.attempt) == (message_id, attempt)
        assert broker.pull("billing") == []  # leased: nobody else gets it meanwhile
        broker.clock.now += 1.0
    assert broker.pull("billing") == []
    (dead,) = broker.subscription("billing").dead
    assert (dead.message.id, dead.deliveries) == (message_id, 3)
    assert "gave up after 3 deliveries" in dead.reason and "1 s ack deadline" in dead.reason
    assert broker.stats()[0] == {"subscription": "billing", "topic": "orders", "backlog": 0, "leased": 0,
                                 "acked": 0, "redelivered": 2, "dead_lettered": 1}


def test_an_ack_within_the_deadline_counts_and_a_late_ack_does_not(broker):
    broker.publish("orders", b"o1")
    broker.publish("orders", b"o2")
    early, late = broker.pull("billing")
    assert broker.ack("billing", [early.ack_id]) == 1
    broker.clock.now += 1.5
    assert broker.ack("billing", [late.ack_id]) == 0  # the lease expired: it will come again
    (again,) = broker.pull("billing")
    assert (again.message.id, again.attempt) == (late.message.id, 2)
    assert broker.ack("billing", [again.ack_id, "a-unknown"]) == 1


def test_a_pull_is_bounded_by_bytes_but_always_returns_one_message(broker):
    big = b"x" * (MAX_MESSAGE_BYTES - 10)
    ids = [broker.publish("orders", big, {"key": "v" * 7}) for _ in range(4)]  # exactly the limit each
    first = broker.pull("billing", max_messages=10)
    assert [d.message.id for d in first] == ids[:3]  # 3 MiB: a fourth would not fit
    assert sum(d.message.size for d in first) == 3 * MAX_MESSAGE_BYTES == MAX_PULL_BYTES
    assert [d.message.id for d in broker.pull("billing", max_bytes=1)] == [ids[3]]  # one, however small
    with pytest.raises(BusError, match="over the bus's limit of 1,048,576 bytes"):
        broker.publish("orders", big, {"key": "v" * 8})  # one byte too many, counting the attributes
    assert broker.published == 4


def test_a_pull_never_returns_more_than_its_cap(broker):
    for _ in range(MAX_PULL_MESSAGES + 5):
        broker.publish("orders", b"")
    assert len(broker.pull("billing", max_messages=10**6)) == MAX_PULL_MESSAGES
    assert len(broker.pull("billing", max_messages=0)) == 1


def test_an_extended_lease_is_not_redelivered_and_an_expired_one_cannot_be_extended(broker):
    broker.publish("orders", b"o1")
    broker.publish("orders", b"o2")
    kept, lost = broker.pull("billing")
    broker.clock.now = 0.9
    assert broker.extend("billing", [kept.ack_id, "a-unknown"], 1.0) == 1
    broker.clock.now = 1.0  # exactly at the end of the first lease: it has ended
    assert broker.extend("billing", [lost.ack_id], 1.0) == 0
    assert [d.message.id for d in broker.pull("billing")] == [lost.message.id]
    broker.clock.now = 1.89
    assert broker.ack("billing", [kept.ack_id]) == 1 and broker.subscription("billing").redelivered == 1
    for seconds in (0, -1, MAX_ACK_DEADLINE + 1):
        with pytest.raises(BusError, match="lease extension"):
            broker.extend("billing", [kept.ack_id], seconds)


def test_a_nack_redelivers_at_once_first_in_line_and_dead_letters_with_the_reason(broker):
    first = broker.publish("orders", b"o1")
    second = broker.publish("orders", b"o2")
    for attempt in (1, 2):
        delivery = broker.pull("billing", max_messages=1)[0]
        assert (delivery.message.id, delivery.attempt) == (first, attempt)
        assert broker.nack("billing", [delivery.ack_id], "KeyError('sku')") == 1
    (last,) = broker.pull("billing", max_messages=1)
    assert broker.nack("billing", [last.ack_id, last.ack_id], "KeyError('price')") == 1
    (dead,) = broker.subscription("billing").dead
    assert (dead.message.id, dead.deliveries) == (first, 3)
    assert dead.reason == "gave up after 3 deliveries; the last one failed in the handler: KeyError('price')"
    assert [d.message.id for d in broker.pull("billing")] == [second]


def test_bad_requests_are_refused_and_change_nothing(broker):
    with pytest.raises(BusError, match="no topic"):
        broker.publish("payments", b"x")
    with pytest.raises(BusError, match="no subscription"):
        broker.pull("nobody")
    with pytest.raises(BusError, match="exists"):
        broker.subscribe("billing", "orders")
    with pytest.raises(BusError, match="ack_deadline"):
        broker.subscribe("fast", "orders", ack_deadline=0)
    assert broker.published == 0 and [row["subscription"] for row in broker.stats()] == ["billing"]


@pytest.fixture(params=MODES)
def bus_mesh(request):
    """A bus of two replicas on a mesh of either mode: in the kernel, or as processes serving from
    the log the kernel keeps (their calls then cross a process boundary twice)."""
    with Mesh(name=f"bus-tests-{request.param}", seed=2, mode=request.param) as mesh:
        bus = Bus(mesh, replicas=2)
        bus.create_topic("orders")
        bus.subscribe("billing", "orders", ack_deadline=0.2)
        yield mesh, bus


@pytest.mark.slow
def test_the_bus_is_a_mesh_service_and_refuses_unknown_topics_over_grpc(bus_mesh):
    mesh, bus = bus_mesh
    assert sorted(mesh.passing("bus")) == ["bus-1", "bus-2"]
    with pytest.raises(grpc.RpcError) as refused:
        bus.stub.Publish(bus_pb2.PublishRequest(topic="nope", data=b"x"), timeout=2)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "no topic" in refused.value.details()
    ids = [bus.publish("orders", f"o{n}", order=str(n)) for n in range(20)]
    assert len(set(ids)) == 20  # both replicas took publishes into one shared log
    seen = []
    with Consumer(bus, "billing", lambda data, attrs: seen.append(attrs["order"])):
        mesh.wait_until(lambda: bus.backlog("billing") == 0, timeout=15)
    assert sorted(seen, key=int) == [str(n) for n in range(20)]
    assert not [t for t in threading.enumerate() if t.name == "consumer-billing"]


@pytest.mark.slow
def test_lost_acks_make_a_plain_consumer_act_twice_and_an_idempotent_one_once():
    plain = deliver_orders(orders=120, lose_ack_percent=25, seed=5)
    careful = deliver_orders(orders=120, lose_ack_percent=25, idempotent=True, seed=5)
    for run in (plain, careful):
        assert set(run.charges) == {f"o-{n}" for n in range(120)}  # nothing lost
        assert len(run.handled) > 120  # some messages were delivered again
    assert sum(n > 1 for n in plain.charges.values()) > 10
    assert all(n == 1 for n in careful.charges.values())
    assert sum(h.skipped for h in careful.handled) == len(careful.handled) - 120


@pytest.mark.slow
def test_a_paused_consumer_builds_a_backlog_that_drains_when_it_returns():
    run = deliver_orders(orders=120, rate=300, pause=(0.1, 0.3), seed=1)
    assert len(run.charges) == 120 and run.dead_lettered == 0
    peak = max(size for _, size in run.backlog)
    assert peak >= 40  # ~60 published while it was away
    assert run.backlog[-1][1] == 0
    waited = [h.lag for h in run.handled if 0.12 <= h.published_at - run.start < 0.28]
    assert waited and min(waited) > 0.02  # published while away: handled only after it came back


@pytest.mark.slow
def test_a_poison_message_is_retried_then_dead_lettered_without_blocking_the_rest(bus_mesh):
    mesh, bus = bus_mesh
    bus.subscribe("strict", "orders", ack_deadline=0.1, max_deliveries=3)
    done = []

    def handle(data, attrs):
        if attrs["order"] == "bad":
            raise ValueError("cannot parse the order")
        done.append(attrs["order"])

    for order in ("o-1", "bad", "o-2"):
        bus.publish("orders", "x", order=order)
    with Consumer(bus, "strict", handle) as consumer:
        mesh.wait_until(lambda: bus.backlog("strict") == 0, timeout=15)
    assert done == ["o-1", "o-2"]
    assert [attempt for _, attempt, _ in consumer.failures] == [1, 2, 3]
    (dead,) = bus.dead_letters("strict")
    assert (dead.message.attributes, dead.deliveries) == ({"order": "bad"}, 3)
    assert dead.reason.endswith("failed in the handler: ValueError('cannot parse the order')")


@pytest.mark.slow
def test_a_consumer_left_running_ends_when_its_mesh_stops_and_a_second_bus_is_refused():
    mesh = Mesh(name="bus-leftover")
    bus = Bus(mesh)
    bus.create_topic("orders")
    bus.subscribe("billing", "orders")
    with pytest.raises(ValueError, match="already runs"):
        Bus(mesh)
    consumer = Consumer(bus, "billing", lambda data, attrs: None, name="leftover")
    mesh.stop()
    consumer._thread.join(5)
    assert not consumer._thread.is_alive()
    assert list(consumer.errors)[-1] == "CLOSED"


@pytest.mark.slow
def test_big_messages_are_each_handled_once_and_too_big_ones_are_refused_at_publish(bus_mesh):
    """Ten 1 MB messages: 10 MB leased in one pull was over gRPC's 4 MiB limit, every try spent a
    delivery and all ten were dead-lettered unhandled. Pulls are now bounded by bytes. Each is
    handled (at least once: the bus delivers at least once, and on a busy machine a lease can run
    out before its ack arrives — CI once saw one message handled twice)."""
    mesh, bus = bus_mesh
    sizes = []
    for n in range(10):
        bus.publish("orders", bytes([n]) * 1_000_000, order=str(n))
    with Consumer(bus, "billing", lambda data, attrs: sizes.append((attrs["order"], len(data)))) as consumer:
        mesh.wait_until(lambda: bus.backlog("billing") == 0, timeout=10)
    assert sorted(set(sizes)) == [(str(n), 1_000_000) for n in range(10)]
    assert bus.dead_letters("billing") == [] and not consumer.errors
    with pytest.raises(grpc.RpcError) as refused:
        bus.publish("orders", b"x" * (MAX_MESSAGE_BYTES + 1))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over the bus's limit" in refused.value.details()


@pytest.mark.slow
def test_a_batch_slower_than_the_ack_deadline_is_handled_once_because_leases_are_extended(bus_mesh):
    """20 messages of 30 ms with a 0.2 s deadline: the batch's one lease ran out, so every message
    was handled 5 times and dead-lettered (0 acknowledged). The consumer now extends its leases."""
    mesh, bus = bus_mesh
    for n in range(20):
        bus.publish("orders", "x", order=str(n))
    seen = []
    with Consumer(bus, "billing", lambda data, attrs: (time.sleep(0.03), seen.append(attrs["order"])),
                  batch=20):
        mesh.wait_until(lambda: bus.backlog("billing") == 0, timeout=10)
    assert seen == [str(n) for n in range(20)]  # each once, in order
    stats = bus.stats()[0]
    assert (stats["acked"], stats["redelivered"], stats["dead_lettered"]) == (20, 0, 0)


@pytest.mark.slow
def test_without_lease_extension_a_slow_handler_is_dead_lettered_with_a_reason(bus_mesh):
    mesh, bus = bus_mesh
    bus.subscribe("slow", "orders", ack_deadline=0.05, max_deliveries=2)
    bus.publish("orders", "x", order="1")
    with Consumer(bus, "slow", lambda data, attrs: time.sleep(0.08), max_lease=0) as consumer:
        mesh.wait_until(lambda: bus.backlog("slow") == 0, timeout=15)
    (dead,) = bus.dead_letters("slow")
    assert dead.deliveries == 2 and "not acknowledged within the 0.05 s ack deadline" in dead.reason
    assert [h.attempt for h in consumer.handled] == [1, 2]


@pytest.mark.slow
def test_every_message_is_handled_at_least_once_when_a_consumer_crashes_mid_batch(bus_mesh):
    mesh, bus = bus_mesh
    bus.subscribe("crashy", "orders", ack_deadline=1.0)  # no early ack flush within 0.5 s
    for n in range(30):
        bus.publish("orders", "x", order=str(n))
    first, second = [], []
    made = threading.Event()  # the consumer's thread may reach the eighth before its name is bound

    def crash_on_the_eighth(data, attrs):
        first.append(attrs["order"])
        if len(first) == 8:
            made.wait(5)
            crashing.crash()

    crashing = Consumer(bus, "crashy", crash_on_the_eighth, batch=10, name="crashing")
    made.set()
    mesh.wait_until(lambda: len(first) == 8, timeout=15)
    crashing._thread.join(5)
    assert not crashing._thread.is_alive() and not crashing._keeper.is_alive()
    assert bus.stats()[1]["acked"] == 0  # it crashed before acknowledging its first batch
    with Consumer(bus, "crashy", lambda data, attrs: second.append(attrs["order"])):
        mesh.wait_until(lambda: bus.backlog("crashy") == 0, timeout=15)
    assert first == [str(n) for n in range(8)]
    assert sorted(second, key=int) == [str(n) for n in range(30)]  # the crashed batch came back
    assert bus.dead_letters("crashy") == []


def test_the_brokers_words_ids_and_counts(broker):
    with pytest.raises(BusError, match=r"^a topic needs a name$"):
        broker.create_topic("")
    with pytest.raises(BusError, match=r"^no topic 'payments'; topics: \['orders'\]$"):
        broker.subscribe("x", "payments")
    with pytest.raises(BusError, match=r"^no subscription 'x'; subscriptions: \['billing'\]$"):
        broker.pull("x")
    words = r"^ack_deadline must be in \(0, 600\] seconds and max_deliveries >= 1$"
    for bad in ({"ack_deadline": 600.001}, {"max_deliveries": 0}):
        with pytest.raises(BusError, match=words):
            broker.subscribe("bad", "orders", **bad)
    broker.subscribe("slowest", "orders", ack_deadline=600, max_deliveries=1)  # both bounds accepted
    assert broker.topics() == {"orders": ["billing", "slowest"]}
    broker.topics()["orders"].append("not really")  # a copy: the broker's own list is unchanged
    assert broker.topics() == {"orders": ["billing", "slowest"]}
    first = broker.publish("orders", b"x", {"k": "v"})
    assert (first, broker.publish("orders", b"y")) == ("m-1", "m-2")
    pulled = broker.pull("billing")
    assert [d.ack_id for d in pulled] == ["a-1", "a-2"] and pulled[0].message.attributes == {"k": "v"}
    assert pulled[0].message.published_at == 0.0 and pulled[0].message.topic == "orders"
    assert broker.extend("billing", [d.ack_id for d in pulled], 600) == 2
    assert broker.ack("billing", [d.ack_id for d in pulled]) == 2
    for _ in range(12):
        broker.publish("orders", b"")
    assert len(broker.pull("billing")) == 10  # a pull's default batch


def test_a_nack_without_words_says_the_consumer_gave_it_back_and_long_words_are_cut(broker):
    broker.subscribe("once", "orders", max_deliveries=1)
    broker.publish("orders", b"a")
    broker.publish("orders", b"b")
    first, second = broker.pull("once")
    assert broker.nack("once", [first.ack_id, second.ack_id, "a-x"], "") == 2
    broker.publish("orders", b"c")
    (third,) = broker.pull("once")
    broker.nack("once", [third.ack_id], "E" * 600)
    reasons = [d.reason for d in broker.subscription("once").dead]
    assert reasons[0] == ("gave up after 1 delivery; the last one failed in the handler: "
                          "the consumer gave it back")
    assert reasons[2].endswith(": " + "E" * 500)  # at most 500 characters of the handler's words
