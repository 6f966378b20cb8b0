"""Server-side discovery through the proxy, and the config center applied live to a running mesh."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import ClassVar

import grpc
import pytest

from mesh import Mesh, burst, tally
from mesh.control.config import ConfigError, ServiceConfig
from mesh.control.discovery import ServiceWatch
from mesh.pb import greeter_pb2, greeter_pb2_grpc
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.services import ServiceKind

from .conftest import BOTH_MODES, eventually

HELLO = HelloRequest(name="Jason")


@pytest.fixture
def mesh(mode):
    with Mesh({"greeter": 3}, name=f"styles-{mode}", mode=mode) as m:
        m.wait_until_passing()
        yield m


@BOTH_MODES
def test_a_client_that_knows_only_the_proxy_reaches_every_replica(mesh):
    proxy = mesh.proxy("greeter")
    greeter = mesh.client_via(proxy)
    counts = tally(burst(greeter.SayHello, HELLO, calls=30))
    assert counts == {"greeter-1": 10, "greeter-2": 10, "greeter-3": 10}
    assert proxy.forwarded == 30
    _, call = greeter.SayHello.with_call(HELLO, timeout=2)
    assert dict(call.initial_metadata())["x-proxied-by"] == "greeter-proxy"


@pytest.mark.slow
@BOTH_MODES
def test_the_proxy_drops_a_killed_replica_and_forwards_errors(mesh):
    proxy = mesh.proxy("greeter")
    greeter = mesh.client_via(proxy)
    mesh.kill("greeter-1")
    eventually(lambda: "greeter-1" not in mesh.passing("greeter"), timeout=10)
    assert {r.served_by for r in burst(greeter.SayHello, HELLO, calls=12)} == {"greeter-2", "greeter-3"}
    for instance in ("greeter-2", "greeter-3"):
        mesh.kill(instance)
    eventually(lambda: mesh.passing("greeter") == [], timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        greeter.SayHello(HELLO, timeout=2)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no passing instance" in err.value.details()


class _Sleepy(greeter_pb2_grpc.GreeterServicer):
    """A Greeter that records the time left on each call's deadline, then takes 0.5 s."""

    remaining: ClassVar[list[float | None]] = []

    def __init__(self, runtime=None):
        self.runtime = runtime

    def SayHello(self, request, context):
        _Sleepy.remaining.append(context.time_remaining())
        time.sleep(0.5)
        return greeter_pb2.HelloReply()


SLEEPY = ServiceKind("sleepy", "Greeter", _Sleepy, greeter_pb2_grpc.add_GreeterServicer_to_server,
                     greeter_pb2_grpc.GreeterStub)


def test_the_proxy_passes_the_callers_deadline_on(mesh):
    mesh.add_service(SLEEPY, replicas=1)
    mesh.wait_until_passing("sleepy")
    sleepy = mesh.client_via(mesh.proxy("sleepy"))
    _Sleepy.remaining.clear()
    with pytest.raises(grpc.RpcError) as err:
        sleepy.SayHello(HELLO, timeout=0.2)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(_Sleepy.remaining) == 1
    # Without propagation the instance would see no deadline (None). The grpc-timeout header rounds
    # up, so allow it a few milliseconds.
    assert _Sleepy.remaining[0] is not None and 0 < _Sleepy.remaining[0] <= 0.21


@BOTH_MODES
def test_a_config_change_reaches_every_replica(mesh):
    greeter = mesh.client("greeter")
    config = mesh.config("greeter")
    assert config.current.age == 24
    config.set("age", 30)
    config.wait_for(lambda s: s.age == 30)
    # a process applies a change a moment after the kernel sees it: wait until all three answer
    mesh.wait_until(lambda: {greeter.SayHello(HELLO).age for _ in range(3)} == {30}, timeout=15)
    assert {greeter.SayHello(HELLO).age for _ in range(9)} == {30}
    config.reset("age")
    config.wait_for(lambda s: s.age == 24)
    mesh.wait_until(lambda: {greeter.SayHello(HELLO).age for _ in range(3)} == {24}, timeout=15)
    assert {greeter.SayHello(HELLO).age for _ in range(9)} == {24}


def test_bad_settings_are_refused_before_anything_is_written(mesh):
    config = mesh.config("greeter")
    index, _ = mesh.consul.kv.get("config/greeter/", recurse=True)
    for name, value in (("age", "old"), ("age", True), ("colour", "red")):
        with pytest.raises(ConfigError):
            config.set(name, value)
    assert mesh.consul.kv.get("config/greeter/", recurse=True) == (index, None)
    assert config.current.age == 24


def test_a_bad_value_written_directly_keeps_the_last_good_one(mesh, caplog):
    config = mesh.config("greeter")
    config.set("age", 31)
    config.wait_for(lambda s: s.age == 31)
    with caplog.at_level(logging.WARNING, logger="mesh.control.config"):
        mesh.consul.kv.put("config/greeter/age", "thirty")
        eventually(lambda: "age" in config.errors)
    assert config.current.age == 31
    assert "not an integer" in config.errors["age"]
    assert sum("ignoring config/greeter/age" in r.message for r in caplog.records) == 1


def test_service_config_on_a_plain_registry(registry, client):
    @dataclasses.dataclass(frozen=True)
    class Limits:
        rate: float = 10.0
        enabled: bool = False
        label: str = "edge"

    config = ServiceConfig(client, "gateway", Limits)
    seen = []
    config.subscribe(seen.append)
    try:
        client.kv.put("config/gateway/rate", "2.5")
        client.kv.put("config/gateway/enabled", "true")
        config.wait_for(lambda s: s.enabled and s.rate == 2.5)
        assert config.current == Limits(rate=2.5, enabled=True, label="edge")
        assert seen[0] == Limits() and seen[-1] == config.current
    finally:
        config.stop()


@BOTH_MODES
def test_discovery_keeps_the_last_instances_when_the_registry_goes_away(mode, caplog):
    with Mesh({"greeter": 2}, name=f"outage-{mode}", mode=mode) as mesh:
        mesh.wait_until_passing()
        watch: ServiceWatch = mesh.discovery.watch("greeter")
        greeter = mesh.client("greeter")

        def outage() -> list:  # discovery's own lines (the config center logs its outage too)
            return [r for r in caplog.records
                    if r.name == "mesh.control.discovery" and "registry unreachable" in r.message]

        with caplog.at_level(logging.WARNING, logger="mesh.control.discovery"):
            mesh.registry.stop()
            eventually(outage)
            assert len(watch.endpoints) == 2
            assert tally(burst(greeter.SayHello, HELLO, calls=4)) == {"greeter-1": 2, "greeter-2": 2}
            time.sleep(1.0)  # several retries later, the outage is still logged once
            assert len(outage()) == 1
