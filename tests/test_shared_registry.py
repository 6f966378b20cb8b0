"""Learners sharing one registry (a class on one Consul): each mesh with a prefix of its own
registers, discovers and configures only its own services, under names that cannot collide."""

from __future__ import annotations

import dns.resolver
import pytest

from mesh import Mesh, burst
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.registry import Registry

HELLO = HelloRequest(name="Jason")


@pytest.fixture
def shared():
    registry = Registry(reap_min=0.25).start()
    yield registry
    registry.stop()


def _resolve(port: int, name: str) -> list[int]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], port
    return sorted(r.port for r in resolver.resolve(name, "SRV"))


def test_two_learners_on_one_registry_each_see_only_their_own_mesh(shared):
    with Mesh({"greeter": 2}, registry=shared, name="ada", prefix="ada") as ada, \
         Mesh({"greeter": 3}, registry=shared, name="bob", prefix="bob") as bob:
        ada.wait_until_passing()
        bob.wait_until_passing()
        services = ada.consul.agent.services()
        assert sorted(services) == ["ada-greeter-1", "ada-greeter-2",
                                    "bob-greeter-1", "bob-greeter-2", "bob-greeter-3"]
        assert {s["Service"] for s in services.values()} == {"ada-greeter", "bob-greeter"}
        # the mesh's own API keeps the plain names
        assert ada.passing("greeter") == ["greeter-1", "greeter-2"]
        assert sorted(bob.passing("greeter")) == ["greeter-1", "greeter-2", "greeter-3"]
        assert {row["status"] for row in bob.health("greeter")} == {"passing"}
        assert ada.registry_name("greeter") == "ada-greeter"
        assert ada.registry_id("greeter-2") == "ada-greeter-2"
        # calls stay inside each mesh: ada's two replicas answer ada's calls, never bob's three
        served = {r.served_by for r in burst(ada.client("greeter").SayHello, HELLO, calls=12)}
        assert served == {"greeter-1", "greeter-2"}
        ada_ports = sorted(i.port for i in ada.instances())
        assert _resolve(ada.dns_port, "ada-greeter.service.consul") == ada_ports
        # settings of the same service are the learner's own
        ada.config("greeter").set("age", 41)
        ada.config("greeter").wait_for(lambda s: s.age == 41)
        assert bob.config("greeter").current.age != 41
        assert ada.consul.kv.get("ada/config/greeter/age")[1]["Value"] == b"41"
        assert ada.consul.kv.get("config/greeter/age")[1] is None
        # a kill in one mesh is not seen by the other
        bob.kill("greeter-1")
        bob.wait_until(lambda: "greeter-1" not in bob.passing("greeter"), timeout=10)
        assert ada.passing("greeter") == ["greeter-1", "greeter-2"]
        # maintenance through the raw client, by the registry's id
        ada.consul.agent.service.maintenance(ada.registry_id("greeter-1"), True, "upgrade")
        ada.wait_until(lambda: ada.passing("greeter") == ["greeter-2"], timeout=10)
        ada.stop()
        assert sorted(bob.consul.agent.services()) == ["bob-greeter-1", "bob-greeter-2", "bob-greeter-3"]


@pytest.mark.parametrize("prefix", ["Ada", "ada_1", "-ada", "ada-", "a" * 25, "ada.b", "ä"])
def test_a_prefix_must_be_a_dns_label(prefix):
    with pytest.raises(ValueError, match="prefix must be a DNS label"):
        Mesh({}, prefix=prefix)


def test_no_prefix_keeps_the_plain_names():
    with Mesh({"greeter": 1}, name="plain") as mesh:
        mesh.wait_until_passing()
        assert list(mesh.consul.agent.services()) == ["greeter-1"]
        assert mesh.registry_name("greeter") == "greeter" and mesh.registry_id("greeter-1") == "greeter-1"
