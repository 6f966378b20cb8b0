"""The service framework's remaining parts (the chapter's list): an admin interface on every
instance, found through gRPC reflection; rich errors whose reason reaches the gateway's answer;
an OpenAPI document of the gateway's routes, valid, served with Swagger UI from local files."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import pytest
from openapi_spec_validator import validate

from lessons.experiment import CHECKOUT
from mesh import Mesh
from mesh.core.admin import describe, status
from mesh.gateway import Gateway, Route
from mesh.pb import shop_pb2
from mesh.services import shop_topology

ROUTES = [Route("/api/home", "frontend", "Home", http_method="GET", rate_limit=20, burst=5),
          Route("/api/checkout", "frontend", "Checkout", scope="shop:buy"),
          Route("/api/greet", "greeter", "SayHello")]
RISKY = shop_pb2.CheckoutRequest(user="ada", card="4242", items=[shop_pb2.Item(sku="yuzu", quantity=200)])


@pytest.fixture(scope="module")
def shop():
    with Mesh({**shop_topology(1), "greeter": 1}, name="framework-test", seed=0) as mesh:
        mesh.wait_until_passing()
        yield mesh


def test_reflection_lists_every_service_of_an_instance(shop):
    assert describe(shop.instance("payments-1").address) == {
        "admin.Admin": ["Status"], "grpc.health.v1.Health": ["Check", "List", "Watch"],
        "grpc.reflection.v1alpha.ServerReflection": ["ServerReflectionInfo"], "shop.Payments": ["Charge"]}
    assert "Greeter" in describe(shop.instance("greeter-1").address)


def test_the_admin_status_shows_settings_breakers_and_recent_errors(shop):
    shop.config("payments").set("work_ms", 3.0)
    shop.config("payments").wait_for(lambda s: s.work_ms == 3.0)
    shop.set_policy("fraud", breaker_failure_rate=50, breaker_minimum_calls=2, breaker_window=4)
    shop.inject("fraud-1", abort_code="INTERNAL", abort_percent=100)
    try:
        for _ in range(6):
            with pytest.raises(grpc.RpcError):
                shop.client("frontend").Checkout(CHECKOUT, timeout=3)
        answer = status(shop.instance("payments-1").address, recent_errors=2)
    finally:
        shop.clear_faults()
        shop.set_policy("fraud", breaker_failure_rate=0)
        shop.config("payments").reset("work_ms")
    identity = (answer.instance, answer.service, answer.version, answer.health)
    assert identity == ("payments-1", "payments", "v1", "SERVING")
    assert answer.calls_served >= 6 and answer.in_flight == 0  # the admin call itself is not counted
    assert dict(answer.settings) == {"work_ms": "3.0"}
    assert [(b.name, b.state) for b in answer.breakers] == [("payments-1->fraud", "open")]
    assert len(answer.recent_errors) == 2
    assert all(e.method == "Charge" and e.code != "OK" and len(e.trace_id) == 32
               for e in answer.recent_errors)
    shop.instance("payments-1").set_serving(False)
    try:
        assert status(shop.instance("payments-1").address).health == "NOT_SERVING"
    finally:
        shop.instance("payments-1").set_serving(True)
        shop.wait_until_passing("payments")  # its next check passes it again, for the tests after this


def test_a_reason_climbs_the_chain_and_reaches_the_gateways_answer(shop):
    with pytest.raises(grpc.RpcError) as refused:
        shop.client("frontend").Checkout(RISKY, timeout=3)
    from mesh.client.errors import reason_of

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == {"reason": "FRAUD_RISK", "domain": "shop.workbench",
                                        "metadata": {"risk": "1.00"}}
    assert refused.value.details().startswith("orders failed: order not placed: payment refused")
    with Gateway(shop, ROUTES, name="framework-gateway") as gateway:
        token = gateway.issue_token("ada", ["shop:buy"])
        order = {"user": "ada", "card": "4242", "items": [{"sku": "yuzu", "quantity": 200}]}
        body = json.dumps(order).encode()
        request = urllib.request.Request(gateway.url + "/api/checkout", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(request, timeout=5)
        with answered.value:
            error = json.loads(answered.value.read())
    assert answered.value.code == 400
    assert {k: error[k] for k in ("grpc_status", "reason", "domain", "metadata")} == {
        "grpc_status": "FAILED_PRECONDITION", "reason": "FRAUD_RISK", "domain": "shop.workbench",
        "metadata": {"risk": "1.00"}}
    assert "payment refused" not in error["error"]  # the service's own words stay in the log


def test_the_openapi_document_is_valid_and_served_with_swagger_ui(shop):
    with Gateway(shop, ROUTES, name="framework-docs") as gateway:
        document = gateway.openapi()
        validate(document)  # raises, naming the fault, if the document is not valid OpenAPI 3.0
        with urllib.request.urlopen(gateway.url + "/openapi.json", timeout=5) as served:
            assert json.loads(served.read()) == document
        with urllib.request.urlopen(gateway.url + "/docs", timeout=5) as page:
            html = page.read().decode()
        with urllib.request.urlopen(gateway.url + "/docs/swagger-ui-bundle.js", timeout=5) as script:
            assert script.status == 200 and len(script.read()) > 100_000
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(gateway.url + "/docs/../../etc/passwd", timeout=5)
        outside.value.close()
    assert outside.value.code == 404
    assert '"/openapi.json"' in html and "/docs/swagger-ui-bundle.js" in html and "http" not in html.replace(
        "http-equiv", "")
    checkout = document["paths"]["/api/checkout"]["post"]
    assert checkout["security"] == [{"bearer": ["shop:buy"]}] and {"401", "403"} <= set(checkout["responses"])
    request = document["components"]["schemas"]["shop.CheckoutRequest"]
    item = {"$ref": "#/components/schemas/shop.Item"}
    assert request["properties"]["items"] == {"type": "array", "items": item}
    assert document["components"]["schemas"]["shop.Item"]["properties"]["quantity"] == {"type": "integer",
                                                                                       "format": "int32"}
    home = document["paths"]["/api/home"]["get"]
    assert [p["name"] for p in home["parameters"]] == ["user", "count"] and "429" in home["responses"]
    assert set(document["paths"]) == {"/api/home", "/api/checkout", "/api/greet"}


def test_the_documentation_paths_are_the_gateways_own(shop):
    with pytest.raises(ValueError, match="the gateway's own"):
        Gateway(shop, [Route("/openapi.json", "greeter", "SayHello")], name="framework-clash")
    with pytest.raises(ValueError, match="the gateway's own"):
        Gateway(shop, [Route("/docs/greet", "greeter", "SayHello")], name="framework-clash")


def test_only_the_allowed_callers_reach_a_service_and_a_header_proves_nothing(shop):
    from mesh.client.identity import Identities

    fraud = shop.instance("fraud-1")
    score = shop_pb2.ScoreRequest(user="ada", amount_cents=100)
    shop.allow_callers("fraud", ["payments"])
    try:
        assert shop.client("frontend").Checkout(CHECKOUT, timeout=3).status == "confirmed"  # via payments
        with pytest.raises(grpc.RpcError) as denied:
            shop.client("fraud").Score(score, timeout=3)  # the notebook ("client") is not allowed
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "client may not call fraud (allowed: payments)" in denied.value.details()
        with grpc.insecure_channel(fraud.address) as channel:  # straight to the instance, past the mesh
            stub = fraud.kind.stub(channel)
            forged = Identities("framework-test").token("payments", "fraud")  # signed with another secret
            for metadata, expected in (((("x-caller", "payments"),), "no identity"),
                                       ((("x-identity", forged),), "the identity is not valid")):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.Score(score, timeout=3, metadata=metadata)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert expected in refused.value.details()
            genuine = shop.identities.token("payments", "fraud")
            assert stub.Score(score, timeout=3, metadata=(("x-identity", genuine),)).risk == 0.001
    finally:
        shop.allow_callers("fraud", None)
    assert shop.client("fraud").Score(score, timeout=3).risk == 0.001  # no rule: anyone again


def test_an_identity_expires_and_is_renewed_before_it_does():
    from mesh.client.identity import Identities, IdentityError

    now = [1000.0]
    identities = Identities("m", secret="s" * 32, ttl=100, clock=lambda: now[0])
    first = identities.token("payments", "fraud")
    assert identities.verify(first, "fraud") == "payments"
    now[0] = 1079.0
    assert identities.token("payments", "fraud") == first  # most of its life left: the same token
    now[0] = 1080.0
    renewed = identities.token("payments", "fraud")
    assert renewed != first and identities.verify(renewed, "fraud") == "payments"
    now[0] = 1100.0
    with pytest.raises(IdentityError, match="expired"):
        identities.verify(first, "fraud")  # exactly at exp it is no longer valid
    other_mesh = Identities("other", secret="s" * 32, clock=lambda: now[0])
    with pytest.raises(IdentityError, match="not issued for calls to fraud in this mesh"):
        identities.verify(other_mesh.token("payments", "fraud"), "fraud")  # another mesh's audience
