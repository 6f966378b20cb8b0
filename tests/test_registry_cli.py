"""``python -m mesh.registry`` runs standalone until interrupted, like ``consul agent -dev``."""

from __future__ import annotations

import signal
import subprocess
import sys

import consul
import dns.resolver
import pytest

from .conftest import free_port, free_udp_port


@pytest.mark.slow
def test_standalone_registry_serves_until_interrupted():
    port, dns_port = free_port(), free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.registry", "--http-port", str(port), "--dns-port", str(dns_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        assert f"127.0.0.1:{dns_port}" in proc.stdout.readline()
        c = consul.Consul(port=port)
        assert c.agent.service.register("greeter", service_id="g1", address="127.0.0.1", port=50051)
        assert list(c.agent.services()) == ["g1"]
        c.http.session.close()
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], dns_port
        assert [r.port for r in resolver.resolve("greeter.service.consul", "SRV")] == [50051]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_port_in_use_is_a_clear_error(registry):
    proc = subprocess.run(
        [sys.executable, "-m", "mesh.registry", "--http-port", str(registry.http_port)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1 (HTTP {registry.http_port}" in proc.stderr
