"""Identity on every call: a service with an access rule checks the caller's signed identity on all
four kinds of call, a token is good only for the service it was sent to, and the admin interface
answers the mesh's operator alone — while health checks stay open."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import Mesh
from mesh.client.identity import OPERATOR
from mesh.pb import admin_pb2, admin_pb2_grpc, streams_pb2, streams_pb2_grpc
from mesh.services import ServiceKind, TickerServicer

TICKER = ServiceKind("ticker", "streams.Ticker", lambda runtime: TickerServicer(),
                     streams_pb2_grpc.add_TickerServicer_to_server, streams_pb2_grpc.TickerStub)


def calls(greeter, ticker, identity) -> dict:
    """One call of each of the four kinds, made and read whole when called; ``identity(callee)``
    is the metadata to send to ``callee``."""
    from mesh.pb.greeter_pb2 import HelloRequest

    return {
        "unary": lambda: greeter.SayHello(HelloRequest(name="Ada"), metadata=identity("greeter"),
                                          timeout=5).name,
        "server streaming": lambda: [t.remaining for t in ticker.Countdown(
            streams_pb2.CountdownRequest(start=2, interval=0), metadata=identity("ticker"), timeout=5)],
        "client streaming": lambda: ticker.Sum(iter([streams_pb2.Number(value=v) for v in (2, 3)]),
                                               metadata=identity("ticker"), timeout=5).sum,
        "bidirectional": lambda: [line.text for line in ticker.Chat(
            iter([streams_pb2.Line(seq=1, text="hi")]), metadata=identity("ticker"), timeout=5)],
    }


@pytest.fixture(scope="module")
def ticking():
    with Mesh({"greeter": 1}, name="identity-tests", seed=2) as mesh:
        mesh.add_service(TICKER)
        mesh.wait_until_passing()
        yield mesh


def test_a_rule_covers_every_kind_of_call_not_just_unary_ones(ticking):
    greeter, ticker = ticking.instance("greeter-1"), ticking.instance("ticker-1")
    with grpc.insecure_channel(greeter.address) as to_greeter, \
            grpc.insecure_channel(ticker.address) as to_ticker:
        stubs = greeter.kind.stub(to_greeter), streams_pb2_grpc.TickerStub(to_ticker)

        def as_caller(caller):
            if caller is None:
                return lambda callee: ()
            return lambda callee: (("x-identity", ticking.identities.token(caller, callee)),)

        def answers(caller):
            return {kind: call() for kind, call in calls(*stubs, as_caller(caller)).items()}

        open_answers = answers(None)  # no rule yet
        assert open_answers == {"unary": "Ada", "server streaming": [2, 1], "client streaming": 5,
                                "bidirectional": ["heard 'hi'"]}
        ticking.allow_callers("greeter", ["payments"])
        ticking.allow_callers("ticker", ["payments"])
        try:
            assert answers("payments") == open_answers
            for caller, code, words in (
                    (None, grpc.StatusCode.UNAUTHENTICATED, "carries no x-identity token"),
                    ("frontend", grpc.StatusCode.PERMISSION_DENIED, "frontend may not call")):
                for kind, call in calls(*stubs, as_caller(caller)).items():
                    with pytest.raises(grpc.RpcError) as refused:
                        call()
                    assert refused.value.code() == code, kind
                    assert words in refused.value.details(), kind
        finally:
            ticking.allow_callers("greeter", None)
            ticking.allow_callers("ticker", None)


def test_a_token_sent_to_one_service_is_refused_by_another(ticking):
    from mesh.pb.greeter_pb2 import HelloRequest

    greeter = ticking.instance("greeter-1")
    ticking.allow_callers("greeter", ["payments"])
    ticking.allow_callers("ticker", ["payments"])
    try:
        for_ticker = ticking.identities.token("payments", "ticker")
        with grpc.insecure_channel(greeter.address) as channel:
            stub = greeter.kind.stub(channel)
            with pytest.raises(grpc.RpcError) as replayed:  # a unary call, replaying ticker's token
                stub.SayHello(HelloRequest(name="x"), metadata=(("x-identity", for_ticker),), timeout=5)
            assert replayed.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "not issued for calls to greeter" in replayed.value.details()
            own = ticking.identities.token("payments", "greeter")
            assert stub.SayHello(HelloRequest(name="x"), metadata=(("x-identity", own),), timeout=5).name
    finally:
        ticking.allow_callers("greeter", None)
        ticking.allow_callers("ticker", None)


@pytest.mark.parametrize("mode", ["kernel", "processes"])
def test_with_a_rule_the_admin_interface_answers_the_operator_alone_and_health_stays_open(mode):
    with Mesh({"greeter": 1}, name=f"identity-admin-{mode}", seed=4, mode=mode) as mesh:
        mesh.wait_until_passing()
        greeter = mesh.instance("greeter-1")
        with grpc.insecure_channel(greeter.address) as channel:
            admin = admin_pb2_grpc.AdminStub(channel)
            ask = admin_pb2.StatusRequest(recent_errors=3)
            assert admin.Status(ask, timeout=5).instance == "greeter-1"  # no rule: open
            mesh.allow_callers("greeter", ["payments"])
            mesh.wait_until(lambda: _refused(admin, ask, ()), timeout=10)  # processes follow the KV store
            refused = _refused(admin, ask, (("x-identity", mesh.identities.token("payments", "greeter")),))
            assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may not read greeter's admin interface" in refused.details()
            operator = (("x-identity", mesh.identities.token(OPERATOR, "greeter")),)
            assert admin.Status(ask, metadata=operator, timeout=5).instance == "greeter-1"
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # open: checks need it
        if mode == "processes":  # the notebook's own view of its processes still works
            assert greeter.status() is not None and mesh.in_flight() == {}


def _refused(admin, ask, metadata) -> grpc.RpcError | None:
    try:
        admin.Status(ask, metadata=metadata, timeout=5)
    except grpc.RpcError as error:
        return error
    return None
