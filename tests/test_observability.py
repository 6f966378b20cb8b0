"""The three signals of a real mesh: logs that carry the trace id across services, Prometheus
metrics (RED per edge) scraped over HTTP, and traces — each pointing at the same calls, whether
the instances run in the kernel or as processes (whose logs and spans come over OTLP)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lessons.experiment import CHECKOUT
from mesh import Mesh
from mesh.services import shop_topology

from .conftest import MODES


@pytest.fixture(scope="module", params=MODES)
def shop(request):
    """The shop in the kernel and as processes (whose log lines and spans come over OTLP)."""
    with Mesh(shop_topology(1), name="observability-test", seed=0, mode=request.param) as mesh:
        mesh.wait_until_passing()
        yield mesh


def samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_one_requests_log_lines_share_its_trace_id_across_services(shop):
    shop.inject("fraud-1", abort_code="INTERNAL", abort_percent=100)
    shop.tracing.clear()
    shop.logs.clear()
    with contextlib.suppress(grpc.RpcError):
        shop.client("frontend").Checkout(CHECKOUT, timeout=5)
    shop.clear_faults()
    shop.settle_telemetry()
    (request,) = shop.tracing.requests()
    trace_id = request[0].trace_id
    lines = shop.logs.records(trace_id=trace_id)
    access = [r for r in lines if r["logger"] == "mesh.service.access"]
    assert {r["service"] for r in access} == {"frontend", "orders", "inventory", "payments", "fraud"}
    codes = {r["service"]: r["code"] for r in access}
    assert codes == {"frontend": "INTERNAL", "orders": "INTERNAL", "inventory": "OK", "payments": "INTERNAL",
                     "fraud": "INTERNAL"}
    assert all(r["level"] == ("INFO" if r["code"] == "OK" else "WARNING") for r in access)
    assert all(r["mesh"] == "observability-test" and len(r["span_id"]) == 16 for r in access)
    assert len({r["span_id"] for r in access}) == len(access)  # each line in its own server span
    warned = [r["service"] for r in shop.logs.records(trace_id=trace_id, level="warning")]
    assert "inventory" not in warned and "fraud" in warned
    parsed = [json.loads(line) for line in shop.logs.lines(trace_id=trace_id, service="fraud")]
    assert [p["message"] for p in parsed] == [r["message"] for r in access if r["service"] == "fraud"]
    assert parsed[0]["message"].startswith("Score INTERNAL ")
    (story,) = [r for r in lines if r["logger"] == "mesh.service.shop"]  # what the code itself said
    assert (story["service"], story["level"], story["user"]) == ("orders", "WARNING", "ada")
    assert story["message"].startswith("order not placed: payment not checked")
    assert story["total_cents"] > 0 and story["span_id"] in {r["span_id"] for r in access}


def test_another_mesh_does_not_get_these_logs(shop):
    with Mesh({"greeter": 1}, name="observability-other") as other:
        other.wait_until_passing()
        shop.logs.clear()
        from mesh.pb.greeter_pb2 import HelloRequest

        other.client("greeter").SayHello(HelloRequest(name="Ada"), timeout=5)
        assert [r["service"] for r in other.logs.records()] == ["greeter"]
    shop.settle_telemetry()
    assert shop.logs.records() == []


def test_red_per_edge_in_the_prometheus_exposition_and_over_http(shop):
    before = samples(shop.metrics.prometheus.exposition(), "mesh_client_requests_total")
    for _ in range(7):
        shop.client("frontend").Checkout(CHECKOUT, timeout=5)
    shop.settle_telemetry()  # a process's calls are counted from its spans
    text = shop.metrics.prometheus.exposition()
    after = samples(text, "mesh_client_requests_total")
    edge = (("callee", "fraud"), ("caller", "payments"), ("code", "OK"), ("method", "Score"))
    assert after[edge] - before.get(edge, 0) == 7
    counts = samples(text, "mesh_client_request_duration_seconds_count")
    assert counts[(("callee", "fraud"), ("caller", "payments"), ("method", "Score"))] >= 7
    buckets = samples(text, "mesh_client_request_duration_seconds_bucket")
    inf = buckets[(("callee", "fraud"), ("caller", "payments"), ("le", "+Inf"), ("method", "Score"))]
    assert inf == counts[(("callee", "fraud"), ("caller", "payments"), ("method", "Score"))]
    served = samples(text, "mesh_server_requests_total")
    assert served[(("code", "OK"), ("instance", "fraud-1"), ("method", "Score"), ("service", "fraud"))] >= 7
    url = shop.metrics.prometheus.serve()
    assert url.startswith("http://127.0.0.1:") and shop.metrics.prometheus.serve() == url
    with urllib.request.urlopen(url, timeout=5) as scrape:
        scraped = samples(scrape.read().decode(), "mesh_client_requests_total")
    assert scraped[edge] == after[edge]


def test_the_metrics_endpoint_closes_with_its_mesh():
    with Mesh({"greeter": 1}, name="observability-endpoint") as mesh:
        url = mesh.metrics.prometheus.serve()
        with urllib.request.urlopen(url, timeout=5) as scrape:
            assert scrape.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
