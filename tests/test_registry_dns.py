"""The registry's DNS interface through dnspython, and the chapter's client and server run for real."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from lessons import chapter
from mesh.registry import Registry

from .conftest import eventually, free_port


@pytest.fixture
def resolver(registry: Registry) -> dns.resolver.Resolver:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port, r.lifetime = ["127.0.0.1"], registry.dns_port, 3.0
    return r


def _ports(resolver, name: str) -> list[int]:
    return sorted(r.port for r in resolver.resolve(name, "SRV"))


def test_a_and_srv_records_for_passing_instances(client, resolver):
    client.agent.service.register("web", service_id="web-1", address="127.0.0.1", port=8001)
    client.agent.service.register("web", service_id="web-2", address="127.0.0.2", port=8002)
    a = resolver.resolve("web.service.consul", "A")
    assert sorted(r.address for r in a) == ["127.0.0.1", "127.0.0.2"] and a.rrset.ttl == 0
    srv = resolver.resolve("web.service.consul", "SRV")
    assert sorted((r.port, r.priority, r.weight) for r in srv) == [(8001, 1, 1), (8002, 1, 1)]
    targets = {r.target.to_text(): r.port for r in srv}
    assert targets["workbench.node.dc1.consul."] == 8001
    assert targets["7f000002.addr.dc1.consul."] == 8002  # an address unlike the node's
    additional = {rr.name.to_text(): rr[0].address for rr in srv.response.additional}
    assert additional == {"workbench.node.dc1.consul.": "127.0.0.1", "7f000002.addr.dc1.consul.": "127.0.0.2"}
    assert srv.response.flags & dns.flags.AA


def test_tag_rfc2782_datacenter_and_node_names(client, resolver):
    client.agent.service.register("web", service_id="web-1", address="127.0.0.1", port=8001, tags=["v1"])
    client.agent.service.register("web", service_id="web-2", address="127.0.0.1", port=8002, tags=["v2"])
    assert _ports(resolver, "v2.web.service.consul") == [8002]
    assert _ports(resolver, "_web._v1.service.consul") == [8001]
    assert _ports(resolver, "_web._tcp.service.consul") == [8001, 8002]
    assert _ports(resolver, "web.service.dc1.consul") == [8001, 8002]
    assert [r.address for r in resolver.resolve("workbench.node.consul", "A")] == ["127.0.0.1"]
    assert _ports(resolver, "consul.service.consul") == [8300]


def test_unknown_names_are_nxdomain_with_soa(registry, resolver):
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nobody.service.consul", "A")
    query = dns.message.make_query("nobody.service.consul", "A")
    reply = dns.query.udp(query, "127.0.0.1", port=registry.dns_port, timeout=3)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    outside = dns.query.udp(dns.message.make_query("example.com", "A"), "127.0.0.1",
                            port=registry.dns_port, timeout=3)
    assert outside.rcode() == dns.rcode.REFUSED


def test_only_passing_instances_are_answered(client, resolver):
    client.agent.service.register("web", service_id="up", address="127.0.0.1", port=1,
                                  check={"ttl": "60s", "status": "passing"})
    client.agent.service.register("web", service_id="down", address="127.0.0.1", port=2,
                                  check={"ttl": "60s", "status": "critical"})
    assert _ports(resolver, "web.service.consul") == [1]
    client.agent.check.ttl_fail("service:up")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("web.service.consul", "SRV")


def test_udp_answers_hold_three_shuffled_records(client, resolver):
    for i in range(6):
        client.agent.service.register("web", service_id=f"web-{i}", address=f"127.0.0.{i + 1}", port=9000 + i)
    orders = set()
    for _ in range(20):
        answer = resolver.resolve("web.service.consul", "A")
        assert len(answer) == 3
        orders.add(tuple(r.address for r in answer))
    assert len(orders) > 1


@pytest.mark.slow
def test_killed_instance_leaves_dns_answers(client, resolver, tcp_listener):
    client.agent.service.register("web", service_id="web-1", address="127.0.0.1", port=tcp_listener.port,
                                  check={"tcp": f"127.0.0.1:{tcp_listener.port}", "interval": "1s",
                                         "timeout": "1s"})
    eventually(lambda: _ports_or_none(resolver) == [tcp_listener.port])
    tcp_listener.close()
    eventually(lambda: _ports_or_none(resolver) is None, timeout=5)


def _ports_or_none(resolver):
    try:
        return _ports(resolver, "web.service.consul")
    except dns.resolver.NXDOMAIN:
        return None


@pytest.mark.slow
def test_the_chapters_server_and_client_run_as_printed_once_corrected(registry, client):
    port = free_port()
    server = chapter.start_server(registry.http_address, port=port, check_interval="1s")
    try:
        assert "注册服务greeter_server成功" in server.startup_output
        service_id = f"greeter_server-127.0.0.1-{port}"
        assert service_id in client.agent.services()
        eventually(lambda: len(client.health.service("greeter_server", passing=True)[1]) == 1)
        out = chapter.run_client(registry.dns_port)
        assert out.strip() == "Greeter client received: 1234, Jason, 24, ['apple', 'purple']"
    finally:
        output = chapter.stop_server(server)
    assert "开始退出服务greeter_server" in output
    assert client.agent.services() == {}


def test_the_printed_samples_fail_where_the_chapter_is_wrong():
    assert "ServerInterfaceServicer" in chapter.first_error("greeter_server")
    assert chapter.first_error("greeter_client").startswith("IndentationError")
    diff = chapter.diff("greeter_server")
    assert "-            int = 24," in diff and "+            age = 24," in diff


def test_separate_a_and_srv_queries_can_pair_the_wrong_address_and_port(client, registry):
    from lessons.chapter import greeter_client

    for node, address, port in (("host-a", "10.0.0.1", 1001), ("host-b", "10.0.0.2", 2002)):
        client.catalog.register(node, address, service={"Service": "greeter_server", "Port": port},
                                check={"Name": "alive", "Status": "passing"})
    greeter_client.consul_resolver.port = registry.dns_port
    truth = {"10.0.0.1": 1001, "10.0.0.2": 2002}
    pairs = [greeter_client.get_ip_port("greeter_server") for _ in range(40)]
    assert any(truth[ip] != port for ip, port in pairs), "the printed lookup never mismatched"
    fixed = [greeter_client.get_ip_port_from_srv("greeter_server") for _ in range(40)]
    assert all(truth[ip] == port for ip, port in fixed)
