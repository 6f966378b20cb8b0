"""Catalog and health endpoints through py-consul, with external nodes, tags and filters."""

from __future__ import annotations

import requests


def _external(client, node="ext-1", address="10.0.0.5", status="passing"):
    client.catalog.register(
        node, address,
        service={"Service": "billing", "ID": "billing-1", "Port": 9000, "Tags": ["v2", "eu"]},
        check={"CheckID": "billing-alive", "Name": "billing alive", "Status": status,
               "ServiceID": "billing-1"},
    )


def test_catalog_register_adds_an_external_node_and_service(client):
    _external(client)
    nodes = {n["Node"]: n["Address"] for n in client.catalog.nodes()[1]}
    assert nodes == {"workbench": "127.0.0.1", "ext-1": "10.0.0.5"}
    _, rows = client.catalog.service("billing")
    assert [(r["Node"], r["ServiceID"], r["ServicePort"], r["ServiceTags"]) for r in rows] == [
        ("ext-1", "billing-1", 9000, ["v2", "eu"])]
    _, node = client.catalog.node("ext-1")
    assert list(node["Services"]) == ["billing-1"] and node["Node"]["Address"] == "10.0.0.5"
    assert client.catalog.node("ghost")[1] is None
    _, health = client.health.service("billing", passing=True)
    assert health[0]["Node"]["Node"] == "ext-1"
    assert client.catalog.datacenters() == ["dc1"]


def test_catalog_deregister_service_check_and_node(client):
    _external(client)
    assert client.catalog.deregister("ext-1", check_id="billing-alive")
    assert client.health.checks("billing")[1] == []
    assert client.catalog.deregister("ext-1", service_id="billing-1")
    assert client.catalog.service("billing")[1] == []
    _external(client)
    assert client.catalog.deregister("ext-1")
    assert [n["Node"] for n in client.catalog.nodes()[1]] == ["workbench"]
    assert client.catalog.service("billing")[1] == []


def test_tag_filters_on_catalog_and_health(client):
    client.agent.service.register("web", service_id="web-1", port=1, tags=["v1"])
    client.agent.service.register("web", service_id="web-2", port=2, tags=["v2", "canary"])
    assert [r["ServiceID"] for r in client.catalog.service("web", tag="v2")[1]] == ["web-2"]
    assert [e["Service"]["ID"] for e in client.health.service("web", tag="v1")[1]] == ["web-1"]
    assert [e["Service"]["ID"] for e in client.health.service("web", tag=["v2", "canary"])[1]] == ["web-2"]
    assert client.health.service("web", tag="v3")[1] == []


def test_health_checks_state_and_node(client):
    client.agent.service.register("web", service_id="web-1", port=1,
                                  check={"ttl": "60s", "status": "passing"})
    client.agent.service.register("web", service_id="web-2", port=2, check={"ttl": "60s"})
    assert sorted(c["ServiceID"] for c in client.health.checks("web")[1]) == ["web-1", "web-2"]
    critical = client.health.state("critical")[1]
    assert [c["ServiceID"] for c in critical] == ["web-2"]
    passing_ids = {c["CheckID"] for c in client.health.state("passing")[1]}
    assert passing_ids == {"serfHealth", "service:web-1"}
    assert len(client.health.state("any")[1]) == 3
    node_checks = {c["CheckID"] for c in client.health.node("workbench")[1]}
    assert node_checks == {"serfHealth", "service:web-1", "service:web-2"}


def test_unknown_health_state_is_400(registry):
    resp = requests.get(f"{registry.url}/v1/health/state/sick", timeout=5)
    assert resp.status_code == 400 and "Invalid state" in resp.text


def test_filter_expressions_on_health_catalog_and_agent(registry, client):
    client.agent.service.register("web", service_id="web-1", port=8080, tags=["blue"],
                                  meta={"version": "1"})
    client.agent.service.register("web", service_id="web-2", port=8081, tags=["green"], meta={"version": "2"},
                                  check={"ttl": "60s"})
    health = f"{registry.url}/v1/health/service/web"

    def ids(url, expression):
        resp = requests.get(url, params={"filter": expression}, timeout=5)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if isinstance(body, dict):
            return sorted(body)
        return sorted(e["Service"]["ID"] if "Service" in e and isinstance(e["Service"], dict)
                      else e.get("ServiceID") or e.get("ID") for e in body)

    assert ids(health, 'Service.Tags contains "green"') == ["web-2"]
    assert ids(health, 'Checks.Status == "critical"') == ["web-2"]
    assert ids(health, 'Checks.Status != "critical"') == ["web-1"]
    assert ids(health, 'Service.Meta.version == "1" or Service.Port == 8081') == ["web-1", "web-2"]
    assert ids(health, 'Service.Tags contains "blue" and Checks.Status == "passing"') == ["web-1"]
    assert ids(health, 'not ("green" in Service.Tags)') == ["web-1"]
    assert ids(f"{registry.url}/v1/catalog/service/web", 'ServicePort == 8081') == ["web-2"]
    assert ids(f"{registry.url}/v1/agent/services", 'Meta.version == "2"') == ["web-2"]
    assert ids(f"{registry.url}/v1/agent/services", 'Service matches "^we"') == ["web-1", "web-2"]
    resp = requests.get(health, params={"filter": "Service.Port =="}, timeout=5)
    assert resp.status_code == 400 and "Failed to create boolean expression evaluator" in resp.text


def test_blocking_on_catalog_services_and_health_checks(client):
    index, _ = client.catalog.services()
    client.agent.service.register("web", service_id="web-1", port=1)
    new_index, services = client.catalog.services(index=index, wait="5s")
    assert int(new_index) > int(index) and "web" in services
    index, _ = client.health.checks("web")
    client.agent.check.register("extra", check={"ttl": "60s"}, check_id="extra", service_id="web-1")
    new_index, checks = client.health.checks("web", index=index, wait="5s")
    assert int(new_index) > int(index) and {c["CheckID"] for c in checks} == {"extra"}


def test_consul_service_is_listed_like_a_real_agent(client):
    assert "consul" in client.catalog.services()[1]
    _, entries = client.health.service("consul", passing=True)
    assert entries[0]["Service"]["Port"] == 8300
    assert "consul" not in client.agent.services()
