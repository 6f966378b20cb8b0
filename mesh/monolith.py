"""The demo shop as a monolith: the same six services' code in one process, calling each other
in process — the architecture 6.6.1 compares microservices with.

:class:`Monolith` serves every shop service from **one** gRPC server on loopback (so a client
reaches it exactly as it reaches the mesh's frontend), but inside it a service's call to another
is a plain method call on the other servicer: no network, no serialisation, no discovery, no
policy. It shares one pool of worker threads; it is deployed, restarted and scaled as one unit,
and when it crashes, every feature goes with it. ``slow(service, seconds)`` makes one service's
calls slower, as ``mesh.inject(..., delay=)`` does.

Written here because it is the baseline the lesson measures against: the services are the mesh's
own servicers, unchanged; only the runtime they are given differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from .services import SHOP
from .services.shop import ShopSettings

__all__ = ["LocalCallError", "Monolith"]


class LocalCallError(grpc.RpcError):
    """An in-process call that failed: the servicer aborted it (as ``context.abort`` does)."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _LocalContext:
    """What a servicer called in process sees instead of a gRPC context: no deadline, no wire."""

    def abort(self, code: grpc.StatusCode, details: str):
        raise LocalCallError(code, details)

    def time_remaining(self) -> None:
        return None

    def send_initial_metadata(self, _metadata) -> None:
        pass

    def invocation_metadata(self) -> tuple:
        return ()


@dataclass(frozen=True)
class _Settings:
    current: ShopSettings


class _LocalStub:
    """Calls a servicer's methods directly, as one module of a monolith calls another."""

    def __init__(self, monolith: Monolith, service: str):
        self._monolith, self._service = monolith, service

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(request, timeout: float | None = None, metadata=None):
            self._monolith._delay(self._service)
            return getattr(self._monolith.servicers[self._service], method)(request, _LocalContext())

        return call


class _LocalRuntime:
    def __init__(self, monolith: Monolith):
        self._monolith = monolith
        self.config = _Settings(ShopSettings(work_ms=monolith.work_ms))

    def client(self, service: str) -> _LocalStub:
        return _LocalStub(self._monolith, service)

    def work(self, seconds: float, context) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def fan_out(self, calls: list[Callable[[], Any]]) -> list[Any]:
        return [future.result() for future in [self._monolith._fan_out.submit(call) for call in calls]]


class _Entry(grpc.ServerInterceptor):
    """Slows a service's calls that arrive from outside, as :class:`_LocalStub` does inside."""

    def __init__(self, monolith: Monolith):
        self._monolith = monolith

    def intercept_service(self, continuation, handler_call_details):
        service = handler_call_details.method.split("/")[1].removeprefix("shop.").lower()
        self._monolith._arrived()
        self._monolith._delay(service)
        return continuation(handler_call_details)


class Monolith:
    """The six shop services in one process; start with ``Monolith().start()`` or ``with``."""

    def __init__(self, work_ms: float = 2.0, max_workers: int = 16):
        self.work_ms, self.max_workers = work_ms, max_workers
        self.servicers = {kind.name: kind.servicer(_LocalRuntime(self)) for kind in SHOP}
        self._kinds = {kind.name: kind for kind in SHOP}
        self._slow: dict[str, float] = {}
        self._fan_out = ThreadPoolExecutor(max_workers, thread_name_prefix="monolith-fan-out")
        self._server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()
        self.port = 0
        self.restarts = 0
        self.wire_calls = 0  # calls that reached the process over gRPC (the inner ones never do)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Monolith:
        """Start serving (on the same port as before, after a restart)."""
        with self._lock:
            if self._server is not None:
                return self
            server = grpc.server(ThreadPoolExecutor(self.max_workers, thread_name_prefix="monolith"),
                                 interceptors=[_Entry(self)], options=[("grpc.so_reuseport", 0)])
            for name, kind in self._kinds.items():
                kind.add_to_server(self.servicers[name], server)
            port = server.add_insecure_port(f"127.0.0.1:{self.port}")
            if port == 0:
                raise RuntimeError(f"the monolith could not bind 127.0.0.1:{self.port}")
            server.start()
            self._server, self.port = server, port
        return self

    def kill(self) -> None:
        """Stop at once, as a crash would: calls in flight fail, and every feature is gone."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(grace=None).wait()

    def restart(self, downtime: float = 0.5) -> None:
        """Deploy a new build: stop, wait ``downtime`` (the process starting up), start again."""
        self.kill()
        time.sleep(downtime)
        self.restarts += 1
        self.start()

    def slow(self, service: str, seconds: float) -> None:
        """Add ``seconds`` to every call of ``service`` (0 to heal)."""
        if service not in self.servicers:
            raise KeyError(f"no service {service!r} in the monolith: {sorted(self.servicers)}")
        self._slow[service] = seconds

    def _arrived(self) -> None:
        with self._lock:
            self.wire_calls += 1

    def _delay(self, service: str) -> None:
        seconds = self._slow.get(service, 0.0)
        if seconds > 0:
            time.sleep(seconds)

    def client(self, service: str = "frontend"):
        """Return a gRPC stub for one of the monolith's services, from outside the process."""
        with self._lock:
            if self._channel is None:
                self._channel = grpc.insecure_channel(self.address)
            channel = self._channel
        return self._kinds[service].stub(channel)

    def stop(self) -> None:
        """Stop serving and release the channel and threads."""
        self.kill()
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        self._fan_out.shutdown(wait=True)

    def __enter__(self) -> Monolith:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
