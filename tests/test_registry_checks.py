"""Agent checks through py-consul: TTL, HTTP, registration, maintenance, reaping of critical services."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import consul
import pytest
import requests

from mesh.registry import Registry

from .conftest import eventually


def _check(c: consul.Consul, check_id: str) -> dict:
    return c.agent.checks()[check_id]


def test_ttl_check_follows_pass_warn_fail_and_update(registry, client):
    client.agent.service.register("job", service_id="job-1", check=consul.Check.ttl("30s"))
    check_id = "service:job-1"
    assert _check(client, check_id)["Status"] == "critical"
    client.agent.check.ttl_pass(check_id, "all good")
    assert (_check(client, check_id)["Status"], _check(client, check_id)["Output"]) == ("passing", "all good")
    client.agent.check.ttl_warn(check_id, "slow")
    assert _check(client, check_id)["Status"] == "warning"
    client.agent.check.ttl_fail(check_id)
    assert _check(client, check_id)["Status"] == "critical"
    resp = requests.put(f"{registry.url}/v1/agent/check/update/{check_id}",
                        json={"Status": "passing", "Output": "via update"}, timeout=5)
    assert resp.status_code == 200
    assert _check(client, check_id)["Output"] == "via update"


@pytest.mark.slow
def test_ttl_check_expires_to_critical(client):
    client.agent.check.register("heartbeat", check=consul.Check.ttl("1s"), check_id="hb")
    client.agent.check.ttl_pass("hb")
    assert _check(client, "hb")["Status"] == "passing"
    elapsed = eventually(lambda: _check(client, "hb")["Status"] == "critical", timeout=5)
    assert elapsed >= 0.5
    assert _check(client, "hb")["Output"] == "TTL expired"


def test_ttl_update_of_non_ttl_or_unknown_check_is_refused(registry, client, tcp_listener):
    client.agent.check.register("tcp", check=consul.Check.tcp("127.0.0.1", tcp_listener.port, "10s"),
                                check_id="tcp-1")
    resp = requests.put(f"{registry.url}/v1/agent/check/pass/tcp-1", timeout=5)
    assert resp.status_code == 500 and "does not have associated TTL" in resp.text
    resp = requests.put(f"{registry.url}/v1/agent/check/pass/nope", timeout=5)
    assert resp.status_code == 404 and 'Unknown check ID "nope"' in resp.text


def test_initial_status_and_notes_are_kept(client):
    client.agent.check.register("manual", check={"ttl": "60s", "status": "warning"}, check_id="m",
                                notes="set by hand")
    check = _check(client, "m")
    assert (check["Status"], check["Notes"], check["Type"]) == ("warning", "set by hand", "ttl")


def test_check_register_and_deregister(registry, client):
    client.agent.service.register("web", service_id="web-1", port=80)
    client.agent.check.register("web ttl", check=consul.Check.ttl("60s"), check_id="web-ttl",
                                service_id="web-1")
    assert _check(client, "web-ttl")["ServiceName"] == "web"
    assert client.agent.check.deregister("web-ttl") is True
    assert "web-ttl" not in client.agent.checks()
    resp = requests.put(f"{registry.url}/v1/agent/check/deregister/web-ttl", timeout=5)
    assert resp.status_code == 404
    resp = requests.put(f"{registry.url}/v1/agent/check/register", json={"TTL": "5s"}, timeout=5)
    assert resp.status_code == 400 and resp.text == "Missing check name"
    resp = requests.put(f"{registry.url}/v1/agent/check/register",
                        json={"Name": "x", "TTL": "5s", "ServiceID": "ghost"}, timeout=5)
    assert (resp.status_code, resp.text) == (404, 'ServiceID "ghost" does not exist')  # as Consul 1.9+
    assert client.agent.check.register("x", consul.Check.ttl("5s"), service_id="ghost") is False
    assert set(client.agent.checks()) == set()


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        body = b"ok" if self.status == 200 else b"busy"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_http_check_passes_warns_on_429_and_fails_otherwise(client):
    handler = type("H", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/health"
    try:
        client.agent.service.register("api", service_id="api-1", port=server.server_port,
                                      check=consul.Check.http(url, "1s", timeout="1s"))
        eventually(lambda: _check(client, "service:api-1")["Status"] == "passing")
        assert _check(client, "service:api-1")["Output"] == f"HTTP GET {url}: 200 OK Output: ok"
        handler.status = 429
        eventually(lambda: _check(client, "service:api-1")["Status"] == "warning")
        handler.status = 503
        eventually(lambda: _check(client, "service:api-1")["Status"] == "critical")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_service_maintenance_makes_it_critical_with_reason(registry, client):
    client.agent.service.register("web", service_id="web-1", port=80)
    assert client.health.service("web", passing=True)[1] != []
    client.agent.service.maintenance("web-1", True, "upgrading")
    check = _check(client, "_service_maintenance:web-1")
    assert check["Name"] == "Service Maintenance Mode"
    assert (check["Status"], check["Notes"]) == ("critical", "upgrading")
    assert client.health.service("web", passing=True)[1] == []
    client.agent.service.maintenance("web-1", False)
    assert client.health.service("web", passing=True)[1] != []
    resp = requests.put(f"{registry.url}/v1/agent/service/maintenance/web-1", timeout=5)
    assert resp.status_code == 400 and resp.text == "Missing value for enable"
    resp = requests.put(f"{registry.url}/v1/agent/service/maintenance/ghost?enable=true", timeout=5)
    assert resp.status_code == 404


def test_node_maintenance_takes_every_service_out(client):
    client.agent.service.register("web", service_id="web-1", port=80)
    client.agent.service.register("db", service_id="db-1", port=5432)
    client.agent.maintenance(True)
    assert client.health.service("web", passing=True)[1] == []
    assert client.health.service("db", passing=True)[1] == []
    assert "default message" in _check(client, "_node_maintenance")["Notes"]
    client.agent.maintenance(False)
    assert len(client.health.service("db", passing=True)[1]) == 1


def test_agent_service_by_id_and_members(registry, client):
    client.agent.service.register("web", service_id="web-1", port=80, tags=["a"])
    resp = requests.get(f"{registry.url}/v1/agent/service/web-1", timeout=5)
    assert resp.status_code == 200
    assert (resp.json()["ID"], resp.json()["Tags"]) == ("web-1", ["a"]) and resp.json()["ContentHash"]
    assert requests.get(f"{registry.url}/v1/agent/service/ghost", timeout=5).status_code == 404
    members = client.agent.members()
    assert [(m["Name"], m["Status"]) for m in members] == [("workbench", 1)]


@pytest.mark.slow
def test_critical_service_is_deregistered_after_the_configured_time():
    with Registry(reap_min=1.0) as registry:
        c = registry.client()
        c.agent.service.register("flaky", service_id="flaky-1", port=1, check={
            "ttl": "60s", "status": "critical", "DeregisterCriticalServiceAfter": "1s"})
        c.agent.service.register("steady", service_id="steady-1", port=2, check={
            "ttl": "60s", "status": "passing", "DeregisterCriticalServiceAfter": "1s"})
        start = time.monotonic()
        eventually(lambda: "flaky-1" not in c.agent.services(), timeout=5)
        assert time.monotonic() - start >= 0.9
        assert "steady-1" in c.agent.services()
        c.http.session.close()


def test_deregister_after_has_consuls_one_minute_floor(client):
    client.agent.service.register("flaky", service_id="flaky-1", port=1, check={
        "ttl": "60s", "status": "critical", "DeregisterCriticalServiceAfter": "1s"})
    time.sleep(1.5)
    assert "flaky-1" in client.agent.services()


def test_re_registering_keeps_a_checks_last_result(client):
    client.agent.service.register("job", service_id="job-1", check=consul.Check.ttl("30s"))
    client.agent.check.ttl_pass("service:job-1", "fine")
    client.agent.service.register("job", service_id="job-1", tags=["v2"], check=consul.Check.ttl("30s"))
    check = _check(client, "service:job-1")
    assert (check["Status"], check["Output"]) == ("passing", "fine")
    assert client.agent.services()["job-1"]["Tags"] == ["v2"]
    client.agent.service.register("job", service_id="job-1", check={"ttl": "30s", "status": "warning"})
    assert _check(client, "service:job-1")["Status"] == "warning"  # an explicit Status wins
