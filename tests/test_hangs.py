"""Nothing a service does can hang its caller or the mesh: a handler that never returns does not
hold a kill, a call to it ends at the default deadline, and a crash mid-call looks to the caller
as it would in production (UNAVAILABLE, retried by the default retry policy)."""

from __future__ import annotations

import threading

import grpc
import pytest

from mesh import Mesh
from mesh.pb import greeter_pb2, greeter_pb2_grpc
from mesh.policies import PolicySettings
from mesh.services import ServiceKind

HELLO = greeter_pb2.HelloRequest(name="Jason")


class _Hanging(greeter_pb2_grpc.GreeterServicer):
    """A Greeter whose handler waits for ``release`` — not for the instance's ``stopping`` event,
    as a handler stuck in a library call would."""

    release = threading.Event()
    entered = threading.Semaphore(0)

    def __init__(self, runtime=None):
        self.runtime = runtime

    def SayHello(self, request, context):
        _Hanging.entered.release()
        _Hanging.release.wait(60)
        return greeter_pb2.HelloReply(name="late")


HANGING = ServiceKind("hanging", "Greeter", _Hanging, greeter_pb2_grpc.add_GreeterServicer_to_server,
                      greeter_pb2_grpc.GreeterStub)


@pytest.fixture
def hanging_mesh():
    _Hanging.release.clear()
    with Mesh(name="hangs", seed=3) as mesh:
        mesh.add_service(HANGING, replicas=1)
        mesh.wait_until_passing("hanging")
        yield mesh
        _Hanging.release.set()  # let the stuck handler threads end before the next test


def _in_thread(function) -> tuple[threading.Thread, list]:
    result: list = []

    def run():
        try:
            result.append(function())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.slow
def test_a_kill_returns_while_a_handler_never_does_and_the_call_ends_for_its_caller(hanging_mesh):
    mesh = hanging_mesh
    stub = mesh.client("hanging")
    caller, outcome = _in_thread(lambda: stub.SayHello(HELLO, timeout=30))
    assert _Hanging.entered.acquire(timeout=5)
    killer, _ = _in_thread(lambda: mesh.kill("hanging-1"))
    killer.join(10)  # before the fix this join timed out: the kill waited for the handler
    assert not killer.is_alive()
    caller.join(10)
    assert not caller.is_alive() and isinstance(outcome[0], grpc.RpcError)
    assert outcome[0].code() == grpc.StatusCode.UNAVAILABLE  # a crash mid-call, not a cancel
    assert not _Hanging.release.is_set()  # the handler is still stuck: the kill did not wait for it


def test_calls_have_a_default_deadline_that_the_policy_changes(hanging_mesh):
    mesh = hanging_mesh
    assert PolicySettings().timeout == 10.0
    mesh.set_policy("hanging", timeout=0.3)
    stub = mesh.client("hanging")
    with pytest.raises(grpc.RpcError) as ended:
        stub.SayHello(HELLO)  # no timeout of its own: the policy's applies
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


class _CutOff(greeter_pb2_grpc.GreeterServicer):
    """Instance 1 cuts its calls off (CANCELLED from the server's side, as a crash mid-call can
    look on the wire); the others answer."""

    def __init__(self, runtime):
        self.runtime = runtime

    def SayHello(self, request, context):
        if self.runtime.instance.number == 1:
            context.abort(grpc.StatusCode.CANCELLED, "Received RST_STREAM with error code 8")
        return greeter_pb2.HelloReply(name=self.runtime.instance.id)


CUT_OFF = ServiceKind("cutoff", "Greeter", _CutOff, greeter_pb2_grpc.add_GreeterServicer_to_server,
                      greeter_pb2_grpc.GreeterStub)


def test_a_call_the_server_cut_off_is_unavailable_and_the_default_retry_policy_retries_it():
    """In a kill/revive soak 1 call in 25,111 failed CANCELLED, which ``retry_on`` does not name."""
    with Mesh(name="cutoff", seed=1) as mesh:
        mesh.add_service(CUT_OFF, replicas=3)
        mesh.wait_until_passing("cutoff")
        stub = mesh.client("cutoff")
        with pytest.raises(grpc.RpcError) as cut:
            for _ in range(3):  # round robin reaches cutoff-1 within three calls
                stub.SayHello(HELLO, timeout=2)
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cutoff-1 went away mid-call" in cut.value.details()
        mesh.set_policy("cutoff", max_attempts=2)
        answers = {stub.SayHello(HELLO, timeout=2).name for _ in range(9)}
        assert answers == {"cutoff-2", "cutoff-3"}


def test_a_call_its_own_caller_cancelled_stays_cancelled():
    from mesh.client.outcome import LOCALLY_CANCELLED, MeshRpcError, as_seen_by_caller

    mine = MeshRpcError(grpc.StatusCode.CANCELLED, LOCALLY_CANCELLED)
    assert as_seen_by_caller(mine, "greeter-1") is mine
    deadline = MeshRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    assert as_seen_by_caller(deadline, "greeter-1") is deadline
