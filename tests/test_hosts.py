"""Hosts as network namespaces on a bridge: a mesh whose instances run on different hosts, a real
partition when a host's link goes down, and nothing left behind (root only; skipped otherwise)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time

import pytest

from mesh import Mesh, burst
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.processes.hosts import Hosts, available, sweep_leftovers

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(available()), reason=available() or "-")]

HELLO = HelloRequest(name="Jason")


def _names(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _serve_once(hosts: Hosts, host: str, port: int) -> subprocess.Popen:
    address = hosts.host(host).address
    code = (f"import socket; s = socket.create_server(('{address}', {port})); print('up', flush=True); "
            "c, _ = s.accept(); c.sendall(b'hello'); c.close()")
    server = subprocess.Popen(hosts.run(host, [sys.executable, "-c", code]), stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout.readline() == "up\n"
    return server


def _done(server: subprocess.Popen) -> None:
    server.wait(5)
    server.stdout.close()


def test_hosts_are_namespaces_joined_by_a_bridge_and_are_removed_whole():
    with Hosts(3) as hosts:
        names = [h.namespace for h in hosts.hosts]
        assert set(names) <= set(_names("netns", "list").split())
        assert len({h.address for h in hosts.hosts} | {hosts.gateway}) == 4
        assert all(ipaddress.ip_address(h.address) in hosts.subnet for h in hosts.hosts)
        # from the machine to h1, and from h2 to h1, over the bridge
        server = _serve_once(hosts, "h1", 7001)
        with socket.create_connection((hosts.host("h1").address, 7001), timeout=5) as conn:
            assert conn.recv(16) == b"hello"
        _done(server)
        server = _serve_once(hosts, "h1", 7002)
        h1 = hosts.host("h1").address
        probe = (f"import socket; c = socket.create_connection(('{h1}', 7002), timeout=5); "
                 "print(c.recv(16).decode())")
        assert subprocess.run(hosts.run("h2", [sys.executable, "-c", probe]), capture_output=True, text=True,
                              timeout=20).stdout == "hello\n"
        _done(server)
        # a link taken down is a partition: the connection attempt goes unanswered
        server = _serve_once(hosts, "h1", 7003)
        hosts.disconnect("h1")
        with pytest.raises(OSError):
            socket.create_connection((hosts.host("h1").address, 7003), timeout=1)
        hosts.reconnect("h1")
        with socket.create_connection((hosts.host("h1").address, 7003), timeout=5) as conn:
            assert conn.recv(16) == b"hello"
        _done(server)
        bridge = hosts.bridge
    assert not set(names) & set(_names("netns", "list").split())
    assert bridge not in _names("-o", "link", "show")
    with pytest.raises(ValueError, match="between 1 and 50"):
        Hosts(0)


def test_a_mesh_across_hosts_rides_out_a_partition_with_timeouts_and_retries():
    with Hosts(2) as hosts, Mesh({"greeter": 2}, mode="processes", hosts=hosts, name="across-hosts") as mesh:
        mesh.wait_until_passing()
        placed = {i.id: i.machine.name for i in mesh.instances()}
        assert placed == {"greeter-1": "h1", "greeter-2": "h2"}
        assert {e.address for e in mesh.endpoints("greeter")} == {h.address for h in hosts.hosts}
        greeter = mesh.client("greeter")
        assert {r.served_by for r in burst(greeter.SayHello, HELLO, calls=8)} == {"greeter-1", "greeter-2"}
        # the lesson's conclusion, on a real network path: a per-try timeout and a retry elsewhere
        # turn an unreachable replica into slower calls, not failed ones
        mesh.set_policy("greeter", per_try_timeout=0.3, max_attempts=3,
                        retry_on="UNAVAILABLE,DEADLINE_EXCEEDED", budget_tokens=100)
        hosts.disconnect("h1")
        during = burst(greeter.SayHello, HELLO, calls=10, timeout=3)
        assert all(r.ok for r in during) and {r.served_by for r in during} == {"greeter-2"}
        # the registry's check crosses the same cut link
        mesh.wait_until(lambda: mesh.health("greeter")[0]["status"] == "critical", timeout=10)
        hosts.reconnect("h1")
        mesh.wait_until_passing()
        assert {r.served_by for r in burst(greeter.SayHello, HELLO, calls=8)} == {"greeter-1", "greeter-2"}


def test_only_the_leftovers_of_dead_processes_are_swept():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale, foreign = f"wb{gone.pid:x}x1h1", "wbforeign"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        time.sleep(0.1)
        assert stale in sweep_leftovers()
        namespaces = _names("netns", "list").split()
        assert stale not in namespaces and foreign in namespaces
    finally:
        subprocess.run(["ip", "netns", "delete", foreign], check=False)
        subprocess.run(["ip", "netns", "delete", stale], check=False)


def test_latency_between_hosts_comes_from_a_delaying_proxy_on_the_path():
    with Hosts(2, latency={"h2": 0.1}) as hosts, \
         Mesh({"greeter": 2}, mode="processes", hosts=hosts, name="slow-hosts") as mesh:
        mesh.wait_until_passing()
        slow = mesh.instance("greeter-2")
        assert slow.machine.name == "h2" and slow.host == hosts.gateway  # registered at its proxy
        assert mesh.instance("greeter-1").host == hosts.host("h1").address  # h1: no proxy
        records = burst(mesh.client("greeter").SayHello, HELLO, calls=8)
        to_h2 = [r.latency for r in records if r.served_by == "greeter-2"]
        assert to_h2 and min(to_h2) >= 0.2  # 0.1 s each way
        hosts.set_latency("h2", 0.3)
        to_h2 = [r.latency for r in burst(mesh.client("greeter").SayHello, HELLO, calls=4, timeout=5)
                 if r.served_by == "greeter-2"]
        assert to_h2 and min(to_h2) >= 0.6
        with pytest.raises(ValueError, match="h1 has no delaying proxy"):
            hosts.set_latency("h1", 0.1)
    with pytest.raises(ValueError, match="latency must map hosts"):
        Hosts(2, latency={"h3": 0.1})
