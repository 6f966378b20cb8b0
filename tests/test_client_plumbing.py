"""The client stack's plumbing: its interceptor channel keeps gRPC's interceptor contract, and each
attempt's span — made when the call returns — carries the ids its ``traceparent`` sent."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mesh import Mesh, burst
from mesh.interceptors import CallDetails, InterceptedChannel, WrappedHandlers
from mesh.pb import greeter_pb2_grpc
from mesh.pb.greeter_pb2 import HelloReply, HelloRequest
from mesh.telemetry.tracing import Tracing

HELLO = HelloRequest(name="Jason")


class _Greeter(greeter_pb2_grpc.GreeterServicer):
    """Answers with the ``x-tag`` header it received; a name of "fail" is refused."""

    def SayHello(self, request, context):
        if request.name == "fail":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused")
        context.send_initial_metadata((("x-seen", dict(context.invocation_metadata()).get("x-tag", "")),))
        return HelloReply(name=f"hello {request.name}")


class _Tagging(grpc.UnaryUnaryClientInterceptor):
    """Adds ``x-tag: tagged`` and keeps what it saw: the details and each outcome's status."""

    def __init__(self):
        self.seen: list[tuple[str, float | None, str]] = []

    def intercept_unary_unary(self, continuation, details, request):
        metadata = [*(details.metadata or ()), ("x-tag", "tagged")]
        tagged = CallDetails(details.method, details.timeout, metadata, details.credentials,
                             details.wait_for_ready, details.compression)
        outcome = continuation(tagged, request)
        error = outcome.exception()
        self.seen.append((details.method, details.timeout, "OK" if error is None else type(error).__name__))
        return outcome


@pytest.fixture
def greeter_address():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    greeter_pb2_grpc.add_GreeterServicer_to_server(_Greeter(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.mark.parametrize("wrap", ["grpc.intercept_channel", "InterceptedChannel"])
def test_an_interceptor_works_the_same_through_grpc_and_through_the_mesh_channel(greeter_address, wrap):
    interceptor = _Tagging()
    channel = grpc.insecure_channel(greeter_address)
    wrapped = (grpc.intercept_channel(channel, interceptor) if wrap == "grpc.intercept_channel"
               else InterceptedChannel(channel, interceptor))
    stub = greeter_pb2_grpc.GreeterStub(wrapped)
    assert stub.SayHello(HELLO, timeout=5).name == "hello Jason"
    reply, call = stub.SayHello.with_call(HELLO, timeout=5)
    assert reply.name == "hello Jason"
    assert dict(call.initial_metadata())["x-seen"] == "tagged"  # the interceptor's header reached the server
    assert call.code() == grpc.StatusCode.OK
    with pytest.raises(grpc.RpcError) as refused:
        stub.SayHello(HelloRequest(name="fail"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stub.SayHello.future(HELLO, timeout=5).result().name == "hello Jason"
    method = "/Greeter/SayHello"
    assert [(m, t) for m, t, _ in interceptor.seen] == [(method, 5)] * 4
    assert [status for *_, status in interceptor.seen] == ["OK", "OK", "_InactiveRpcError", "OK"]
    wrapped.close()


def test_an_exception_below_the_interceptor_reaches_it_as_an_outcome_and_then_the_caller(greeter_address):
    interceptor = _Tagging()
    channel = grpc.insecure_channel(greeter_address)
    stub = greeter_pb2_grpc.GreeterStub(InterceptedChannel(channel, interceptor))
    channel.close()  # calling a closed channel raises ValueError, which is no gRPC error
    with pytest.raises(ValueError):
        stub.SayHello(HELLO, timeout=5)
    assert interceptor.seen == [("/Greeter/SayHello", 5, "ValueError")]


@pytest.fixture
def greeters():
    with Mesh({"greeter": 2}, name="plumbing", seed=3) as mesh:
        mesh.wait_until_passing()
        yield mesh


@pytest.mark.slow
def test_each_attempt_span_has_the_ids_its_traceparent_sent_and_retries_say_which_attempt(greeters):
    greeters.set_policy("greeter", balancer="round_robin", max_attempts=2, retry_on="UNAVAILABLE",
                        backoff_base=0.001, backoff_cap=0.002)
    greeters.inject("greeter-1", abort_code="UNAVAILABLE", abort_percent=100)
    greeters.tracing.clear()
    records = burst(greeters.client("greeter").SayHello, HELLO, calls=6)
    assert {r.code for r in records} == {"OK"}
    spans = greeters.tracing.spans()
    clients = {s.context.span_id: s for s in spans if s.kind == trace.SpanKind.CLIENT}
    servers = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert len(servers) == len(clients) > 6  # some calls needed a second attempt
    for server in servers:
        client = clients[server.parent.span_id]  # the server's parent is the span the client recorded
        assert client.context.trace_id == server.context.trace_id
        assert client.parent is None  # the notebook's calls start their traces
        assert server.attributes["mesh.attempt"] == client.attributes["mesh.attempt"]
        assert server.attributes["mesh.instance"] == client.attributes["mesh.instance"]
        assert client.start_time <= server.start_time and server.end_time <= client.end_time
    retried = {s.attributes["mesh.instance"] for s in servers if s.attributes["mesh.attempt"] == 2}
    failed = {s.attributes["mesh.instance"] for s in servers if s.attributes["rpc.grpc.status"] != "OK"}
    assert retried == {"greeter-2"} and failed == {"greeter-1"}


def test_a_span_made_after_its_call_reaches_every_processor_as_a_tracer_span_does():
    tracing = Tracing(name="store")
    exporter = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    with tracing.tracer.start_as_current_span("frontend/Checkout", kind=trace.SpanKind.SERVER) as server:
        parent = server.get_span_context()
    store = tracing.store
    span_id = store.new_span_id()
    store.finished("orders/CreateOrder", trace.SpanKind.CLIENT, parent.trace_id, span_id, parent.trace_flags,
                   parent, 1_000, 2_500, {"mesh.attempt": 2}, error="UNAVAILABLE")
    assert [s.name for s in exporter.get_finished_spans()] == ["frontend/Checkout", "orders/CreateOrder"]
    assert tracing.spans() == exporter.get_finished_spans()
    client = tracing.spans()[1]
    assert (client.context.trace_id, client.context.span_id) == (parent.trace_id, span_id)
    assert client.parent == parent and client.kind == trace.SpanKind.CLIENT
    assert (client.start_time, client.end_time) == (1_000, 2_500)
    assert dict(client.attributes) == {"mesh.attempt": 2}
    assert (client.status.status_code, client.status.description) == (trace.StatusCode.ERROR, "UNAVAILABLE")
    assert client.resource.attributes["service.name"] == "store"
    assert client.to_json()  # what an exporter would serialise
    tracing.shutdown()


def test_a_span_under_an_unsampled_parent_is_dropped_as_the_sampler_would():
    tracing = Tracing(name="unsampled")
    store = tracing.store
    unsampled = trace.SpanContext(store.new_trace_id(), store.new_span_id(), is_remote=True,
                                  trace_flags=trace.TraceFlags(0))
    store.finished("x/Y", trace.SpanKind.CLIENT, unsampled.trace_id, store.new_span_id(),
                   unsampled.trace_flags, unsampled, 1, 2, {})
    assert tracing.spans() == ()
    tracing.shutdown()


def test_a_server_interceptor_wraps_each_handler_once_and_still_sees_every_call():
    made, seen = [], []

    class Counting(grpc.ServerInterceptor):
        def __init__(self):
            self._handlers = WrappedHandlers()

        def intercept_service(self, continuation, details):
            def around(behaviour, request, context):
                seen.append(request.name)
                return behaviour(request, context)

            def make():
                made.append(details.method)
                return around

            return self._handlers.wrap(continuation(details), details.method, make)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[Counting()])
    greeter_pb2_grpc.add_GreeterServicer_to_server(_Greeter(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        replies = [stub.SayHello(HelloRequest(name=f"n{i}"), timeout=5).name for i in range(5)]
    server.stop(None)
    assert replies == [f"hello n{i}" for i in range(5)]
    assert seen == [f"n{i}" for i in range(5)]
    assert made == ["/Greeter/SayHello"]
