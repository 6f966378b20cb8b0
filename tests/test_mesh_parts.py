"""The parts a Mesh composes, each on its own: the names and keys it writes once, its roster, its
config center, its shared state, the placements' common interface, and the plumbing every server
and loop thread of the mesh is built with."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import socket

import grpc
import pytest

from mesh.background import LoopThread
from mesh.client import code_of, listen, new_server
from mesh.control import ConfigCenter, MeshKeys, PrefixWatch, SharedStatePublisher, policy_config
from mesh.core import KernelPlacement, Placement, Roster, SharedState
from mesh.interceptors import NoWorkerInTime, WorkerLimit
from mesh.pb import greeter_pb2
from mesh.policies import Fallback, breaker_name, instance_id, parse_breaker_name, service_of
from mesh.processes import ProcessPlacement, SpawnSpec
from mesh.registry import Registry
from mesh.services import GREETER, KINDS

from .conftest import eventually


def test_instance_and_breaker_names_are_built_and_read_back():
    assert instance_id("greeter", 2) == "greeter-2"
    assert [service_of(c) for c in ("orders-1", "my-shop-12", "client", "gateway", "greeter-x", "-1")] == [
        "orders", "my-shop", "client", "gateway", "greeter-x", "-1"]
    assert breaker_name("orders-1", "payments") == "orders-1->payments"
    assert breaker_name("client", "greeter", "SayHello") == "client->greeter.SayHello"
    assert parse_breaker_name(breaker_name("orders-1", "payments")) == ("orders-1", "payments")
    assert [parse_breaker_name(n) for n in ("orders-1", "->payments", "orders-1->")] == [None, None, None]


def test_the_keys_of_a_mesh_with_and_without_a_prefix():
    plain, ada = MeshKeys(), MeshKeys("ada")
    assert (plain.root("config"), ada.root("config")) == ("config", "ada/config")
    assert (plain.access("fraud"), ada.access("fraud")) == ("access/fraud", "ada/access/fraud")
    assert ada.fallback("fraud", "Score") == "ada/fallbacks/fraud/Score"
    assert plain.faults("greeter-1") == ("faults/greeter-1", "faults-applied/greeter-1")
    assert ada.faults("greeter-1") == ("ada/faults/ada-greeter-1", "ada/faults-applied/ada-greeter-1")
    assert ada.local_name(ada.registry_name("greeter-1")) == "greeter-1" == plain.registry_name("greeter-1")
    assert (policy_config("fraud"), policy_config("fraud", "Score")) == ("policy.fraud", "policy.fraud.Score")


@dataclasses.dataclass
class _Replica:
    kind: object
    number: int
    version: str = "v1"
    running: bool = True

    @property
    def id(self) -> str:
        return instance_id(self.kind.name, self.number)

    @property
    def service(self) -> str:
        return self.kind.name


def test_the_roster_numbers_finds_and_counts_instances():
    roster = Roster()
    assert list(roster.next_numbers(GREETER, 3, "v1")) == [1, 2, 3]
    for number in (1, 2, 3):
        roster.add(_Replica(GREETER, number, "v1" if number < 3 else "v2", running=number != 2))
    assert list(roster.next_numbers(GREETER, 2, "v2")) == [4, 5]  # after the ones it has
    assert roster.get("greeter-3") is roster.get(roster.get("greeter-3"))
    assert roster.versions("greeter") == {"v1": ["greeter-1", "greeter-2"], "v2": ["greeter-3"]}
    assert roster.counts() == {"greeter": 2}
    hello = dataclasses.replace(GREETER, name="hello")
    roster.add(_Replica(hello, 1))
    assert roster.kind_of("hello") is hello and roster.kind_of("orders") is KINDS["orders"]
    roster.log("kill", roster.get("greeter-2"))
    assert [(e.action, e.instance) for e in roster.events] == [("kill", "greeter-2")]
    with pytest.raises(KeyError, match=r"no instance 'greeter-9'; the mesh has \['greeter-1', "):
        roster.get("greeter-9")
    with pytest.raises(KeyError, match="no stub known for service 'nope'"):
        roster.kind_of("nope")
    with pytest.raises(ValueError, match="replicas must be at least 1, got 0"):
        roster.next_numbers(GREETER, 0, "v1")
    with pytest.raises(ValueError, match="version must be a DNS-friendly label"):
        roster.next_numbers(GREETER, 1, "v 2")


@pytest.fixture
def registry():
    with Registry(dns_port=None) as running:
        yield running


def test_the_config_center_makes_each_setting_once_and_none_after_it_closes(registry):
    configs = ConfigCenter(registry.client(), "ada/config", owner="the mesh 'ada'")
    policy = configs.get("policy.greeter", GREETER.settings)
    assert configs.get("policy.greeter", GREETER.settings) is policy
    assert configs.find("policy.orders") is None and configs.find("policy.greeter") is policy
    policy.set("age", 30)
    assert registry.client().kv.get("ada/config/policy.greeter/age")[1]["Value"] == b"30"
    configs.close()
    with pytest.raises(RuntimeError, match="the mesh 'ada' has stopped"):
        configs.get("policy.orders", GREETER.settings)
    assert configs.get("policy.greeter", GREETER.settings) is policy  # what it has, it still gives
    configs.stop()


def test_shared_state_is_adopted_whole_and_followed_from_the_kv_store(registry):
    client, keys = registry.client(), MeshKeys("ada")
    kernel = SharedState(_Identities())
    follower = SharedState(_Identities())
    held = follower.fallbacks_of("fraud")  # what a caller's stack holds: changed in place
    said: list[str] = []
    publisher = SharedStatePublisher(client, keys)
    publisher.access_rule("fraud", ["payments"])
    publisher.access_rule("orders", ["frontend"])
    publisher.fallback("fraud", "Score", Fallback(static=greeter_pb2.HelloReply(name="cached")))
    watches = follower.follow(client, keys, said.append)
    try:
        assert follower.identities.rules() == {"fraud": frozenset({"payments"}),
                                               "orders": frozenset({"frontend"})}
        assert held["Score"].static.name == "cached" and follower.fallbacks_of("fraud") is held
        publisher.access_rule("orders", None)  # lifted: only fraud keeps a rule
        client.kv.put(keys.access("inventory"), "not json")  # unreadable: lets nobody in, and says so
        eventually(lambda: set(follower.identities.rules()) == {"fraud", "inventory"})
        assert follower.identities.rule("inventory") == frozenset()
        assert any("inventory" in s for s in said)
        publisher.forget()
        eventually(lambda: follower.identities.rules() == {} and held == {})
    finally:
        for watch in watches:
            watch.stop()
    kernel.set_fallback("fraud", "Score", Fallback(cache=True))
    kernel.allow_callers("fraud", ["payments"])
    assert kernel.fallbacks_of("fraud")["Score"].cache and kernel.identities.rule("fraud") == {"payments"}
    assert isinstance(watches[0], PrefixWatch)


class _Identities:
    """The rules part of :class:`mesh.client.Identities` (no signing needed here)."""

    def __init__(self):
        self._rules: dict[str, frozenset[str]] = {}

    def allow_callers(self, service, callers):
        if callers is None:
            self._rules.pop(service, None)
        else:
            self._rules[service] = frozenset(callers)

    def rule(self, service):
        return self._rules.get(service)

    def rules(self):
        return dict(self._rules)


@pytest.mark.parametrize("placement", [KernelPlacement, ProcessPlacement])
def test_each_placement_has_the_whole_interface(placement):
    wanted = {name for name, value in vars(Placement).items()
              if inspect.isfunction(value) and not name.startswith("_")}
    assert wanted <= {name for name, value in vars(placement).items() if callable(value)}
    assert placement.name in ("kernel", "processes")


def test_a_spawn_spec_puts_the_secret_nowhere_on_the_command_line():
    spec = SpawnSpec("127.0.0.1:8500", "shop", secret="s3cret", prefix="ada", seed=7, otlp="127.0.0.1:4317")
    command = spec.command(KINDS["orders"], 2, 0, "v2", 8, advertise="10.0.0.1:9000", host="10.0.0.2")
    assert command[command.index("-m") + 1:][:3] == ["mesh.serve", "orders", "2"]
    for flag, value in (("--registry", "127.0.0.1:8500"), ("--mesh", "shop"), ("--prefix", "ada"),
                        ("--seed", "7"), ("--otlp", "127.0.0.1:4317"), ("--version", "v2"),
                        ("--max-workers", "8"), ("--advertise", "10.0.0.1:9000"), ("--host", "10.0.0.2")):
        assert command[command.index(flag) + 1] == value
    assert not any("s3cret" in part for part in command)
    bare = SpawnSpec("127.0.0.1:8500", "shop", secret="x").command(GREETER, 1, 0, "v1", 16)
    assert not {"--prefix", "--seed", "--otlp", "--advertise", "--host"} & set(bare)


def test_a_server_never_shares_its_port_and_says_why_it_cannot_listen():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool_a, ThreadPoolExecutor(1) as pool_b:
        first, second = new_server(pool_a), new_server(pool_b)
        port = listen(first)
        first.start()
        try:
            with pytest.raises(OSError, match=rf"greeter-2 cannot listen on 127.0.0.1:{port}: "):
                listen(second, "127.0.0.1", port, "greeter-2")
        finally:
            first.stop(None).wait()
            second.stop(None)
    with socket.socket() as probe:  # the port is free again once the server stopped
        probe.bind(("127.0.0.1", port))


def test_a_loop_thread_reports_a_failed_start_and_stops_from_any_thread():
    served: list[str] = []

    async def serve(ready, stopping: asyncio.Event) -> None:
        served.append("up")
        ready()
        await stopping.wait()
        served.append("down")

    async def refuse(ready, stopping) -> None:
        raise OSError("port in use")

    loop = LoopThread(serve, "test-loop")
    loop.start()
    assert loop.running and served == ["up"]
    with pytest.raises(RuntimeError, match="already started"):
        loop.start()
    loop.stop()
    loop.stop()  # twice is harmless
    assert not loop.running and served == ["up", "down"]
    loop.start()  # and it starts again
    loop.stop()
    failing = LoopThread(refuse, "test-refused")
    with pytest.raises(OSError, match="port in use"):
        failing.start()
    assert not failing.running


def test_a_worker_limit_refuses_a_call_whose_deadline_passes_while_it_waits():
    waited: list[float] = []
    limit = WorkerLimit(1, wait=waited.append)
    assert limit.run(lambda: "served", 0.25, None) == "served" and waited == [0.25]

    def nested():  # the only worker is busy while a second call waits for it
        with pytest.raises(NoWorkerInTime):
            limit.run(lambda: "never", 0.0, 0.05)
        return "first"

    assert limit.run(nested, 0.0, None) == "first"
    assert waited == [0.25]  # no service time is spent on a call that got no worker, nor on 0


def test_a_status_code_is_read_one_way():
    class Failed(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

    codes = [code_of(None), code_of(Failed()), code_of(RuntimeError("none"))]
    assert codes == ["OK", "UNAVAILABLE", "UNKNOWN"]
