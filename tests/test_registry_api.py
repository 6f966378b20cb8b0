"""The embedded registry through py-consul and raw HTTP: registration, checks, errors, blocking."""

from __future__ import annotations

import json
import time
from concurrent import futures

import consul
import grpc
import pytest
import requests
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh.registry import Registry

from .conftest import eventually


def _statuses(c: consul.Consul, name: str) -> dict[str, str]:
    _, entries = c.health.service(name)
    return {e["Service"]["ID"]: e["Checks"][-1]["Status"] for e in entries}


def test_agent_self_and_leader_look_like_consul(client):
    me = client.agent.self()
    assert me["Config"]["Datacenter"] == "dc1"
    assert me["Config"]["NodeName"] == "workbench"
    assert me["Member"]["Status"] == 1
    assert client.status.leader().endswith(":8300")


def test_register_lists_and_deregister_removes(client):
    assert client.agent.service.register(
        "greeter", service_id="greeter-a", address="127.0.0.1", port=5001,
        tags=["v1"], meta={"zone": "a"}, weights={"Passing": 3, "Warning": 1},
    )
    service = client.agent.services()["greeter-a"]
    assert service["Service"] == "greeter"
    assert (service["Address"], service["Port"]) == ("127.0.0.1", 5001)
    assert service["Tags"] == ["v1"] and service["Meta"] == {"zone": "a"}
    assert service["Weights"] == {"Passing": 3, "Warning": 1}
    assert client.catalog.services()[1] == {"consul": [], "greeter": ["v1"]}

    assert client.agent.service.deregister("greeter-a") is True
    assert client.agent.services() == {}
    assert client.catalog.services()[1] == {"consul": []}  # the agent's own service stays


def test_service_without_checks_is_passing(client):
    client.agent.service.register("plain", service_id="plain-1", port=7000)
    _, passing = client.health.service("plain", passing=True)
    assert [e["Service"]["ID"] for e in passing] == ["plain-1"]
    assert passing[0]["Checks"][0]["CheckID"] == "serfHealth"


def test_passing_filter_uses_real_tcp_checks(client, tcp_listener):
    dead_port = 1  # nothing listens on port 1 on loopback
    for sid, port in (("up", tcp_listener.port), ("down", dead_port)):
        client.agent.service.register(
            "web", service_id=sid, address="127.0.0.1", port=port,
            check=consul.Check.tcp("127.0.0.1", port, "1s", timeout="1s"),
        )
    # Checks start critical, as in Consul, until their first run.
    assert _statuses(client, "web") == {"up": "critical", "down": "critical"}
    eventually(lambda: _statuses(client, "web") == {"up": "passing", "down": "critical"})
    _, passing = client.health.service("web", passing=True)
    assert [e["Service"]["ID"] for e in passing] == ["up"]
    check = passing[0]["Checks"][-1]
    assert check["Output"] == f"TCP connect 127.0.0.1:{tcp_listener.port}: Success"
    assert check["Type"] == "tcp" and check["Interval"] == "1s"
    _, everyone = client.health.service("web")
    down = next(e for e in everyone if e["Service"]["ID"] == "down")["Checks"][-1]
    assert down["Output"] == "dial tcp 127.0.0.1:1: connect: connection refused"


@pytest.mark.slow
def test_killed_listener_turns_critical_within_interval_plus_timeout(client, tcp_listener):
    interval, timeout = 1.0, 1.0
    client.agent.service.register(
        "web", service_id="w1", address="127.0.0.1", port=tcp_listener.port,
        check=consul.Check.tcp("127.0.0.1", tcp_listener.port, "1s", timeout="1s"),
    )
    eventually(lambda: _statuses(client, "web") == {"w1": "passing"})
    tcp_listener.close()
    elapsed = eventually(lambda: _statuses(client, "web") == {"w1": "critical"}, timeout=10)
    # A spec bound (Consul's check cadence), not a speed measurement: 0.5 s covers scheduling.
    assert elapsed <= interval + timeout + 0.5


def test_grpc_check_follows_the_health_service(client):
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        servicer.set("Greeter", health_pb2.HealthCheckResponse.SERVING)
        client.agent.service.register(
            "greeter", service_id="g1", address="127.0.0.1", port=port,
            check=consul.Check.grpc(f"127.0.0.1:{port}/Greeter", "1s", timeout="1s"),
        )
        eventually(lambda: _statuses(client, "greeter") == {"g1": "passing"})
        servicer.set("Greeter", health_pb2.HealthCheckResponse.NOT_SERVING)
        eventually(lambda: _statuses(client, "greeter") == {"g1": "critical"})
        _, entries = client.health.service("greeter")
        assert entries[0]["Checks"][-1]["Output"] == (
            f"gRPC 127.0.0.1:{port}/Greeter serving status: NOT_SERVING")
    finally:
        server.stop(None).wait()


def test_unknown_service_is_an_empty_list(client):
    index, entries = client.health.service("nobody-registered-this")
    assert entries == [] and int(index) >= 1


def test_malformed_json_is_400_with_reason_and_changes_nothing(registry, client):
    client.agent.service.register("keep", service_id="keep-1", port=1234)
    before_services = client.agent.services()
    before_index, _ = client.catalog.services()
    url = f"{registry.url}/v1/agent/service/register"
    resp = requests.put(url, data=b'{"Name": "broken", "Port": ', timeout=5)
    assert resp.status_code == 400
    assert resp.text.startswith("Request decode failed:")
    assert client.agent.services() == before_services
    assert client.catalog.services()[0] == before_index


@pytest.mark.parametrize(("body", "message"), [
    ({"Port": 80}, "Missing service name"),
    ({"Name": "x", "Port": "80"}, "Service.Port: expected number"),
    ({"Name": "x", "Tags": "a"}, "Service.Tags: expected array"),
    ({"Name": "x", "Check": {"TCP": "127.0.0.1:1"}}, "Interval must be > 0"),
    ({"Name": "x", "Check": {"TCP": "127.0.0.1:1", "Interval": "soon"}}, "invalid duration"),
])
def test_invalid_registrations_are_rejected_whole(registry, client, body, message):
    resp = requests.put(f"{registry.url}/v1/agent/service/register", data=json.dumps(body), timeout=5)
    assert resp.status_code == 400
    assert message in resp.text
    assert client.agent.services() == {}


@pytest.mark.parametrize("path", ["/v1/agent/service/register", "/v1/agent/check/register"])
def test_a_script_check_over_http_is_refused_as_consul_refuses_it(registry, client, path):
    check = {"Name": "x", "Args": ["true"], "Interval": "1s"}
    body = {"Name": "x", "Check": check} if "service" in path else check
    resp = requests.put(f"{registry.url}{path}", json=body, timeout=5)
    assert (resp.status_code, resp.text) == (500, "Scripts are disabled on this agent from remote calls; "
                                                  "to enable, configure 'enable_script_checks' to true")
    assert client.agent.services() == {} and client.agent.checks() == {}


def test_deregister_unknown_id_is_404(registry):
    resp = requests.put(f"{registry.url}/v1/agent/service/deregister/ghost", timeout=5)
    assert resp.status_code == 404
    assert 'Unknown service ID "ghost"' in resp.text


def test_wrong_method_is_405(registry):
    resp = requests.get(f"{registry.url}/v1/agent/service/register", timeout=5)
    assert resp.status_code == 405
    assert resp.text == "method GET not allowed"


def test_snake_case_and_lowercase_keys_are_accepted(registry, client):
    body = {"name": "api", "id": "api-1", "port": 8080, "enable_tag_override": True,
            "check": {"ttl": "30s", "status": "passing", "deregister_critical_service_after": "1m"}}
    resp = requests.put(f"{registry.url}/v1/agent/service/register", data=json.dumps(body), timeout=5)
    assert resp.status_code == 200
    assert client.agent.services()["api-1"]["EnableTagOverride"] is True
    assert _statuses(client, "api") == {"api-1": "passing"}


def test_blocking_query_returns_when_the_service_changes(client):
    index, _ = client.health.service("greeter")
    start = time.monotonic()
    with futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.health.service, "greeter", index=index, wait="20s")
        time.sleep(0.3)
        assert not waiting.done()
        client.agent.service.register("greeter", service_id="g1", port=1)
        new_index, entries = waiting.result(timeout=5)
    assert time.monotonic() - start < 10
    assert int(new_index) > int(index)
    assert [e["Service"]["ID"] for e in entries] == ["g1"]


def test_blocking_query_times_out_with_same_index(client):
    index, _ = client.health.service("greeter")
    start = time.monotonic()
    same, _ = client.health.service("greeter", index=index, wait="300ms")
    assert same == index
    assert time.monotonic() - start >= 0.3


def test_changes_to_other_services_do_not_wake_a_watch(client):
    index, _ = client.health.service("greeter")
    with futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.health.service, "greeter", index=index, wait="1s")
        time.sleep(0.2)
        client.agent.service.register("other", service_id="o1", port=1)
        time.sleep(0.2)
        assert not waiting.done()
        assert waiting.result(timeout=5)[0] == index


def test_stop_ends_held_queries_at_once():
    registry = Registry().start()
    c = registry.client()
    index, _ = c.health.service("greeter")
    with futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(c.health.service, "greeter", index=index, wait="60s")
        time.sleep(0.2)
        start = time.monotonic()
        registry.stop()
        waiting.result(timeout=10)
    assert time.monotonic() - start < 5
    c.http.session.close()


def test_bind_error_is_raised_by_start(registry):
    with pytest.raises(OSError):
        Registry(http_port=registry.http_port).start()


def test_an_index_from_the_future_is_held_then_answered_with_the_real_one(client):
    """As in Consul: never a lower index for an index the registry issued (see the churn test), but
    an index it never issued (say, from before a restart) is held for its wait and answered with
    the registry's own, lower index, which tells the client to start over."""
    index, _ = client.health.service("greeter")
    start = time.monotonic()
    answered, _ = client.health.service("greeter", index=int(index) + 1000, wait="300ms")
    assert time.monotonic() - start >= 0.3
    assert answered == index
