"""The registry against hostile input and where a real Consul client would notice a difference:
deep JSON, out-of-range indexes, addresses DNS cannot put in an A record, labels that are not
UTF-8, unknown datacenters and peers, consistency flags, node-meta filters, slow clients, and
watchers of a big prefix woken all at once."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

import consul
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import requests

from mesh.registry import Indexes, KVStore, Registry

DEEP = b"[" * 100_000 + b"]" * 100_000
CONFLICT = "?consistent, conflicting semantics."


@pytest.mark.parametrize("path", ["/v1/agent/service/register", "/v1/catalog/register",
                                  "/v1/session/create", "/v1/agent/check/register"])
def test_deeply_nested_json_is_a_400_not_a_500(registry, path):
    answer = requests.put(f"{registry.url}{path}", data=DEEP, timeout=10)
    assert (answer.status_code, answer.text) == (400, "Request decode failed: nested too deep")


@pytest.mark.parametrize(("index", "status", "body"), [
    (str(2**64), 400, "Invalid index"), (str(2**64 - 1), 404, ""), ("-1", 400, "Invalid index"),
    ("1e3", 400, "Invalid index"), ("٣", 400, "Invalid index"),  # an Arabic-Indic digit: int() takes it
])
def test_an_index_is_a_64_bit_unsigned_integer_as_consul_parses_it(registry, index, status, body):
    answer = requests.get(f"{registry.url}/v1/kv/missing", params={"index": index, "wait": "1ms"}, timeout=10)
    assert (answer.status_code, answer.text) == (status, body)


def test_a_bad_wait_is_refused_with_consuls_words(registry):
    answer = requests.get(f"{registry.url}/v1/kv/x", params={"index": "1", "wait": "soon"}, timeout=10)
    assert (answer.status_code, answer.text) == (400, "Invalid wait time")


def _ask(registry: Registry, name: str | dns.name.Name, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=registry.dns_port, timeout=3)


def _records(reply: dns.message.Message) -> list[tuple[str, str]]:
    return sorted((dns.rdatatype.to_text(rrset.rdtype), r.to_text()) for rrset in reply.answer for r in rrset)


def test_dns_answers_ipv6_as_aaaa_and_a_hostname_as_a_cname(registry, client):
    """One instance with a hostname or an IPv6 address made every A answer for the service fail:
    the registry sent no reply at all."""
    client.agent.service.register("db", service_id="db-1", address="127.0.0.9", port=5432)
    client.agent.service.register("db", service_id="db-2", address="::1", port=5433)
    client.agent.service.register("db", service_id="db-3", address="db.example.com", port=5434)
    assert _records(_ask(registry, "db.service.consul", "A")) == [("A", "127.0.0.9")]
    assert _records(_ask(registry, "db.service.consul", "AAAA")) == [("AAAA", "::1")]
    srv = _ask(registry, "db.service.consul", "SRV")
    targets = sorted(r.target.to_text() for rrset in srv.answer for r in rrset)
    assert targets == ["00000000000000000000000000000001.addr.dc1.consul.", "db.example.com.",
                       "workbench.node.dc1.consul."] or "7f000009.addr.dc1.consul." in targets
    extra = sorted((dns.rdatatype.to_text(rrset.rdtype), rrset[0].to_text()) for rrset in srv.additional)
    assert ("AAAA", "::1") in extra and all(value != "db.example.com." for _, value in extra)
    client.agent.service.register("legacy", service_id="legacy-1", address="mainframe.example.com", port=23)
    assert _records(_ask(registry, "legacy.service.consul", "A")) == [("CNAME", "mainframe.example.com.")]


def test_a_label_that_is_not_utf8_gets_a_reply(registry):
    name = dns.name.Name([b"\xff\xfe", b"service", b"consul", b""])
    reply = _ask(registry, name, "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN


def test_an_unknown_datacenter_is_refused_as_consul_refuses_it(client):
    client.kv.put("k", "v")
    for call in (lambda: client.catalog.services(dc="dc2"), lambda: client.health.service("x", dc="dc2"),
                 lambda: client.kv.get("k", dc="dc2"), lambda: client.session.list(dc="dc2"),
                 lambda: client.kv.put("k", "w", dc="dc2")):
        with pytest.raises(consul.ConsulException, match="500 No path to datacenter"):
            call()
    assert client.kv.get("k")[1]["Value"] == b"v"  # the refused write changed nothing
    assert client.catalog.services(dc="dc1")[1] == {"consul": []}
    assert client.agent.services() == {}  # the agent API is local: it has no ?dc


def test_consistency_modes_are_checked_and_reported(registry):
    def get(**query):
        return requests.get(f"{registry.url}/v1/catalog/services", params=query, timeout=10)

    assert get().headers["X-Consul-Effective-Consistency"] == "leader"
    assert get(stale="").headers["X-Consul-Effective-Consistency"] == "stale"
    assert get(consistent="").headers["X-Consul-Effective-Consistency"] == "consistent"
    assert get(cached="").headers["X-Cache"] == "MISS"
    both = get(stale="", consistent="")
    assert (both.status_code, both.text) == (400, f"Cannot specify ?stale with {CONFLICT}")
    cached = get(cached="", consistent="")
    assert (cached.status_code, cached.text) == (400, f"Cannot specify ?cached with {CONFLICT}")


def test_node_meta_filters_and_an_unknown_peer_sees_nothing(registry, client):
    client.agent.service.register("web", service_id="web-1", port=80)
    for rack, service in (("2", "web"), ("3", "db")):  # py-consul sends node_meta as a query; Consul: body
        meta = {"env": "prod", "rack": rack}
        node = {"Node": f"rack-{rack}", "Address": f"10.0.0.{rack}", "NodeMeta": meta,
                "Service": {"Service": service, "ID": f"{service}-{rack}", "Port": 80}}
        assert requests.put(f"{registry.url}/v1/catalog/register", json=node, timeout=10).json() is True
    assert client.catalog.services(node_meta={"env": "prod"})[1] == {"db": [], "web": []}
    assert client.catalog.services()[1] == {"consul": [], "db": [], "web": []}
    assert client.catalog.services(node_meta={"env": "prod", "rack": "2"})[1] == {"web": []}
    assert [n["Node"] for n in client.catalog.nodes(node_meta={"rack": "3"})[1]] == ["rack-3"]
    assert [s["ServiceID"] for s in client.catalog.service("web", node_meta={"env": "prod"})[1]] == ["web-2"]
    prod = client.health.service("web", node_meta={"env": "prod"})[1]
    assert [e["Service"]["ID"] for e in prod] == ["web-2"]
    assert sorted(e["Service"]["ID"] for e in client.health.service("web")[1]) == ["web-1", "web-2"]
    assert client.catalog.services(node_meta={"env": "dev"})[1] == {}
    peered = requests.get(f"{registry.url}/v1/catalog/services", params={"peer": "elsewhere"}, timeout=10)
    assert peered.json() == {} and int(peered.headers["X-Consul-Index"]) > 0
    assert client.health.service("web", peer="elsewhere")[1] == []


def test_an_empty_value_is_null_as_in_consul(client):
    client.kv.put("flag", None)
    client.kv.put("empty", "")
    assert client.kv.get("flag")[1]["Value"] is None and client.kv.get("empty")[1]["Value"] is None


def test_tombstones_are_pruned_after_their_ttl_and_prefix_indexes_never_go_backwards():
    now = [0.0]
    kv = KVStore(Indexes(), lambda: now[0], tombstone_ttl=60.0)
    for n in range(1000):
        kv.put(f"jobs/{n}", b"x")
    kv.put("config/a", b"1")
    kv.delete("jobs/", recurse=True)
    kv.put("jobs/keep", b"y")
    before = kv.index_for("jobs/", recurse=True)
    now[0] = 59.999
    assert kv.prune_tombstones(now[0]) == 0 and len(kv.tombstones) == 1000
    now[0] = 60.0  # exactly the TTL: pruned
    assert kv.prune_tombstones(now[0]) == 1000 and kv.tombstones == {}
    assert kv.index_for("jobs/", recurse=True) >= before  # the pruned delete's index is a floor
    assert kv.index_for("config/a", recurse=False) == 1001  # a key's own index is untouched
    assert [e.key for e in kv.matching("jobs/", recurse=True)] == ["jobs/keep"]


def test_a_slow_client_is_cut_off_but_a_long_blocking_query_is_not():
    with Registry(dns_port=None, header_timeout=0.5) as registry:
        with socket.create_connection(("127.0.0.1", registry.http_port), timeout=10) as slow:
            slow.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n")  # never finished
            assert slow.recv(1024) == b""
        answer = requests.get(f"{registry.url}/v1/kv/x", params={"index": "1", "wait": "1.5s"}, timeout=10)
        assert answer.status_code == 404 and answer.headers["X-Consul-Index"]


def test_a_client_gone_in_the_middle_of_its_body_writes_nothing_and_logs_nothing(caplog):
    """A process killed while it sends a write (a crash in process mode) must not leave a half
    value behind, nor a traceback in the notebook from the registry's HTTP server."""
    with Registry(dns_port=None) as registry:
        caplog.set_level(logging.ERROR)
        with socket.create_connection(("127.0.0.1", registry.http_port), timeout=10) as dying:
            dying.sendall(b"PUT /v1/kv/half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            dying.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
        time.sleep(0.3)
        assert requests.get(f"{registry.url}/v1/kv/half", timeout=5).status_code == 404
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.slow
def test_a_hundred_watchers_of_a_big_prefix_all_see_the_write_that_woke_them(registry, client):
    for n in range(2000):
        client.kv.put(f"fleet/{n:04}", f"v{n}")
    index, _ = client.kv.get("fleet/", recurse=True)
    answers: list = []

    def watch():
        c = registry.client()
        answers.append(c.kv.get("fleet/", recurse=True, index=index, wait="20s"))
        c.http.session.close()

    watchers = [threading.Thread(target=watch) for _ in range(100)]
    for w in watchers:
        w.start()
    client.kv.put("fleet/0007", "changed")
    for w in watchers:
        w.join(30)
    assert len(answers) == 100
    assert {int(a[0]) for a in answers} == {int(index) + 1}
    assert all(len(a[1]) == 2000 and a[1][7]["Value"] == b"changed" for a in answers)
    client.kv.put("fleet/0008", "again")  # the cached answer is not served after a change
    assert client.kv.get("fleet/", recurse=True)[1][8]["Value"] == b"again"


def test_agent_self_has_consuls_sections(client):
    me = client.agent.self()
    assert set(me) >= {"Config", "DebugConfig", "Coord", "Member", "Stats", "Meta", "xDS"}
    consul_stats = me["Stats"]["consul"]
    assert consul_stats["leader"] == "true" and consul_stats["leader_addr"] == client.status.leader()
    assert consul_stats["server"] == "true" and consul_stats["known_datacenters"] == "1"
    assert all(isinstance(v, str) for section in me["Stats"].values() for v in section.values())
    client.agent.check.register("beat", consul.Check.ttl("10s"))
    assert client.agent.self()["Stats"]["agent"]["check_ttls"] == "1"
    assert me["DebugConfig"]["NodeName"] == "workbench" and me["xDS"]["Ports"] == {"Plaintext": -1, "TLS": -1}


def test_locks_with_a_session_that_does_not_exist_as_consul_answers(client):
    ghost = "00000000-0000-0000-0000-000000000000"
    assert client.kv.put("lock", "me", release=ghost) is False  # a release just fails
    with pytest.raises(consul.ConsulException, match=f'500 Invalid session "{ghost}"'):
        client.kv.put("lock", "me", acquire=ghost)
    assert client.kv.get("lock")[1] is None  # neither wrote anything


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/v1/connect/ca/roots", 500, "Connect must be enabled in order to use this endpoint"),
    ("/v1/connect/intentions", 500, "Connect must be enabled in order to use this endpoint"),
    ("/v1/agent/connect/ca/leaf/web", 500, "Connect must be enabled in order to use this endpoint"),
    ("/v1/discovery-chain/web", 500, "Connect must be enabled in order to use this endpoint"),
    ("/v1/catalog/connect/web", 200, "[]"), ("/v1/health/connect/web", 200, "[]"),
    ("/v1/peerings", 200, "[]"),
    ("/v1/peering/east", 404, 'Peering not found for "east"'),
    ("/v1/acl/tokens", 401, "ACL support disabled"),
])
def test_connect_and_peering_answer_as_an_agent_without_them(registry, path, status, body):
    answer = requests.get(f"{registry.url}{path}", timeout=10)
    assert (answer.status_code, answer.text) == (status, body)
    if status == 200:
        assert int(answer.headers["X-Consul-Index"]) >= 1


def test_each_check_of_a_multi_check_service_starts_in_the_status_it_was_given(registry, client):
    service = {"Name": "multi", "ID": "multi-1", "Port": 1, "Checks": [
        {"Name": "a", "TTL": "10s", "Status": "passing"}, {"Name": "b", "TTL": "10s", "Status": "warning"},
        {"Name": "c", "TTL": "10s"}]}
    registered = requests.put(f"{registry.url}/v1/agent/service/register", json=service, timeout=10)
    assert registered.status_code == 200
    statuses = {c["Name"]: c["Status"] for c in client.health.checks("multi")[1]}
    assert statuses == {"a": "passing", "b": "warning", "c": "critical"}  # Consul's default: critical
    assert client.health.service("multi", passing=True)[1] == []  # one check not passing: not passing


def test_dns_can_answer_warning_instances_when_only_passing_is_off():
    with Registry(dns_port=0, dns_only_passing=False) as lenient:
        c = lenient.client()
        for n, state in enumerate(("passing", "warning", "critical"), start=1):
            c.agent.service.register("web", service_id=state, address=f"127.0.1.{n}", port=1,
                                     check={"ttl": "60s", "status": state})
        answered = _records(_ask(lenient, "web.service.consul", "A"))
        c.agent.service.maintenance("passing", enable=True)
        in_maintenance = _records(_ask(lenient, "web.service.consul", "A"))
        c.http.session.close()
    assert answered == [("A", "127.0.1.1"), ("A", "127.0.1.2")]
    assert in_maintenance == [("A", "127.0.1.2")]  # critical and maintenance are never answered
    assert Registry().dns_only_passing is True  # Consul's only_passing, on by default


def test_dns_edges_of_names_and_hostnames(registry, client):
    client.agent.service.register("db", service_id="db-1", address="db.example.com.", port=5432)
    srv = _ask(registry, "db.service.consul", "SRV")
    assert [r.target.to_text() for rrset in srv.answer for r in rrset] == ["db.example.com."]
    assert _records(_ask(registry, "db.service.consul", "AAAA")) == [("CNAME", "db.example.com.")]
    assert _records(_ask(registry, "db.service.consul", "TXT")) == []  # exists, no such record
    assert _ask(registry, "db.service.consul", "TXT").authority[0].ttl == 0
    too_deep = _ask(registry, "a.b.db.service.consul", "A")
    assert too_deep.rcode() == dns.rcode.NXDOMAIN
    assert _ask(registry, "workbench.node.dc1.consul", "A").answer[0][0].to_text() == "127.0.0.1"
    assert _ask(registry, "dc1.consul", "A").rcode() == dns.rcode.NXDOMAIN


def test_the_acl_api_is_disabled_as_py_consul_expects(client):
    with pytest.raises(consul.ACLDisabled):
        client.acl.token.list()
