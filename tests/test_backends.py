"""The same behaviours against every registry backend present: embedded, CONSUL_HTTP_ADDR, consul -dev.

The embedded backend always runs. The real-Consul runs skip, saying why, when no agent address is
exported and no ``consul`` binary is on PATH (neither can be installed from this project's package
registries; ``binder/postBuild`` installs the binary on Binder).
"""

from __future__ import annotations

import os
import uuid
from concurrent import futures

import consul
import dns.resolver
import pytest

from mesh import Mesh, burst, tally
from mesh.control.backends import Backend, BackendUnavailable, consul_binary, parse_http_addr, start_backend
from mesh.pb.greeter_pb2 import HelloRequest

from .conftest import TcpListener, eventually

PARAMS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("env", id="consul-http-addr", marks=[pytest.mark.consul, pytest.mark.skipif(
        not os.environ.get("CONSUL_HTTP_ADDR"), reason="CONSUL_HTTP_ADDR is not set: no existing agent")]),
    pytest.param("consul", id="consul-dev", marks=[pytest.mark.consul, pytest.mark.skipif(
        consul_binary() is None, reason="no `consul` binary on PATH")]),
]


@pytest.fixture(params=PARAMS)
def backend(request):
    b = start_backend(request.param)
    yield b
    b.stop()


@pytest.fixture
def c(backend: Backend):
    client = backend.client()
    yield client
    client.http.session.close()


@pytest.fixture
def name() -> str:
    """A service name no other test (or other user of a shared agent) uses."""
    return f"wb-{uuid.uuid4().hex[:8]}"


def _ids(c: consul.Consul, name: str, **kw) -> list[str]:
    return sorted(e["Service"]["ID"] for e in c.health.service(name, **kw)[1])


@pytest.mark.slow
def test_tcp_check_passes_then_fails_when_the_listener_dies(c, name):
    listener = TcpListener()
    try:
        c.agent.service.register(name, service_id=f"{name}-1", address="127.0.0.1", port=listener.port,
                                 check=consul.Check.tcp("127.0.0.1", listener.port, "1s", timeout="1s"))
        eventually(lambda: _ids(c, name, passing=True) == [f"{name}-1"])
        listener.close()
        eventually(lambda: _ids(c, name, passing=True) == [], timeout=10)
        assert _ids(c, name) == [f"{name}-1"]
    finally:
        listener.close()
        c.agent.service.deregister(f"{name}-1")
    assert _ids(c, name) == []


def test_tags_filters_and_blocking(c, name):
    try:
        index, _ = c.health.service(name)
        with futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(c.health.service, name, index=index, wait="10s")
            c.agent.service.register(name, service_id=f"{name}-a", port=1, tags=["blue"])
            new_index, entries = waiting.result(timeout=10)
        assert int(new_index) > int(index) and [e["Service"]["ID"] for e in entries] == [f"{name}-a"]
        c.agent.service.register(name, service_id=f"{name}-b", port=2, tags=["green"])
        assert _ids(c, name, tag="green") == [f"{name}-b"]
        _, filtered = c.health.service(name, filter_expr='Service.Tags contains "blue"')
        assert [e["Service"]["ID"] for e in filtered] == [f"{name}-a"]
    finally:
        for sid in (f"{name}-a", f"{name}-b"):
            c.agent.service.deregister(sid)


def test_kv_cas_and_locks(c, name):
    key = f"{name}/leader"
    session = c.session.create(name=name, lock_delay=0)
    try:
        assert c.kv.put(key, "x", cas=0) is True
        assert c.kv.put(key, "y", cas=0) is False
        assert c.kv.put(key, "me", acquire=session) is True
        _, entry = c.kv.get(key)
        assert entry["Session"] == session and entry["Value"] == b"me"
        assert c.kv.put(key, "", release=session) is True
        assert c.kv.get(f"{name}/", keys=True)[1] == [key]
    finally:
        c.session.destroy(session)
        c.kv.delete(f"{name}/", recurse=True)


def test_dns_answers_a_and_srv(backend, c, name):
    if backend.dns_port is None:
        pytest.skip("this backend's DNS port is not known")
    c.agent.service.register(name, service_id=f"{name}-1", address="127.0.0.1", port=4321)
    try:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], backend.dns_port, 3.0
        assert [r.port for r in resolver.resolve(f"{name}.service.consul", "SRV")] == [4321]
        assert [r.address for r in resolver.resolve(f"{name}.service.consul", "A")] == ["127.0.0.1"]
    finally:
        c.agent.service.deregister(f"{name}-1")


@pytest.mark.slow
def test_a_mesh_runs_on_the_backend(backend):
    with Mesh({"greeter": 2}, registry=backend.http_address, name="backend-test") as mesh:
        mesh.wait_until_passing()
        counts = tally(burst(mesh.client("greeter").SayHello, HelloRequest(name="x"), calls=10))
        assert counts == {"greeter-1": 5, "greeter-2": 5}
    assert [s for s in backend.client().agent.services() if s.startswith("greeter-")] == []


def test_missing_backends_are_clear_errors(monkeypatch):
    monkeypatch.delenv("CONSUL_HTTP_ADDR", raising=False)
    with pytest.raises(BackendUnavailable, match="CONSUL_HTTP_ADDR is not set"):
        start_backend("env")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BackendUnavailable, match="no `consul` binary"):
        start_backend("consul")
    auto = start_backend("auto")
    try:
        assert auto.kind == "embedded"
    finally:
        auto.stop()
    with pytest.raises(TypeError, match="not int"):
        start_backend(8500)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8500", ("127.0.0.1", 8500)), ("http://localhost:8501", ("localhost", 8501)),
])
def test_parse_http_addr(text, expected):
    assert parse_http_addr(text) == expected
    with pytest.raises(ValueError):
        parse_http_addr("nohost")


@pytest.mark.slow
def test_env_backend_attaches_to_the_agent_at_consul_http_addr(monkeypatch):
    import signal
    import subprocess
    import sys

    from .conftest import free_port

    port = free_port()
    agent = subprocess.Popen([sys.executable, "-m", "mesh.registry", "--http-port", str(port),
                              "--dns-port", "-1"], stdout=subprocess.PIPE, text=True)
    try:
        agent.stdout.readline()  # listening
        monkeypatch.setenv("CONSUL_HTTP_ADDR", f"http://127.0.0.1:{port}")
        with Mesh({"greeter": 1}, registry="auto", name="env-test") as mesh:
            assert mesh.backend.kind == "agent" and mesh.backend.http_port == port
            mesh.wait_until_passing()
            assert mesh.client("greeter").SayHello(HelloRequest(name="x")).age == 24
        assert agent.poll() is None  # the mesh left the agent running
    finally:
        agent.send_signal(signal.SIGINT)
        agent.communicate(timeout=15)
