"""Invariants, stated once and checked by Hypothesis over many generated histories: a token bucket
never admits more than rate·t + burst; a weighted round robin gives each instance its share; a
balancer never picks an ejected instance while another is in; the registry's indexes never go
backwards; the bus never loses a message (each is waiting, leased, acknowledged or dead)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.bus import Broker
from mesh.policies import BALANCERS, OutlierDetector, TokenBucket
from mesh.registry import Indexes, KVStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


steps = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(min_value=0.1, max_value=100.0), burst=st.integers(min_value=1, max_value=20),
       gaps=st.lists(steps, min_size=1, max_size=200))
def test_a_token_bucket_never_admits_more_than_rate_times_time_plus_burst(rate, burst, gaps):
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    admitted = 0
    for gap in gaps:
        clock.now += gap
        if bucket.acquire(timeout=0) is not None:
            admitted += 1
        assert admitted <= rate * clock.now + burst + 1e-9
        assert bucket.available <= burst  # never refilled past its cap


@dataclass(frozen=True)
class Weighted:
    name: str
    weight: int


@settings(max_examples=100, deadline=None)
@given(weights=st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=6).filter(any),
       rounds=st.integers(min_value=1, max_value=4))
def test_weighted_round_robin_gives_each_instance_exactly_its_share_every_cycle(weights, rounds):
    pool = [Weighted(f"i{n}", w) for n, w in enumerate(weights)]
    balancer = BALANCERS["weighted_round_robin"](None, None, 2)
    picks = [balancer.pick(pool).name for _ in range(sum(weights) * rounds)]
    assert {i.name: picks.count(i.name) for i in pool} == {i.name: i.weight * rounds for i in pool}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(BALANCERS)), size=st.integers(min_value=2, max_value=6),
       events=st.lists(st.tuples(st.integers(min_value=0, max_value=5), st.booleans(), steps), max_size=120),
       percent=st.sampled_from([10.0, 50.0, 100.0]))
def test_no_balancer_picks_an_ejected_instance_while_another_is_in(name, size, events, percent):
    clock = Clock()
    pool = [f"i{n}" for n in range(size)]
    detector = OutlierDetector(clock, consecutive_errors=2, base_ejection_time=1.0, max_ejection_time=3.0,
                               max_ejection_percent=percent)
    balancer = BALANCERS[name](np.random.default_rng(0), clock, 2)
    allowed = max(1, math.floor(size * percent / 100))
    for index, ok, gap in events:
        clock.now += gap
        candidates = detector.available(pool)
        chosen = balancer.pick(candidates, request=str(index))
        ejected = [i for i in pool if detector.is_ejected(i)]
        assert len(ejected) <= allowed
        assert chosen not in ejected or len(ejected) == size
        balancer.on_start(chosen)
        balancer.on_end(chosen, gap, ok)
        detector.on_result(pool[index % size], ok, size)
    assert all(seconds <= 3.0 for _, _, seconds in detector.ejections)


keys = st.sampled_from(["a", "a/b", "a/c", "b", "b/a", "ab"])


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["put", "delete", "delete_tree", "wait"]), keys, steps),
                    max_size=80))
def test_registry_indexes_never_go_backwards(ops):
    clock = Clock()
    kv = KVStore(Indexes(), clock, tombstone_ttl=1.0)
    watched = [(p, r) for p in ("a", "a/", "b", "ab", "") for r in (True, False)]
    seen = {w: kv.index_for(*w) for w in watched}
    for op, key, gap in ops:
        if op == "put":
            kv.put(key, b"x")
        elif op == "delete":
            kv.delete(key)
        elif op == "delete_tree":
            kv.delete(key, recurse=True)
        else:
            clock.now += gap
            kv.prune_tombstones(clock.now)
        for w in watched:
            now = kv.index_for(*w)
            assert now >= seen[w], (w, op, key)
            seen[w] = now


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["publish", "pull", "ack", "nack", "extend", "wait"]),
                              st.integers(min_value=0, max_value=9), steps), max_size=100))
def test_the_bus_never_loses_a_message(ops):
    clock = Clock()
    broker = Broker(clock)
    broker.create_topic("t")
    broker.subscribe("s", "t", ack_deadline=1.0, max_deliveries=3)
    held: list[str] = []
    for op, n, gap in ops:
        if op == "publish":
            broker.publish("t", b"x" * n)
        elif op == "pull":
            held += [d.ack_id for d in broker.pull("s", max_messages=n)]
        elif op == "ack" and held:
            broker.ack("s", [held.pop(n % len(held))])
        elif op == "nack" and held:
            broker.nack("s", [held.pop(n % len(held))], "no")
        elif op == "extend" and held:
            broker.extend("s", [held[n % len(held)]], 1.0)
        else:
            clock.now += gap
        sub = broker.subscription("s")
        assert sub.acked + len(sub.ready) + len(sub.leased) + len(sub.dead) == broker.published
        assert all(d.deliveries == 3 for d in sub.dead)  # only after its last delivery
