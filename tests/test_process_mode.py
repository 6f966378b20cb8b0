"""The same mesh behaviours with instances in the kernel and as OS processes (``mode="processes"``):
discovery through kills and revivals, faults and partitions, policies set in the notebook and
applied by every caller, and call trees — and, for processes, real crashes and no process left
behind, whatever ends the kernel."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import grpc
import psutil
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from lessons.experiment import CHECKOUT
from mesh import Mesh, burst
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.services import shop_topology
from mesh.telemetry.otlp import OtlpReceiver
from mesh.telemetry.tracing import Tracing

from .conftest import BOTH_MODES, instance_processes

HELLO = HelloRequest(name="Jason")

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@BOTH_MODES
def test_faults_and_partitions_reach_the_instance(mode):
    with Mesh(shop_topology(1), mode=mode, name=f"modes-faults-{mode}") as mesh:
        mesh.wait_until_passing()
        fraud = mesh.client("fraud")
        from mesh.pb.shop_pb2 import ScoreRequest

        request = ScoreRequest(user="ada", amount_cents=100)
        mesh.inject("fraud-1", abort_code="UNAVAILABLE", abort_percent=100)
        assert mesh.faults("fraud-1").abort_percent == 100
        assert {r.code for r in burst(fraud.Score, request, calls=3)} == {"UNAVAILABLE"}
        mesh.inject("fraud-1", abort_percent=0, delay=0.15)
        assert min(r.latency for r in burst(fraud.Score, request, calls=3)) >= 0.15
        mesh.clear_faults("fraud-1")
        assert max(r.latency for r in burst(fraud.Score, request, calls=3)) < 0.15
        mesh.partition("payments", "fraud")  # only payments' calls are dropped, not the notebook's
        assert {r.code for r in burst(fraud.Score, request, calls=2)} == {"OK"}
        (failed,) = burst(mesh.client("frontend").Checkout, CHECKOUT, calls=1, timeout=1.0)
        assert failed.code == "DEADLINE_EXCEEDED"
        mesh.heal("payments", "fraud")
        assert {r.code for r in burst(mesh.client("frontend").Checkout, CHECKOUT, calls=2)} == {"OK"}


@BOTH_MODES
def test_a_policy_set_in_the_notebook_applies_in_every_caller(mode):
    with Mesh(shop_topology(1), mode=mode, name=f"modes-policy-{mode}") as mesh:
        mesh.wait_until_passing()
        checkout = mesh.client("frontend").Checkout
        mesh.inject("fraud-1", delay=2.0)
        (slow,) = burst(checkout, CHECKOUT, calls=1, timeout=1.5)
        assert slow.code == "DEADLINE_EXCEEDED" and slow.latency >= 1.4  # waited for fraud
        # payments (in its own process, in that mode) obeys a policy set here; a process reads
        # it from the config center within milliseconds, hence the wait
        mesh.set_policy("fraud", timeout=0.2)
        mesh.wait_until(lambda: burst(checkout, CHECKOUT, calls=1, timeout=1.5)[0].latency < 0.8, timeout=10)
        (call,) = burst(checkout, CHECKOUT, calls=1, timeout=1.5)
        assert call.code == "DEADLINE_EXCEEDED" and call.latency < 0.8
        mesh.reset_policy("fraud")
        mesh.clear_faults()
        mesh.inject("fraud-1", abort_code="UNAVAILABLE", abort_percent=100)
        mesh.add_service("fraud", 1)
        mesh.wait_until_passing()
        mesh.set_policy("fraud", max_attempts=3, retry_on="UNAVAILABLE")  # the retry finds fraud-2
        mesh.wait_until(lambda: burst(checkout, CHECKOUT, calls=1)[0].code == "OK", timeout=10)
        assert {r.code for r in burst(checkout, CHECKOUT, calls=6)} == {"OK"}


@BOTH_MODES
def test_a_checkout_is_the_same_call_tree_in_both_modes(mode):
    with Mesh(shop_topology(1), mode=mode, name=f"modes-trace-{mode}") as mesh:
        mesh.wait_until_passing()
        mesh.tracing.clear()
        burst(mesh.client("frontend").Checkout, CHECKOUT, calls=1)
        # each process sends its spans on its own, within a tenth of a second: wait for all five
        mesh.wait_until(lambda: len(mesh.traces()) == 1 and len(list(mesh.traces()[0].walk())) == 5,
                        timeout=5)
        tree = [(depth, node.service, node.method, node.instance, node.status)
                for depth, node in mesh.traces()[0].walk()]
        assert tree == [(0, "frontend", "Checkout", "frontend-1", "OK"),
                        (1, "orders", "CreateOrder", "orders-1", "OK"),
                        (2, "inventory", "Reserve", "inventory-1", "OK"),
                        (2, "payments", "Charge", "payments-1", "OK"),
                        (3, "fraud", "Score", "fraud-1", "OK")]
        assert mesh.tracing.dependency_graph().has_edge("payments", "fraud")
        # metrics of the calls between services: made in the kernel, or derived from the spans
        # the processes sent (what the console and the map read) — each process sends its own
        # server spans, so the last may come a little after the call tree is whole
        edges = {(r["caller"], r["callee"], r["code"]) for r in mesh.metrics.recent(30, kind="client")}
        assert ("payments", "fraud", "OK") in edges and ("orders", "inventory", "OK") in edges
        mesh.wait_until(lambda: {(r["instance"], r["method"]) for r in mesh.metrics.recent(30)} >= {
            ("frontend-1", "Checkout"), ("orders-1", "CreateOrder"), ("inventory-1", "Reserve"),
            ("payments-1", "Charge"), ("fraud-1", "Score")}, timeout=5)


def _checkout(mesh) -> str:
    (record,) = burst(mesh.client("frontend").Checkout, CHECKOUT, calls=1, timeout=3)
    return record.code


@BOTH_MODES
def test_an_access_rule_and_a_fallback_set_in_the_notebook_hold_in_every_caller(mode):
    from mesh.pb.shop_pb2 import ScoreReply, ScoreRequest

    with Mesh(shop_topology(1), mode=mode, name=f"modes-shared-{mode}") as mesh:
        mesh.wait_until_passing()
        score = mesh.client("fraud").Score
        request = ScoreRequest(user="ada", amount_cents=100)
        mesh.allow_callers("fraud", ["payments"])  # payments proves who it is with the mesh's key
        mesh.wait_until(lambda: burst(score, request, calls=1)[0].code == "PERMISSION_DENIED", timeout=15)
        assert _checkout(mesh) == "OK"
        mesh.allow_callers("fraud", ["orders"])
        mesh.wait_until(lambda: _checkout(mesh) == "PERMISSION_DENIED", timeout=15)
        mesh.allow_callers("fraud", None)
        mesh.wait_until(lambda: _checkout(mesh) == "OK", timeout=15)
        mesh.inject("fraud-1", abort_code="UNAVAILABLE", abort_percent=100)
        assert _checkout(mesh) == "UNAVAILABLE"
        mesh.fallback("fraud", "Score", static=ScoreReply(risk=0.5))  # payments answers with it
        mesh.wait_until(lambda: _checkout(mesh) == "OK", timeout=15)


def test_the_bus_replicas_are_processes_serving_the_log_the_kernel_keeps():
    """The bus's replicas share one log: the kernel keeps it, each replica is a process serving
    from it. A replica's crash loses no message; the log's refusals reach the caller as given."""
    from mesh.bus import Bus, Consumer
    from mesh.pb import bus_pb2
    from mesh.processes.instance import ProcessInstance

    with Mesh({"greeter": 1}, mode="processes", name="modes-bus") as mesh:
        bus = Bus(mesh, replicas=2)
        assert all(isinstance(i, ProcessInstance) and i.running for i in mesh.instances("bus"))
        bus.create_topic("orders")
        bus.subscribe("billing", "orders")
        for n in range(10):
            bus.publish("orders", f"o{n}")
        mesh.kill("bus-1")  # SIGKILL: the other replica serves, from the same log
        mesh.wait_until(lambda: mesh.passing("bus") == ["bus-2"], timeout=15)
        for n in range(10, 20):
            bus.publish("orders", f"o{n}")
        with pytest.raises(grpc.RpcError) as refused:
            bus.stub.Publish(bus_pb2.PublishRequest(topic="nope", data=b"x"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no topic" in refused.value.details()
        seen = []
        with Consumer(bus, "billing", lambda data, _attributes: seen.append(data)):
            mesh.wait_until(lambda: bus.backlog("billing") == 0, timeout=15)
        assert sorted(seen) == sorted(f"o{n}".encode() for n in range(20))
        log = bus.log_address
    with grpc.insecure_channel(log) as channel, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=1)  # the log stopped with its mesh


def test_a_service_defined_at_run_time_runs_in_the_kernel_beside_the_processes():
    """A kind made in a notebook cell cannot be imported by name in another process: it runs in
    the kernel, and is discovered and called like the processes."""
    import dataclasses

    from mesh import Instance
    from mesh.processes.instance import ProcessInstance
    from mesh.services import GREETER

    hello = dataclasses.replace(GREETER, name="hello")
    with Mesh({"greeter": 1}, mode="processes", name="modes-hybrid") as mesh:
        mesh.add_service(hello, 1)
        mesh.wait_until_passing()
        assert isinstance(mesh.instance("hello-1"), Instance)
        assert not isinstance(mesh.instance("hello-1"), ProcessInstance)
        assert isinstance(mesh.instance("greeter-1"), ProcessInstance)
        (record,) = burst(mesh.client("hello").SayHello, HELLO, calls=1)
        assert (record.ok, record.served_by) == (True, "hello-1")


def test_a_kill_is_a_real_crash_and_a_revival_a_new_process():
    with Mesh({"greeter": 1}, mode="processes", name="modes-crash") as mesh:
        mesh.wait_until_passing()
        instance = mesh.instance("greeter-1")
        with pytest.raises(NotImplementedError, match=r"mesh\.kill"):
            instance.set_serving(False)
        first = instance.pid
        mesh.kill("greeter-1")
        assert not _alive(first) and instance.pid is None
        # SIGKILL deregisters nothing: the registry learns of the crash from its health check
        assert "greeter-1" in [s["ID"] for s in mesh.consul.agent.services().values()]
        mesh.wait_until(lambda: mesh.health("greeter")[0]["status"] == "critical", timeout=10)
        mesh.revive("greeter-1")
        assert instance.pid != first and _alive(instance.pid)
        mesh.wait_until_passing()
        pids = [i.pid for i in mesh.instances()]
        # what every module's check after its tests finds (tests/conftest.py)
        assert {p.pid for p in instance_processes()} == set(pids)
    assert not any(_alive(pid) for pid in pids) and instance_processes() == []


def test_a_process_that_cannot_start_says_why():
    with Mesh({"greeter": 1}, mode="processes", name="modes-bad-start") as mesh:
        taken = mesh.instance("greeter-1").port
        from mesh.processes import ProcessInstance, RemoteFaults
        from mesh.services import KINDS

        faults = RemoteFaults(mesh.consul, mesh.keys, "greeter-9")
        clash = ProcessInstance(mesh.placement.spec, KINDS["greeter"], 9, faults)
        clash.listen_port = taken  # someone else's port
        with pytest.raises(RuntimeError, match=r"(?s)greeter-9 did not start: .*cannot listen"):
            clash.start()
        assert not clash.running
    with pytest.raises(ValueError, match="mode must be one of"):
        Mesh({}, mode="threads")
    with pytest.raises(ValueError, match="hosts need mode='processes'"):
        Mesh({}, hosts=object())


SCRIPT = textwrap.dedent("""
    import sys, time
    from mesh import Mesh
    mesh = Mesh({"greeter": 2}, mode="processes", name="orphans")
    print(" ".join(str(i.pid) for i in mesh.instances()), flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("ending", ["SIGKILL", "SIGTERM", "exit"])
def test_no_process_outlives_its_kernel(ending):
    script = SCRIPT if ending != "exit" else SCRIPT.replace("time.sleep(60)", "sys.exit(0)")
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as kernel:
        try:
            pids = [int(p) for p in kernel.stdout.readline().split()]
            assert len(pids) == 2 and all(_alive(p) for p in pids)
            if ending != "exit":
                kernel.send_signal(getattr(signal, ending))
            kernel.wait(timeout=20)
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(_alive(p) for p in pids), f"left behind after {ending}: {pids}"
        finally:
            if kernel.poll() is None:
                kernel.kill()


def test_the_otlp_receiver_records_spans_and_rejects_malformed_ids():
    from mesh.telemetry.metrics import Metrics

    tracing, metrics = Tracing("otlp-test"), Metrics()
    receiver = OtlpReceiver(tracing.store, metrics)
    try:
        from opentelemetry.proto.trace.v1 import trace_pb2

        good = trace_pb2.Span(trace_id=bytes(range(16)), span_id=bytes(range(8)), name="greeter/SayHello",
                              kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=1_000,
                              end_time_unix_nano=5_000)
        good.attributes.add(key="mesh.instance").value.string_value = "greeter-1"
        bad = trace_pb2.Span(trace_id=b"short", span_id=bytes(8), name="bad")
        odd = trace_pb2.Span(trace_id=bytes(range(16)), span_id=bytes(range(1, 9)), name="client",
                             kind=trace_pb2.Span.SPAN_KIND_CLIENT, parent_span_id=bytes(range(8)))
        odd.attributes.add(key="mesh.callee").value.string_value = "fraud"
        odd.attributes.add(key="mesh.attempt").value.string_value = "not a number"
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.resource_spans.add().scope_spans.add().spans.extend([good, bad, odd])
        with grpc.insecure_channel(receiver.address) as channel:
            reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=5)
        assert reply.partial_success.rejected_spans == 1 and receiver.received == 2
        # the server span stands for a served call; the odd client span is kept as a trace only
        assert [(r["instance"], r["code"]) for r in metrics.server_rows] == [("greeter-1", "OK")]
        assert list(metrics.client_rows) == []
        span = next(s for s in tracing.spans() if s.name == "greeter/SayHello")
        assert span.name == "greeter/SayHello" and span.attributes["mesh.instance"] == "greeter-1"
        assert span.context.trace_id == int.from_bytes(bytes(range(16)), "big")
        assert (span.start_time, span.end_time) == (1_000, 5_000)
    finally:
        receiver.stop()
        tracing.shutdown()



def test_the_otlp_receiver_keeps_log_records_as_the_kernels_own_and_refuses_a_flood():
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
    from opentelemetry.proto.logs.v1 import logs_pb2

    from mesh.telemetry.logs import LogStore
    from mesh.telemetry.otlp import MAX_SPANS_PER_EXPORT

    tracing, logs = Tracing("otlp-logs"), LogStore("otlp-logs")
    receiver = OtlpReceiver(tracing.store, logs=logs)
    try:
        warned = logs_pb2.LogRecord(time_unix_nano=2_000_000_000, severity_number=13, severity_text="WARN",
                                    trace_id=bytes(range(16)), span_id=bytes(range(8)))
        warned.body.string_value = "Score INTERNAL 3.0 ms"
        for key, value in (("service", "fraud"), ("instance", "fraud-1"), ("code", "INTERNAL"),
                           ("code.file.path", "/somewhere.py")):
            warned.attributes.add(key=key).value.string_value = value
        # no time (only when it was observed), no severity, no trace, a number for its body
        bare = logs_pb2.LogRecord(observed_time_unix_nano=1_000_000_000)
        bare.body.int_value = 42
        request = logs_service_pb2.ExportLogsServiceRequest()
        scope = request.resource_logs.add().scope_logs.add()
        scope.scope.name = "mesh.service.access"
        scope.log_records.extend([warned, bare])
        flood = logs_service_pb2.ExportLogsServiceRequest()
        flood.resource_logs.add().scope_logs.add().log_records.extend(
            [logs_pb2.LogRecord()] * (MAX_SPANS_PER_EXPORT + 1))
        with grpc.insecure_channel(receiver.address) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            stub.Export(request, timeout=5)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(flood, timeout=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        first, second = logs.records()  # by the time each was logged
        assert (first["time"], first["message"], first["level"], first["trace_id"]) == (1.0, "42", "INFO", "")
        assert second == {"time": 2.0, "level": "WARNING", "logger": "mesh.service.access",
                          "message": "Score INTERNAL 3.0 ms", "trace_id": bytes(range(16)).hex(),
                          "span_id": bytes(range(8)).hex(), "service": "fraud", "instance": "fraud-1",
                          "mesh": "", "code": "INTERNAL"}
        assert [r["service"] for r in logs.records(level="warning")] == ["fraud"]
        assert receiver.received == 2
    finally:
        receiver.stop()
        tracing.shutdown()
