"""One replica of a service: a real ``grpc.server`` on loopback with the standard health service.

A stopped ``grpc.server`` cannot be started again, so every (re)start builds a new server object
and thread pool; the interceptors (and so the faults injected into the instance) are kept across
restarts. ``SO_REUSEPORT`` is turned off so that a revived instance either gets its old port back
or fails loudly, instead of silently sharing a port with another server. ``stopping`` is set while
the instance is down, so waits inside handlers (injected delays, simulated work) end at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..client.headers import SERVED_BY
from ..client.servers import listen, new_server
from ..interceptors import FaultInjector
from ..pb import admin_pb2_grpc
from ..policies.names import instance_id
from ..services import ServiceKind
from .admin import ADMIN_SERVICE, HEALTH_SERVICE, enable_reflection

__all__ = ["SERVED_BY", "Instance"]


class Instance:
    """A replica of ``kind`` (at ``version``) listening on ``host``; its port is kept across kill and
    revive."""

    def __init__(self, kind: ServiceKind, number: int, servicer: Callable[[Instance], Any],
                 interceptors: Callable[[Instance], Sequence[grpc.ServerInterceptor]],
                 host: str = "127.0.0.1", max_workers: int = 16, version: str = "v1",
                 admin: Callable[[Instance], Any] | None = None):
        self.kind = kind
        self.number = number
        self.version = version
        self.id = instance_id(kind.name, number)
        self.host = host
        self.port = 0
        self.max_workers = max_workers
        self.served = 0
        self.stopping = threading.Event()
        self._make_servicer = servicer
        self._make_admin = admin
        self.serving = False  # what its health service says: SERVING (True) or NOT_SERVING
        self._interceptors = list(interceptors(self))
        self.faults = next((i for i in self._interceptors if isinstance(i, FaultInjector)), None)
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._workers: list[threading.Thread] = []  # the pool's threads, to wait for at stop
        self.health: health.HealthServicer | None = None

    @property
    def service(self) -> str:
        return self.kind.name

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def count_call(self) -> None:
        with self._lock:
            self.served += 1

    def start(self) -> Instance:
        """Serve on the instance's port (an ephemeral one the first time). Raise OSError if taken."""
        if self._server is not None:
            raise RuntimeError(f"{self.id} is already running")
        self.stopping.clear()
        workers: list[threading.Thread] = []  # appended to by the pool's threads (atomic)
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=f"{self.id}-rpc",
                                  initializer=lambda: workers.append(threading.current_thread()))
        server = new_server(pool, interceptors=self._interceptors)
        self.kind.add_to_server(self._make_servicer(self), server)
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        services = [self.kind.grpc_service, HEALTH_SERVICE]
        if self._make_admin is not None:
            admin_pb2_grpc.add_AdminServicer_to_server(self._make_admin(self), server)
            services.append(ADMIN_SERVICE)
        enable_reflection(server, services)
        try:
            port = listen(server, self.host, self.port, self.id)
        except OSError:
            server.stop(None)
            pool.shutdown(wait=True)
            raise
        server.start()
        for name in ("", self.kind.grpc_service):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.port, self._server, self._pool, self.health = port, server, pool, health_servicer
        self.serving = True
        self._workers = workers
        return self

    def set_serving(self, serving: bool) -> None:
        """Make the health service report SERVING or NOT_SERVING while the process keeps running.

        A gRPC check sees this; a TCP check, which only connects to the port, does not.
        """
        if self.health is None:
            raise RuntimeError(f"{self.id} is not running")
        response = health_pb2.HealthCheckResponse
        status = response.SERVING if serving else response.NOT_SERVING
        for name in ("", self.kind.grpc_service):
            self.health.set(name, status)
        self.serving = serving

    def stop(self, grace: float | None = None, wait: float = 0.0) -> None:
        """Stop serving. ``grace=None`` aborts in-flight calls at once, as a crash would.

        The server's calls end within ``grace``; their handler threads are then given ``wait``
        seconds more to return. A handler that never returns cannot hold the stop (a crash is
        immediate): its thread is left behind, its call already ended for the caller.
        """
        server, pool = self._server, self._pool
        if server is None:
            return
        self._server = self._pool = None
        self.serving = False
        self.stopping.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        server.stop(grace).wait()
        pool.shutdown(wait=False, cancel_futures=True)
        until = time.monotonic() + wait
        for thread in self._workers[:]:
            thread.join(max(until - time.monotonic(), 0.0))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Instance {self.id} {self.address} {state}>"
