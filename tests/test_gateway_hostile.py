"""The gateway against careless and hostile callers: every malformed body and token is a 4xx with a
reason and a log record (never a 500), a service's own error text never reaches the caller, the
route timeout holds end to end while a service hangs, slow clients are cut off, and idle callers'
rate-limit buckets are dropped without letting anyone reset a limit."""

from __future__ import annotations

import socket
import time

import jwt
import pytest
import requests

from mesh import Mesh
from mesh.gateway import PUBLIC_ERRORS, AuthError, Gateway, Route, Tokens

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def mesh():
    with Mesh({"greeter": 2, "inventory": 1}, name="gateway-hostile", seed=5) as mesh:
        mesh.wait_until_passing()
        yield mesh


@pytest.fixture
def gateway(mesh):
    routes = [Route("/api/greet", "greeter", "SayHello", timeout=1.0),
              Route("/api/vip", "greeter", "SayHello", scope="vip"),
              Route("/api/stock", "inventory", "Stock", http_method="GET")]
    with Gateway(mesh, routes, secret=SECRET, name="hostile", max_workers=2, header_timeout=0.5) as gateway:
        yield gateway
    mesh.clear_faults()


def _post(gateway, data: bytes, content_type: str = "application/json", path: str = "/api/greet",
          **headers) -> requests.Response:
    return requests.post(f"{gateway.url}{path}", data=data, timeout=10,
                         headers={"Content-Type": content_type, **headers})


@pytest.mark.parametrize(("body", "content_type", "reason"), [
    (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deep"),
    (b'{"name": "\xff\xfe"}', "application/json", "not UTF-8"),
    ('{"name": "Ada"}'.encode("utf-16"), "application/json", "not UTF-8"),
    ('{"name": "Ada"}'.encode("utf-16"), "application/json; charset=utf-16", "must be UTF-8"),
    (b'{"name": "Ada"}', "application/json; charset=klingon", "must be UTF-8"),
    (b'{"id": ' + b"7" * 5000 + b"}", "application/json", "not JSON the gateway reads"),
    (b'{"name": {"a": {"b": {"c": [1, 2, {"d": null}]}}}}', "application/json", "HelloRequest"),
    (b'{"id": 1e999}', "application/json", "HelloRequest"),
])
def test_a_body_the_gateway_cannot_read_is_a_400_with_a_reason_and_a_record(gateway, body, content_type,
                                                                              reason):
    before = len(gateway.log)
    answer = _post(gateway, body, content_type)
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["error"]
    assert len(gateway.log) == before + 1 and gateway.log[-1].status == 400
    assert gateway.log[-1].request_id == answer.headers["x-request-id"]


def _token(claims: dict) -> str:
    base = {"sub": "ada", "iss": "workbench-gateway", "scope": "vip", "exp": 2_000_000_000}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(("claims", "status", "reason"), [
    ({"exp": "tomorrow"}, 401, "exp"),  # PyJWT does not check it: verify_exp is off (own clock)
    ({"exp": float("inf")}, 401, "finite"),
    ({"exp": float("nan")}, 401, "finite"),
    ({"exp": True}, 401, "finite"),
    ({"sub": 42}, 401, "Subject must be a string"),
    ({"scope": ""}, 403, "lacks the scope"),
    ({"scope": "vipx read"}, 403, "lacks the scope"),
])
def test_a_signed_token_with_a_bad_claim_is_refused_with_a_record(gateway, claims, status, reason):
    before = len(gateway.log)
    answer = _post(gateway, b"{}", path="/api/vip", Authorization=f"Bearer {_token(claims)}")
    assert (answer.status_code, gateway.log[-1].status) == (status, status), answer.text
    assert reason in answer.json()["error"] and len(gateway.log) == before + 1


def test_a_token_is_valid_until_just_before_exp_and_not_at_it():
    now = [1_000_000.0]
    tokens = Tokens(SECRET, now=lambda: now[0])
    token = tokens.issue("ada", ["vip"], ttl=60)
    now[0] = 1_000_059.999
    assert tokens.check(f"Bearer {token}", "vip")["sub"] == "ada"
    now[0] = 1_000_060.0  # RFC 7519: the token must not be accepted on or after exp
    with pytest.raises(Exception, match="expired"):
        tokens.check(f"Bearer {token}", "vip")


def test_a_services_own_error_text_never_reaches_the_caller(gateway, mesh):
    for instance in mesh.instances("greeter"):
        mesh.inject(instance, abort_code="INTERNAL", abort_percent=100)
    answer = _post(gateway, b'{"name": "Ada"}')
    body = answer.json()
    assert answer.status_code == 500 and body["grpc_status"] == "INTERNAL"
    assert "injected" not in answer.text and body["error"] == "the service failed"
    assert body["request_id"] == answer.headers["x-request-id"] == gateway.log[-1].request_id
    assert gateway.log[-1].detail == "injected INTERNAL"  # the operator still sees what happened
    mesh.inject(mesh.instances("greeter")[0], abort_code="UNAVAILABLE", abort_percent=100)
    mesh.inject(mesh.instances("greeter")[1], abort_code="UNAVAILABLE", abort_percent=100)
    assert _post(gateway, b"{}").json()["error"] == PUBLIC_ERRORS["UNAVAILABLE"]


@pytest.mark.slow
def test_the_route_timeout_is_end_to_end_while_a_service_hangs_and_other_services_answer(gateway, mesh):
    """With the service hanging, 100 requests took up to 14 s to get their 504 (route timeout 2 s):
    time queued for one of the workers was not counted, and other routes queued behind them."""
    for instance in mesh.instances("greeter"):
        mesh.inject(instance, hang_percent=100, max_hang=30)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(12) as callers:
        hung = [callers.submit(_post, gateway, b"{}") for _ in range(10)]  # 5x the 2 workers
        time.sleep(0.2)
        stock = requests.get(f"{gateway.url}/api/stock", timeout=10)
        answers = [f.result() for f in hung]
    assert stock.status_code == 200  # another service's route has workers of its own
    assert [a.status_code for a in answers] == [504] * 10
    records = [r for r in gateway.log if r.path == "/api/greet"]
    assert len(records) == 10 and max(r.latency for r in records) < 1.0 + 0.5


def test_a_client_that_never_finishes_its_header_is_cut_off(gateway):
    with socket.create_connection((gateway.host, gateway.port), timeout=10) as slow:
        slow.sendall(b"POST /api/greet HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        assert slow.recv(1024) == b""  # closed by the gateway after its 0.5 s header timeout


def test_idle_callers_buckets_are_dropped_once_refilled_but_a_limit_cannot_be_reset(mesh):
    now = [0.0]
    routes = [Route("/api/limited", "greeter", "SayHello", scope="use", rate_limit=1, burst=2)]
    clock = lambda: now[0]  # noqa: E731
    with Gateway(mesh, routes, secret=SECRET, name="buckets", clock=clock, max_buckets=50) as gateway:
        def call(who: str) -> int:
            token = gateway.issue_token(who, ["use"])
            return requests.post(f"{gateway.url}/api/limited", json={}, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}).status_code

        assert [call("ada") for _ in range(3)] == [200, 200, 429]
        for n in range(20):
            call(f"visitor-{n}")
        assert gateway.rate_limited_callers == 21
        now[0] = 0.5  # ada's bucket holds half a token: not full, so it is kept
        assert call("ada") == 429
        now[0] = 2.5  # all have refilled: a new caller's visit drops every full bucket
        assert call("bo") == 200 and gateway.rate_limited_callers == 1
        assert [call("ada") for _ in range(3)] == [200, 200, 429]  # a fresh bucket is a full one
        for n in range(60):  # more callers at once than max_buckets: the least recent go first
            call(f"crowd-{n}")
        assert gateway.rate_limited_callers == 50


@pytest.mark.parametrize(("header", "words"), [
    (None, "this route needs a token: send 'Authorization: Bearer <token>'"),
    ("", "this route needs a token: send 'Authorization: Bearer <token>'"),
    ("Basic abc", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer ", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer a b", "the token is not valid: Not enough segments"),
])
def test_a_missing_or_malformed_header_is_refused_with_its_words(header, words):
    with pytest.raises(AuthError) as refused:
        Tokens(SECRET).check(header, "vip")
    assert (refused.value.status, refused.value.message) == (401, words)


@pytest.mark.parametrize(("claims", "words"), [
    ({"iss": "someone-else"}, "the token is not valid: Invalid issuer"),
    ({"exp": None}, 'the token is not valid: Token is missing the "exp" claim'),
    ({"sub": None}, 'the token is not valid: Token is missing the "sub" claim'),
    ({"exp": "tomorrow"}, "the token's exp must be a finite NumericDate (seconds since 1970)"),
    ({"exp": 1_000_000}, "the token has expired"),
])
def test_a_signed_token_is_checked_for_issuer_and_required_claims(claims, words):
    full = {"sub": "ada", "iss": "workbench-gateway", "scope": "vip", "exp": 2_000_000_000, **claims}
    token = jwt.encode({k: v for k, v in full.items() if v is not None}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError) as refused:
        Tokens(SECRET, now=lambda: 1_500_000.0).check(f"Bearer {token}", "vip")
    assert (refused.value.status, refused.value.message) == (401, words)


def test_an_issued_token_says_who_by_whom_when_and_for_how_long():
    token = Tokens(SECRET, now=lambda: 1_000_000.5).issue("ada", ["read", "vip"])
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "ada", "iss": "workbench-gateway", "iat": 1_000_000, "exp": 1_003_600,
                      "scope": "read vip"}  # an hour by default
    assert Tokens(SECRET, now=lambda: 1_000_000.5).check(f"bearer {token}", "")["sub"] == "ada"


def test_a_body_over_the_limit_is_a_413_with_a_reason_and_a_record(gateway):
    answer = _post(gateway, b'{"name": "' + b"x" * (1 << 20) + b'"}')
    assert answer.status_code == 413
    assert "over the gateway's limit of 1,048,576 bytes" in answer.json()["error"]
    assert gateway.log[-1].status == 413
    assert _post(gateway, b'{"name": "Ada"}', "application/json; charset=UTF-8").status_code == 200
