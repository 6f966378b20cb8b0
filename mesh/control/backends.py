"""Which service registry a mesh talks to: the embedded one, an existing agent, or ``consul agent -dev``.

Every backend is reached the same way, over Consul's HTTP API through py-consul, so everything a
learner does here behaves the same against a real Consul.

- ``"embedded"`` (the default): :class:`mesh.registry.Registry` in this process.
- ``"env"``: the agent at ``CONSUL_HTTP_ADDR`` (``host:port`` or ``http://host:port``), left running.
- ``"consul"``: a ``consul agent -dev`` started on free loopback ports, stopped afterwards.
- ``"auto"``: ``env`` if ``CONSUL_HTTP_ADDR`` is set, else ``consul`` if the binary is on PATH,
  else ``embedded``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import consul
import requests

if TYPE_CHECKING:
    from ..registry import Registry

BACKENDS = ("embedded", "env", "consul", "auto")


class BackendUnavailable(RuntimeError):
    """The asked-for backend cannot run here (no ``CONSUL_HTTP_ADDR``, no ``consul`` binary...)."""


@dataclass
class Backend:
    """A running registry the mesh can use; ``stop()`` stops it only if the mesh started it."""

    kind: str
    host: str
    http_port: int
    dns_port: int | None
    registry: Registry | None = None
    process: subprocess.Popen | None = None
    owned: bool = True
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    #: the ACL token every client of this backend sends (None: py-consul's own default, which is
    #: ``CONSUL_HTTP_TOKEN`` if set)
    token: str | None = field(default=None, repr=False)

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.http_port}"

    def client(self) -> consul.Consul:
        client = consul.Consul(host=self.host, port=self.http_port)
        if self.token is not None:
            client.token = self.token  # set after: py-consul lets CONSUL_HTTP_TOKEN override the argument
        # Every watch of a mesh (discovery, each config) holds a connection in a blocking query, and
        # a shop has dozens: with requests' default pool of ten, the rest are opened and thrown away
        # again, with a warning each time.
        client.http.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        return client

    def stop(self) -> None:
        if not self.owned:
            return
        if self.registry is not None:
            self.registry.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __repr__(self) -> str:
        dns = f" dns :{self.dns_port}" if self.dns_port else ""
        return f"<{self.kind} registry http://{self.http_address}{dns}>"


def parse_http_addr(value: str) -> tuple[str, int]:
    """Return (host, port) from ``host:port`` or ``http://host:port`` (CONSUL_HTTP_ADDR's forms)."""
    parsed = urlparse(value if "://" in value else f"http://{value}")
    if not parsed.hostname or not parsed.port:
        raise ValueError(f"not a host:port address: {value!r}")
    return parsed.hostname, parsed.port


def consul_binary() -> str | None:
    return shutil.which("consul")


def start_backend(choice: str | Registry | None = "embedded", dns: bool = True, acl=None) -> Backend:
    """Start or attach to the registry ``choice`` names (see the module docstring); ``acl`` (a
    :class:`mesh.registry.ACLConfig`) turns ACLs on in an embedded registry started here.

    The embedded registry (aiohttp's server) is imported only when it is used: an instance's
    process, which reaches its registry by address, starts faster without it."""
    if acl is not None and choice not in ("embedded", None):
        raise ValueError("acl= configures an embedded registry the mesh starts; a registry started "
                         "elsewhere has its own ACLs (give the mesh a token= for it)")
    if choice is not None and not isinstance(choice, str):
        from ..registry import Registry

        if not isinstance(choice, Registry):
            raise TypeError(f"a registry is a name, an address or a Registry, not {type(choice).__name__}")
        return Backend("embedded", choice.host, choice.http_port, choice.dns_port, registry=choice,
                       owned=False)
    choice = choice or "embedded"
    if choice not in BACKENDS:
        host, port = parse_http_addr(choice)
        return Backend("agent", host, port, None, owned=False)
    if choice == "auto":
        choice = "env" if os.environ.get("CONSUL_HTTP_ADDR") else "consul" if consul_binary() else "embedded"
    if choice == "embedded":
        from ..registry import Registry

        registry = Registry(dns_port=0 if dns else None, acl=acl).start()
        return Backend("embedded", registry.host, registry.http_port, registry.dns_port, registry=registry)
    if choice == "env":
        address = os.environ.get("CONSUL_HTTP_ADDR")
        if not address:
            raise BackendUnavailable("CONSUL_HTTP_ADDR is not set: export the address of a Consul agent")
        host, port = parse_http_addr(address)
        return Backend("agent", host, port, None, owned=False)
    return _start_consul_dev()


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_consul_dev(timeout: float = 30.0) -> Backend:
    binary = consul_binary()
    if binary is None:
        raise BackendUnavailable("no `consul` binary on PATH (see the README: using a real Consul)")
    http, dns, serf_lan, serf_wan, server = _free_ports(5)
    tmp = tempfile.TemporaryDirectory(prefix="consul-dev-")
    args = [binary, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
            "-http-port", str(http), "-dns-port", str(dns), "-serf-lan-port", str(serf_lan),
            "-serf-wan-port", str(serf_wan), "-server-port", str(server), "-grpc-port", "-1",
            "-data-dir", tmp.name]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backend = Backend("consul", "127.0.0.1", http, dns, process=process, _tmp=tmp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            backend.stop()
            raise BackendUnavailable(f"consul agent -dev exited with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{http}/v1/status/leader", timeout=1).json():
                return backend
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    backend.stop()
    raise BackendUnavailable(f"consul agent -dev elected no leader within {timeout:g} s")
