"""Lesson 11 (the service framework, 6.6.4's list): what a framework gives every service, each part
shown on the real mesh — the admin interface and reflection (:mod:`mesh.core.admin`), unified rich
errors (:mod:`mesh.client.errors`, the gateway's error body), API documentation (the gateway's OpenAPI
document and Swagger UI), and service-to-service identity (:mod:`mesh.client.identity`).

:data:`CHECKLIST` maps every item of the chapter's framework list to where the workbench has it;
:func:`error_mapping` and :func:`operations` turn the gateway's rules and document into tables.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from mesh.gateway import HTTP_STATUS, PUBLIC_ERRORS

__all__ = ["CHECKLIST", "RISKY_ORDER", "as_dict", "error_mapping", "operations", "post_json", "troubled_shop",
           "who_may_call"]

#: The chapter's list of what a service framework provides, and where each part is in the workbench.
CHECKLIST = [
    {"framework part": "self-registration with the registry", "lesson": "00, 03",
     "here": "mesh.Mesh.add_service → Consul API"},
    {"framework part": "health checks", "lesson": "00, 03",
     "here": "grpc.health.v1 on every instance; gRPC/TCP/TTL checks"},
    {"framework part": "client-side load balancing", "lesson": "04",
     "here": "mesh.policies.balancers, the balanced channel"},
    {"framework part": "logs, metrics, traces", "lesson": "10",
     "here": "mesh.logs, mesh.prometheus, mesh.tracing (OpenTelemetry)"},
    {"framework part": "REST and RPC", "lesson": "02, 08",
     "here": "gRPC inside, the gateway's JSON routes outside"},
    {"framework part": "dynamic configuration", "lesson": "03",
     "here": "mesh.config: the config center on the KV store"},
    {"framework part": "limits (rate, concurrency)", "lesson": "05, 08",
     "here": "rate limiters, bulkheads, breakers in the call plan"},
    {"framework part": "admin interface", "lesson": "11",
     "here": "admin.Admin/Status on every instance, gRPC reflection"},
    {"framework part": "unified error handling", "lesson": "11",
     "here": "google.rpc.ErrorInfo reasons, the gateway's error body"},
    {"framework part": "security plugins", "lesson": "08, 11",
     "here": "JWT scopes at the gateway; signed service identities inside"},
    {"framework part": "Swagger documentation", "lesson": "11",
     "here": "/openapi.json and /docs (Swagger UI) on the gateway"},
]


def as_dict(message) -> dict[str, Any]:
    """Return a protobuf message as a plain dict (field names as in the .proto)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def error_mapping(codes=("INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND", "PERMISSION_DENIED",
                         "UNAUTHENTICATED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                         "INTERNAL")) -> list[dict[str, Any]]:
    """Return how the gateway answers a call that failed with each gRPC status."""
    return [{"gRPC status": code, "HTTP status": HTTP_STATUS[code],
             "what the caller reads": PUBLIC_ERRORS.get(code, "the service failed")} for code in codes]


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return an OpenAPI document's operations as table rows."""
    rows = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            scopes = [scope for item in operation.get("security", []) for scope in item["bearer"]]
            rows.append({"operation": f"{method.upper()} {path}", "calls": operation["operationId"],
                         "needs": ", ".join(scopes) or "-",
                         "answers": ", ".join(sorted(operation["responses"]))})
    return rows


RISKY_ORDER = {"user": "ada", "card": "4242", "items": [{"sku": "yuzu", "quantity": 200}]}


def troubled_shop(name: str = "framework", seed: int = 0):
    """Start the shop (one replica each) and give payments something to report: a breaker on its
    calls to fraud, and five checkouts while fraud fails every call. Return the running mesh."""
    import contextlib

    import grpc

    from mesh import Mesh
    from mesh.services import shop_topology

    from .experiment import CHECKOUT

    mesh = Mesh(shop_topology(1), name=name, seed=seed)
    mesh.wait_until_passing()
    mesh.set_policy("fraud", breaker_failure_rate=50, breaker_minimum_calls=2, breaker_window=4)
    mesh.inject("fraud-1", abort_code="INTERNAL", abort_percent=100)
    for _ in range(5):
        with contextlib.suppress(grpc.RpcError):  # the failures are the point
            mesh.client("frontend").Checkout(CHECKOUT, timeout=2)
    mesh.clear_faults()
    return mesh


def post_json(url: str, body: dict[str, Any], token: str = "") -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON (with a bearer ``token``); return the HTTP status and the JSON answer."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, json.loads(answer.read())


def who_may_call(mesh, service: str = "fraud") -> list[dict[str, str]]:
    """Try ``service`` three ways — through its allowed caller (a checkout), from the notebook
    through the mesh, and straight to its instance with a forged ``x-caller`` — and return how each
    ended (after ``mesh.allow_callers`` has set a rule)."""
    import grpc

    from mesh.client.headers import CALLER
    from mesh.pb import shop_pb2

    from .experiment import CHECKOUT

    score = shop_pb2.ScoreRequest(user="ada", amount_cents=100)
    instance = mesh.instance(f"{service}-1")
    with grpc.insecure_channel(instance.address) as channel:
        forged = instance.kind.stub(channel).Score
        attempts = {"a checkout (frontend → orders → payments → fraud)":
                        lambda: mesh.client("frontend").Checkout(CHECKOUT, timeout=2),
                    "the notebook, through the mesh": lambda: mesh.client(service).Score(score, timeout=2),
                    "straight to the instance, claiming x-caller: payments":
                        lambda: forged(score, timeout=2, metadata=[(CALLER, "payments")])}
        rows = []
        for who, call in attempts.items():
            try:
                call()
                rows.append({"caller": who, "outcome": "OK", "why": ""})
            except grpc.RpcError as refused:
                rows.append({"caller": who, "outcome": refused.code().name, "why": refused.details()})
    return rows
