"""``python -m mesh.registry`` runs standalone until interrupted, like ``consul agent -dev``."""

from __future__ import annotations

import signal
import subprocess
import sys

import consul
import pytest

from .conftest import free_port


@pytest.mark.slow
def test_standalone_registry_serves_until_interrupted():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.registry", "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        c = consul.Consul(port=port)
        assert c.agent.service.register("greeter", service_id="g1", port=50051)
        assert list(c.agent.services()) == ["g1"]
        c.http.session.close()
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
    assert f"cannot listen on 127.0.0.1:{registry.http_port}" in proc.stderr
