"""Faults carried through the KV store to an instance in another process: the encoding, what a
bad value does, and the acknowledgement that makes ``set`` return only once they are in force."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mesh.control import MeshKeys
from mesh.interceptors import FaultInjector, Faults
from mesh.processes.remote_faults import FaultsWatch, RemoteFaults, faults_from_json, faults_to_json
from mesh.registry import Registry

from .conftest import eventually


def test_faults_survive_the_round_trip_through_json():
    faults = Faults(delay=0.25, delay_jitter=0.1, delay_percent=50, abort_code="UNAVAILABLE",
                    abort_percent=12.5, hang_percent=3, max_hang=2, workers=2, service_time=0.01,
                    partitioned_from=frozenset({"payments", "orders"}))
    text = faults_to_json(faults)
    assert '"partitioned_from": ["orders", "payments"]' in text  # sorted: one text per set of faults
    assert faults_from_json(text) == faults
    assert faults_from_json(faults_to_json(Faults())) == Faults()
    assert faults_from_json('{"delay": 0.5}') == Faults(delay=0.5)  # fields left out are defaults


@pytest.mark.parametrize("text, message", [
    ("not json", "must be JSON"),
    ("[1, 2]", "must be an object"),
    ('{"delay": 1, "explode": true}', "must be an object with fields among"),
    ('{"abort_code": "NOPE"}', "unknown gRPC status"),
    ('{"abort_percent": 150}', "percentage"),
    ('{"delay": -1}', "must not be negative"),
])
def test_a_value_that_is_not_faults_is_refused_with_a_reason(text, message):
    with pytest.raises(ValueError, match=message):
        faults_from_json(text)


def test_set_returns_once_the_watching_instance_applied_and_a_bad_value_is_ignored():
    with Registry(dns_port=None) as registry:
        client = registry.client()
        injector = FaultInjector(np.random.default_rng(0), stopping=threading.Event())
        watch = FaultsWatch(client, MeshKeys(), "greeter-1", injector)
        remote = RemoteFaults(client, MeshKeys(), "greeter-1", timeout=5)
        try:
            applied = remote.set(delay=0.3, partitioned_from=frozenset({"orders"}))
            assert injector.faults == applied == remote.faults  # in force when set returns
            client.kv.put("faults/greeter-1", "garbage")  # someone wrote nonsense: nothing changes
            remote.set(abort_code="INTERNAL", abort_percent=100)  # the watch goes on after it
            assert injector.faults.abort_percent == 100 and injector.faults.delay == 0.3
            acknowledged = client.kv.get("faults-applied/greeter-1")[1]["Value"]
            assert acknowledged == faults_to_json(injector.faults).encode()
            remote.forget()
            assert client.kv.get("faults/greeter-1")[1] is None
        finally:
            watch.stop()


def test_set_says_so_when_no_instance_applies_its_faults():
    with Registry(dns_port=None) as registry:
        remote = RemoteFaults(registry.client(), MeshKeys(), "ghost-1", timeout=0.5)
        with pytest.raises(TimeoutError, match=r"did not apply its faults within 0\.5 s"):
            remote.set(delay=1.0)
        assert remote.faults.delay == 1.0  # written, and applied by the instance when it starts
        assert remote.set(delay=2.0, wait=False).delay == 2.0


def test_writes_elsewhere_in_the_store_do_not_make_the_watch_apply_or_acknowledge_again():
    """For a key that does not exist the registry answers with the whole store's index, so every
    write anywhere woke the watch, which applied its faults and wrote its acknowledgement again —
    itself a write, waking every such watch: a processes-mode mesh spun at thousands of requests a
    second. An answer equal to the last applied is now left alone."""
    with Registry(dns_port=None) as registry:
        client = registry.client()
        injector = FaultInjector(np.random.default_rng(0), stopping=threading.Event())
        sets = []
        original = injector.set
        injector.set = lambda faults: (sets.append(faults), original(faults))[1]
        watch = FaultsWatch(client, MeshKeys(), "greeter-1", injector)  # no faults key: no faults
        try:
            eventually(lambda: client.kv.get("faults-applied/greeter-1")[1] is not None, timeout=5)
            acknowledged = client.kv.get("faults-applied/greeter-1")[1]["ModifyIndex"]
            for n in range(20):
                client.kv.put(f"config/elsewhere/{n}", "x")
            time.sleep(0.5)
            assert len(sets) == 1 and sets[0] == Faults()
            assert client.kv.get("faults-applied/greeter-1")[1]["ModifyIndex"] == acknowledged
        finally:
            watch.stop()
