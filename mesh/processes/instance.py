"""Instances as OS processes: what :class:`mesh.Mesh` runs in ``mode="processes"``.

A :class:`ProcessInstance` stands in the notebook for an instance that runs in a process of its
own (``python -m mesh.serve``, :mod:`mesh.serve`). It has what the mesh and the lessons use of an
in-kernel instance — id, service, version, address, ``running``, ``faults`` — but ``stop()`` is
SIGKILL (a real crash: calls in flight are cut, connections dropped, nothing deregistered) and
``start()`` starts a new process on the same port. Its faults go through the config center
(:class:`mesh.processes.remote_faults.RemoteFaults`); its spans come back over OTLP.

A process follows its parent: it exits when the kernel is gone, however the kernel ended, and the
mesh ends its processes when it stops (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import grpc

from ..client.headers import IDENTITY
from ..client.identity import OPERATOR, Identities
from ..control.shared_state import SECRET_VARIABLE
from ..pb import admin_pb2, admin_pb2_grpc
from ..policies.names import instance_id, parse_breaker_name
from ..services import ServiceKind
from .delay_proxy import DelayProxy
from .hosts import Host, Hosts
from .remote_faults import RemoteFaults

__all__ = ["ProcessInstance", "SpawnSpec"]

#: Where py-consul (in every process) looks for the registry's ACL token.
TOKEN_VARIABLE = "CONSUL_HTTP_TOKEN"
#: How long a process may take to import the package, start its server and register.
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class SpawnSpec:
    """What every instance process of one mesh is started with (``python -m mesh.serve``)."""

    registry: str  # host:port of the registry's HTTP API
    mesh: str
    secret: str  # the identities' signing key: passed in the environment, never on the command line
    prefix: str = ""
    seed: int | None = None
    check_interval: str = "1s"
    check_timeout: str = "1s"
    otlp: str = ""  # host:port of the receiver of spans and log lines
    token: str | None = None  # the registry's ACL token: in the environment too (CONSUL_HTTP_TOKEN)

    def command(self, kind: ServiceKind, number: int, port: int, version: str, max_workers: int,
                advertise: str = "", host: str = "") -> list[str]:
        command = [sys.executable, "-m", "mesh.serve", kind.name, str(number),
                   "--registry", self.registry, "--mesh", self.mesh, "--port", str(port),
                   "--version", version, "--max-workers", str(max_workers),
                   "--check-interval", self.check_interval, "--check-timeout", self.check_timeout,
                   "--parent", str(os.getpid()), *kind.serve_args]
        if self.prefix:
            command += ["--prefix", self.prefix]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        if self.otlp:
            command += ["--otlp", self.otlp]
        if advertise:
            command += ["--advertise", advertise]
        if host:
            command += ["--host", host]
        return command


class ProcessInstance:
    """A replica of ``kind`` running as a separate OS process, started as ``spec`` says, on
    ``machine`` of ``hosts`` if given (behind ``proxy``, a delaying proxy, if that host is delayed)."""

    def __init__(self, spec: SpawnSpec, kind: ServiceKind, number: int, faults: RemoteFaults,
                 max_workers: int = 16, version: str = "v1", hosts: Hosts | None = None,
                 machine: Host | None = None, proxy: DelayProxy | None = None):
        self.kind, self.number, self.version, self.max_workers = kind, number, version, max_workers
        self.id = instance_id(kind.name, number)
        self._spec, self._hosts = spec, hosts
        self.machine = machine  # the host it runs on, when the mesh has hosts
        # Where it listens, and where it is reached: the same, unless a delaying proxy on the
        # hosts' gateway stands in front of it (it then registers the proxy's address).
        self.listen_host, self.listen_port = (machine.address if machine else "127.0.0.1"), 0
        self.proxy = proxy
        self.host = proxy.host if proxy else self.listen_host
        self.port = proxy.port if proxy else 0
        self.faults = faults
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self._admin_channel: grpc.Channel | None = None
        self._admin = None
        self._admin_lock = threading.Lock()  # panels and recorders ask from their own threads
        # The operator's identity: a service with an access rule shows its admin interface to it alone.
        self._operator = Identities(spec.mesh, secret=spec.secret)
        self.starts = 0

    @property
    def service(self) -> str:
        return self.kind.name

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def status(self, recent_errors: int = 0, timeout: float = 1.0) -> admin_pb2.StatusReply | None:
        """What its admin interface says (:mod:`mesh.core.admin`): calls served and in flight, its
        breakers, its latest errors; None while it is down or does not answer within ``timeout``."""
        if not self.running:
            return None
        with self._admin_lock:
            if self._admin is None:  # one channel for its life: panels ask several times a second
                self._admin_channel = grpc.insecure_channel(self.address)
                self._admin = admin_pb2_grpc.AdminStub(self._admin_channel)
            admin = self._admin
        try:
            identity = ((IDENTITY, self._operator.token(OPERATOR, self.kind.name)),)
            return admin.Status(admin_pb2.StatusRequest(recent_errors=recent_errors), timeout=timeout,
                                metadata=identity)
        except grpc.RpcError:
            return None

    @property
    def served(self) -> int:
        """Calls this process has served, asked of its admin interface (0 while it is down)."""
        found = self.status()
        return found.calls_served if found is not None else 0

    def breakers(self) -> dict[tuple[str, str], str]:
        """The state of each circuit breaker this process keeps, by (this instance, callee service),
        as :meth:`mesh.Mesh.breaker_states` gives them ({} while it is down)."""
        found = self.status()
        if found is None:
            return {}
        named = ((parse_breaker_name(b.name), b.state) for b in found.breakers)
        return {pair: state for pair, state in named if pair is not None}

    @property
    def pid(self) -> int | None:
        """The process's id while it runs."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        on_host = self.machine is not None
        command = self._spec.command(self.kind, self.number, self.listen_port, self.version, self.max_workers,
                                     advertise=self.address if self.proxy is not None else "",
                                     host=self.listen_host if on_host else "")
        return self._hosts.run(self.machine.name, command) if on_host else command

    def spawn(self) -> ProcessInstance:
        """Start the process (without waiting for it to serve: see :meth:`wait_ready`)."""
        if self.running:
            raise RuntimeError(f"{self.id} is already running (pid {self._process.pid})")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open while the process runs; stop() closes it
        # The identity key goes in the environment: not in the KV store, not on the command line.
        environment = dict(os.environ, **{SECRET_VARIABLE: self._spec.secret})
        if self._spec.token is not None:  # so is the registry's token, which py-consul reads there
            environment[TOKEN_VARIABLE] = self._spec.token
        self._process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=self._stderr, env=environment)
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> ProcessInstance:
        """Wait until the process says it serves (and so has registered); raise if it fails."""
        process = self._process
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or process.poll() is not None:
                break
            ready, _, _ = select.select([process.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(process.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"ready "):
            if process.poll() is None:
                process.kill()
            process.wait()
            said = self._tail_of_stderr() or "no output"
            self.stop()
            raise RuntimeError(f"{self.id} did not start: {said}")
        self.listen_port = int(line.split()[1])
        if self.proxy is not None:
            self.proxy.target = (self.listen_host, self.listen_port)
        else:
            self.port = self.listen_port
        return self

    def start(self) -> ProcessInstance:
        """Start a new process for this instance (on its port) and wait until it serves."""
        return self.spawn().wait_ready()

    def _tail_of_stderr(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-limit:].strip()

    def terminate(self) -> None:
        """Ask the process to end (SIGTERM) without waiting: :meth:`stop` then waits for it."""
        if self.running:
            self._process.send_signal(signal.SIGTERM)

    def stop(self, grace: float | None = None, wait: float = 5.0) -> None:
        """End the process: SIGKILL at once (``grace=None``: a crash), or SIGTERM and up to
        ``grace`` seconds to deregister and flush its spans before SIGKILL."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if grace is None else signal.SIGTERM)
            try:
                process.wait(timeout=grace if grace is not None else wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def release(self) -> None:
        """Close what outlives a kill (its delaying proxy, the channel to its admin interface):
        the mesh is done with this instance."""
        with self._admin_lock:
            if self._admin_channel is not None:
                self._admin_channel.close()
                self._admin_channel = self._admin = None
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None

    def set_serving(self, serving: bool) -> None:
        raise NotImplementedError(f"{self.id} runs in its own process, whose health service only a kernel "
                                  "instance can switch: make it fail its check with mesh.kill (or, on "
                                  "hosts, by taking its host's link down); injected faults never touch "
                                  "the health service")

    def __repr__(self) -> str:
        where = f" on {self.machine.name}" if self.machine else ""
        return f"<ProcessInstance {self.id} {self.address}{where} pid={self.pid}>"
