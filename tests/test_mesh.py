"""The mesh on real gRPC servers: spreading, kill and revive (instances in the kernel and as
processes), and clean shutdown."""

from __future__ import annotations

import time

import pytest

from mesh import Mesh, NoHealthyInstances, burst, tally
from mesh.pb.greeter_pb2 import HelloReply, HelloRequest

from .conftest import BOTH_MODES, eventually, listening_ports, thread_names

HELLO = HelloRequest(name="Jason")


@pytest.fixture
def mesh(mode):
    with Mesh({"greeter": 3}, name=f"test-{mode}", mode=mode) as m:
        m.wait_until_passing()
        yield m


def test_chapter_greeter_answers_with_the_chapters_reply(mesh):
    reply = mesh.client("greeter").SayHello(HELLO, timeout=2)
    assert reply == HelloReply(id=1234, name="Jason", age=24, title=["apple", "purple"])


@BOTH_MODES
def test_calls_are_spread_round_robin_over_all_replicas(mesh):
    counts = tally(burst(mesh.client("greeter").SayHello, HELLO, calls=30))
    assert counts == {"greeter-1": 10, "greeter-2": 10, "greeter-3": 10}
    assert sum(i.served for i in mesh.instances("greeter")) == 30


@pytest.mark.slow
@BOTH_MODES
def test_killed_instance_leaves_discovery_and_calls_keep_succeeding(mesh):
    greeter = mesh.client("greeter")
    victim = mesh.kill("greeter-2")
    assert not victim.running
    eventually(lambda: "greeter-2" not in mesh.passing("greeter"), timeout=10)
    records = burst(greeter.SayHello, HELLO, calls=20)
    assert all(r.ok for r in records)
    assert {r.served_by for r in records} == {"greeter-1", "greeter-3"}
    row = next(r for r in mesh.health("greeter") if r["instance"] == "greeter-2")
    assert row["status"] == "critical" and not row["running"]


@pytest.mark.slow
@BOTH_MODES
def test_revived_instance_returns_on_the_same_address(mesh):
    greeter = mesh.client("greeter")
    address = mesh.instance("greeter-1").address
    mesh.kill("greeter-1")
    eventually(lambda: "greeter-1" not in mesh.passing("greeter"), timeout=10)
    mesh.revive("greeter-1")
    assert mesh.instance("greeter-1").address == address
    eventually(lambda: "greeter-1" in mesh.passing("greeter"), timeout=10)
    counts = tally(burst(greeter.SayHello, HELLO, calls=30))
    assert counts == {"greeter-1": 10, "greeter-2": 10, "greeter-3": 10}
    assert [e.action for e in mesh.events][-2:] == ["kill", "revive"]


@BOTH_MODES
def test_no_passing_instance_is_unavailable(mesh):
    for instance in mesh.instances("greeter"):
        mesh.kill(instance)
    greeter = mesh.client("greeter")
    eventually(lambda: mesh.passing("greeter") == [], timeout=10)
    with pytest.raises(NoHealthyInstances) as err:
        greeter.SayHello(HELLO)
    assert err.value.code().name == "UNAVAILABLE"


@pytest.mark.slow
def test_start_and_stop_leave_no_ports_threads_or_registrations():
    ports_before, threads_before = listening_ports(), thread_names()
    mesh = Mesh({"greeter": 3}, name="leak-check")
    mesh.wait_until_passing()
    burst(mesh.client("greeter").SayHello, HELLO, calls=9)
    assert len(listening_ports() - ports_before) == 4  # 3 replicas + the registry
    mesh.stop()
    assert listening_ports() == ports_before
    # grpc's polling threads end shortly after their server or channel closes.
    eventually(lambda: thread_names() <= threads_before, timeout=5)


@pytest.mark.slow
def test_recreating_a_mesh_of_the_same_name_stops_the_previous_one():
    ports_before = listening_ports()
    first = Mesh({"greeter": 2}, name="rerun")
    first_ports = {i.port for i in first.instances()}
    second = Mesh({"greeter": 2}, name="rerun")  # what re-running a notebook cell does
    try:
        assert first.stopped and not second.stopped
        assert not first_ports & listening_ports()
        assert len(listening_ports() - ports_before) == 3
    finally:
        second.stop()
    assert listening_ports() == ports_before


def test_mesh_on_an_existing_registry_deregisters_on_stop(registry, client):
    with Mesh({"greeter": 2}, registry=registry, name="shared") as m:
        m.wait_until_passing()
        assert sorted(client.agent.services()) == ["greeter-1", "greeter-2"]
    assert client.agent.services() == {}
    assert registry.running  # not the mesh's to stop


def test_bad_requests_raise_clear_errors_and_leak_nothing():
    ports_before = listening_ports()
    with pytest.raises(KeyError, match="unknown service 'nope'"):
        Mesh({"nope": 1}, name="bad")
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        Mesh({"greeter": 0}, name="bad")
    assert listening_ports() == ports_before
    with Mesh({"greeter": 1}, name="bad") as m, pytest.raises(KeyError, match="no instance"):
        m.kill("greeter-9")


def test_the_greeters_cpu_setting_burns_that_long_per_call():
    with Mesh({"greeter": 1}, name="cpu-burn") as mesh:
        mesh.wait_until_passing()
        hello = mesh.client("greeter").SayHello
        mesh.config("greeter").set("cpu_ms", 40)
        mesh.config("greeter").wait_for(lambda s: s.cpu_ms == 40)
        started = time.perf_counter()
        hello(HelloRequest(name="Jason"), timeout=5)
        assert time.perf_counter() - started >= 0.04
        with pytest.raises(ValueError, match="not a number"):
            mesh.config("greeter").set("cpu_ms", "lots")
