"""The API gateway on real sockets: HTTP in, the mesh's gRPC services behind it — routing,
transcoding, JWT scopes, per-caller rate limits, caching, degradation, status mapping, and the
gateway in the call chain."""

from __future__ import annotations

import threading

import jwt
import pytest
import requests

from mesh import Mesh
from mesh.gateway import HTTP_STATUS, AuthError, BadRequest, Gateway, Route, Tokens, to_message
from mesh.pb.greeter_pb2 import HelloRequest

from .conftest import listening_ports

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
ROUTES = [
    Route("/api/greet", "greeter", "SayHello"),
    Route("/api/greet", "greeter", "SayHello", http_method="GET", cache_ttl=30),
    Route("/api/vip", "greeter", "SayHello", scope="vip", fallback={"name": "please come back later"}),
    Route("/api/limited", "greeter", "SayHello", rate_limit=2, burst=4),
]


def test_routes_refuse_what_cannot_work():
    with pytest.raises(ValueError, match="GET"):
        Route("/x", "greeter", "SayHello", cache_ttl=5)  # a POST cannot be cached
    with pytest.raises(ValueError, match="path"):
        Route("x/", "greeter", "SayHello")
    with pytest.raises(ValueError, match="has no method"):
        Gateway(None, [Route("/x", "greeter", "SayGoodbye")])
    with pytest.raises(ValueError, match="two routes"):
        Gateway(None, [Route("/x", "greeter", "SayHello"), Route("/x", "greeter", "SayHello")])


def test_json_that_does_not_fit_the_message_is_a_bad_request():
    assert to_message({"name": "Ada"}, HelloRequest) == HelloRequest(name="Ada")
    with pytest.raises(BadRequest, match="no field named"):
        to_message({"nam": "Ada"}, HelloRequest)
    with pytest.raises(BadRequest, match="JSON object"):
        to_message(["Ada"], HelloRequest)


def test_tokens_expire_and_are_checked_for_signature_and_scope():
    now = [1_000_000.0]
    tokens = Tokens(SECRET, now=lambda: now[0])
    forged = jwt.encode({"sub": "eve", "exp": 2_000_000_000, "iss": "workbench-gateway", "scope": "vip"},
                        "another-secret-that-is-long-enough-too!", algorithm="HS256")
    expiring = tokens.issue("ada", ["vip"], ttl=60)
    assert tokens.check(f"Bearer {expiring}", "vip")["sub"] == "ada"
    now[0] += 61
    for header, status in [(None, 401), ("Basic abc", 401), (f"Bearer {forged}", 401),
                           (f"Bearer {tokens.issue('bo', ['read'])}", 403), (f"Bearer {expiring}", 401)]:
        with pytest.raises(AuthError) as refused:
            tokens.check(header, "vip")
        assert refused.value.status == status, header
    with pytest.raises(ValueError, match="32"):
        Tokens("short")


@pytest.fixture(scope="module", params=["kernel", "processes"])
def mesh(request):
    """The gateway's behaviour is the same whether the services behind it run in the kernel or as
    processes of their own."""
    with Mesh({"greeter": 2}, name=f"gateway-tests-{request.param}", seed=4, mode=request.param) as mesh:
        mesh.wait_until_passing()
        yield mesh


@pytest.fixture
def gateway(mesh):
    with Gateway(mesh, ROUTES, secret=SECRET, name="test-gateway") as gateway:
        yield gateway
    mesh.clear_faults()


def test_rest_in_grpc_behind(gateway):
    answer = requests.post(f"{gateway.url}/api/greet", json={"name": "Ada"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"id": 1234, "name": "Ada", "age": 24, "title": ["apple", "purple"]}
    assert answer.headers["x-served-by"] in {"greeter-1", "greeter-2"}
    assert requests.get(f"{gateway.url}/api/greet", params={"name": "Bo"}, timeout=5).json()["name"] == "Bo"


def test_what_the_gateway_refuses_never_reaches_a_service(gateway, mesh):
    served = sum(i.served for i in mesh.instances())
    bad_json = requests.post(f"{gateway.url}/api/greet", data="{nope", timeout=5)
    bad_field = requests.post(f"{gateway.url}/api/greet", json={"nam": "Ada"}, timeout=5)
    missing = requests.post(f"{gateway.url}/api/nothing", json={}, timeout=5)
    wrong_method = requests.delete(f"{gateway.url}/api/greet", timeout=5)
    no_token = requests.post(f"{gateway.url}/api/vip", json={}, timeout=5)
    statuses = [r.status_code for r in (bad_json, bad_field, missing, wrong_method, no_token)]
    assert statuses == [400, 400, 404, 405, 401]
    assert "not JSON" in bad_json.json()["error"] and "nam" in bad_field.json()["error"]
    assert wrong_method.headers["Allow"] == "GET, POST"
    assert no_token.headers["WWW-Authenticate"] == "Bearer"
    assert sum(i.served for i in mesh.instances()) == served


def test_a_scope_opens_a_route(gateway):
    def vip(token):
        return requests.post(f"{gateway.url}/api/vip", json={"name": "Ada"}, timeout=5,
                             headers={"Authorization": f"Bearer {token}"})

    assert vip(gateway.issue_token("bo", ["read"])).status_code == 403
    allowed = vip(gateway.issue_token("ada", ["read", "vip"]))
    assert allowed.status_code == 200 and allowed.json()["name"] == "Ada"
    assert gateway.records()[-1]["client"] == "ada"  # the caller is the token's subject


def test_the_rate_limit_is_per_caller_and_says_when_to_come_back(gateway):
    statuses = [requests.post(f"{gateway.url}/api/limited", json={}, timeout=5) for _ in range(10)]
    assert [r.status_code for r in statuses].count(200) in (4, 5)  # the burst, and a token refilled at most
    assert statuses[-1].status_code == 429 and statuses[-1].headers["Retry-After"] == "1"
    limited = [r for r in gateway.records() if r["path"] == "/api/limited"]
    assert {r["client"] for r in limited} == {"127.0.0.1"}


def test_a_cached_answer_is_served_without_calling_the_service(gateway, mesh):
    first = requests.get(f"{gateway.url}/api/greet", params={"name": "Cy"}, timeout=5)
    served = sum(i.served for i in mesh.instances())
    again = requests.get(f"{gateway.url}/api/greet", params={"name": "Cy"}, timeout=5)
    other = requests.get(f"{gateway.url}/api/greet", params={"name": "Di"}, timeout=5)
    assert [r.headers["x-cache"] for r in (first, again, other)] == ["miss", "hit", "miss"]
    assert again.json() == first.json()
    assert sum(i.served for i in mesh.instances()) == served + 1  # only "Di" reached a Greeter


def test_a_failing_service_degrades_to_the_fallback_or_maps_to_an_http_status(gateway, mesh):
    for instance in mesh.instances():
        mesh.inject(instance, abort_code="UNAVAILABLE", abort_percent=100)
    vip = {"Authorization": f"Bearer {gateway.issue_token('ada', ['vip'])}"}
    degraded = requests.post(f"{gateway.url}/api/vip", json={}, timeout=5, headers=vip)
    plain = requests.post(f"{gateway.url}/api/greet", json={}, timeout=5)
    assert (degraded.status_code, degraded.json(), degraded.headers["x-degraded"]) == (
        200, {"name": "please come back later"}, "UNAVAILABLE")
    assert (plain.status_code, plain.json()["grpc_status"]) == (503, "UNAVAILABLE")
    for instance in mesh.instances():
        mesh.inject(instance, abort_code="PERMISSION_DENIED", abort_percent=100)
    denied = requests.post(f"{gateway.url}/api/vip", json={}, timeout=5, headers=vip)
    assert denied.status_code == HTTP_STATUS["PERMISSION_DENIED"] == 403  # not degraded: not an outage


def test_the_gateway_is_the_first_hop_of_the_call_chain(gateway, mesh):
    mesh.tracing.clear()
    requests.post(f"{gateway.url}/api/greet", json={"name": "Ada"}, timeout=5)
    (root,) = mesh.traces()
    assert (root.caller, root.service, root.method) == ("gateway", "greeter", "SayHello")
    assert ("gateway", "greeter") in mesh.dependency_graph().edges()


def test_a_new_gateway_of_the_same_name_replaces_the_old_and_stop_leaves_nothing(mesh):
    ports_before = listening_ports()
    first = Gateway(mesh, ROUTES, name="replaced")
    second = Gateway(mesh, ROUTES, name="replaced")
    assert first.port not in listening_ports() and second.port in listening_ports()
    second.stop()
    assert listening_ports() <= ports_before
    assert not [t for t in threading.enumerate() if t.name.startswith("replaced-")]


def test_a_gateway_whose_mesh_stopped_answers_503():
    mesh = Mesh({"greeter": 1}, name="gateway-orphan")
    mesh.wait_until_passing()
    with Gateway(mesh, ROUTES, name="orphan") as gateway:
        assert requests.post(f"{gateway.url}/api/greet", json={}, timeout=5).status_code == 200
        mesh.stop()
        answer = requests.post(f"{gateway.url}/api/greet", json={}, timeout=5)
        assert answer.status_code == 503 and "not running" in answer.json()["error"]
