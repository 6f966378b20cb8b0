"""The demo shop as a monolith: the same six services' code in one process, calling each other
in process — the architecture 6.6.1 compares microservices with.

:class:`Monolith` serves every shop service from **one** gRPC server on loopback (so a client
reaches it exactly as it reaches the mesh's frontend), but inside it a service's call to another
is a plain method call on the other servicer: no network, no serialisation, no discovery, no
policy. It shares one pool of worker threads; it is deployed, restarted and scaled as one unit,
and when it crashes, every feature goes with it. ``slow(service, seconds)`` makes one service's
calls slower, as ``mesh.inject(..., delay=)`` does; ``limit(service, workers, service_time)`` gives
one service a small worker pool, as ``mesh.inject(..., workers=, service_time=)`` does. A caller's
deadline travels with its call into the process, as the mesh propagates it along a chain.

:class:`ScaledMonolith` is the monolith scaled out: whole copies behind one round-robin client,
as a load balancer in front of them would spread calls.

Written here because it is the baseline the lesson measures against: the services are the mesh's
own servicers, unchanged; only the runtime they are given differs.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import grpc

from ..client.servers import listen, new_server
from ..interceptors import NoWorkerInTime, WorkerLimit, WrappedHandlers
from ..services import SHOP
from ..services.shop import ShopSettings

__all__ = ["LocalCallError", "Monolith", "ScaledMonolith"]

#: When the call that entered the process must be answered by (``time.monotonic()``), or None.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("monolith_deadline", default=None)


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
    """What a servicer called in process sees instead of a gRPC context: the deadline of the call
    that entered the process, and no wire."""

    def abort(self, code: grpc.StatusCode, details: str):
        raise LocalCallError(code, details)

    def time_remaining(self) -> float | None:
        deadline = _DEADLINE.get()
        return None if deadline is None else max(deadline - time.monotonic(), 0.0)

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
            servicer = self._monolith.servicers[self._service]
            serve = getattr(servicer, method)
            return self._monolith._serve(self._service, lambda: serve(request, _LocalContext()))

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
        # Each call runs in a copy of this context, so the caller's deadline goes with it.
        pool = self._monolith._fan_out
        return [future.result() for future in [pool.submit(contextvars.copy_context().run, call)
                                               for call in calls]]


class _Entry(grpc.ServerInterceptor):
    """Serves a call that arrives from outside as :class:`_LocalStub` serves one inside (its delay,
    its worker limit), with the caller's deadline set for the calls it makes in the process."""

    def __init__(self, monolith: Monolith):
        self._monolith = monolith
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        self._monolith._arrived()
        service = method.split("/")[1].removeprefix("shop.").lower()
        return self._handlers.wrap(continuation(handler_call_details), method,
                                   lambda: partial(self._around, service))

    def _around(self, service: str, behaviour, request, context: grpc.ServicerContext):
        remaining = context.time_remaining()
        token = _DEADLINE.set(None if remaining is None else time.monotonic() + remaining)
        try:
            return self._monolith._serve(service, lambda: behaviour(request, context))
        except LocalCallError as exc:  # its own worker limit, not a call it made (those it handles)
            context.abort(exc.code(), exc.details())
        finally:
            _DEADLINE.reset(token)


class Monolith:
    """The six shop services in one process; start with ``Monolith().start()`` or ``with``."""

    KINDS: ClassVar[dict[str, Any]] = {kind.name: kind for kind in SHOP}

    def __init__(self, work_ms: float = 2.0, max_workers: int = 16):
        self.work_ms, self.max_workers = work_ms, max_workers
        self.servicers = {kind.name: kind.servicer(_LocalRuntime(self)) for kind in SHOP}
        self._slow: dict[str, float] = {}
        self._limits: dict[str, tuple[threading.Semaphore, float]] = {}
        self.gave_up: dict[str, int] = {}  # calls, per service, that waited for a worker past their deadline
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
            server = new_server(ThreadPoolExecutor(self.max_workers, thread_name_prefix="monolith"),
                                interceptors=[_Entry(self)])
            for name, kind in self.KINDS.items():
                kind.add_to_server(self.servicers[name], server)
            port = listen(server, "127.0.0.1", self.port, "the monolith")
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

    def limit(self, service: str, workers: int, service_time: float) -> None:
        """Let ``service`` serve at most ``workers`` calls at once, each holding its worker for
        ``service_time`` s (a slow query on a small connection pool, say); ``workers=0`` lifts it.
        Calls beyond wait their turn; one whose deadline passes while waiting fails with
        DEADLINE_EXCEEDED. Only this copy is limited: a copy of a monolith is limited as a whole."""
        if service not in self.servicers:
            raise KeyError(f"no service {service!r} in the monolith: {sorted(self.servicers)}")
        if workers < 0 or not service_time >= 0:
            raise ValueError(f"workers and service_time must not be negative, got {workers}, {service_time}")
        if workers == 0:
            self._limits.pop(service, None)
        else:
            self._limits[service] = (WorkerLimit(workers), float(service_time))

    def _serve(self, service: str, call: Callable[[], Any]) -> Any:
        """Run one call of ``service`` with its delay and within its worker limit."""
        self._delay(service)
        limit = self._limits.get(service)
        if limit is None:
            return call()
        workers, service_time = limit
        try:
            return workers.run(call, service_time, _LocalContext().time_remaining())
        except NoWorkerInTime:
            with self._lock:
                self.gave_up[service] = self.gave_up.get(service, 0) + 1
            raise LocalCallError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                 f"{service}: waited for a worker past the deadline") from None

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
        return self.KINDS[service].stub(channel)

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


class _FollowingMethod:
    """A stub method that always calls through the scaled monolith's current balancer."""

    def __init__(self, scaled: ScaledMonolith, service: str, method: str):
        self._scaled, self._service, self._method = scaled, service, method

    def __call__(self, request, **kwargs):
        return getattr(self._scaled._stub(self._service), self._method)(request, **kwargs)

    def with_call(self, request, **kwargs):
        return getattr(self._scaled._stub(self._service), self._method).with_call(request, **kwargs)


class _FollowingStub:
    def __init__(self, scaled: ScaledMonolith, service: str):
        self._scaled, self._service = scaled, service

    def __getattr__(self, method: str) -> _FollowingMethod:
        return _FollowingMethod(self._scaled, self._service, method)


class ScaledMonolith:
    """A monolith scaled out: ``copies`` whole copies of it, each a :class:`Monolith` with the same
    settings and limits, behind one client that spreads calls over them round robin (gRPC's own
    ``round_robin`` policy over their addresses, as a load balancer in front of them would).

    :meth:`scale_to` starts more copies while calls go on; a client from :meth:`client` follows.
    """

    def __init__(self, copies: int = 1, work_ms: float = 2.0, max_workers: int = 16):
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")
        self._settings = {"work_ms": work_ms, "max_workers": max_workers}
        self._limits: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self.copies: list[Monolith] = []
        self._channel: grpc.Channel | None = None
        self._stubs: dict[str, Any] = {}
        self._replaced: list[grpc.Channel] = []
        self.scale_to(copies)

    def limit(self, service: str, workers: int, service_time: float) -> None:
        """Limit ``service`` in every copy, and in every copy started later (see :meth:`Monolith.limit`)."""
        with self._lock:
            for copy in self.copies:
                copy.limit(service, workers, service_time)
            self._limits[service] = (workers, service_time)

    def scale_to(self, copies: int) -> list[Monolith]:
        """Start copies until there are ``copies``; return the ones started. Each is a whole monolith:
        every service in it, whichever one needed the capacity."""
        started = []
        try:
            while len(self.copies) + len(started) < copies:
                copy = Monolith(**self._settings)
                for service, (workers, service_time) in self._limits.items():
                    copy.limit(service, workers, service_time)
                started.append(copy.start())
        except BaseException:
            for copy in started:
                copy.stop()
            raise
        if started:
            target = "ipv4:" + ",".join(c.address for c in [*self.copies, *started])
            channel = grpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
            with self._lock:
                self.copies.extend(started)
                if self._channel is not None:  # calls already sent on it end there; closed at stop
                    self._replaced.append(self._channel)
                self._channel, self._stubs = channel, {}
        return started

    def _stub(self, service: str):
        with self._lock:
            stub = self._stubs.get(service)
            if stub is None:
                if self._channel is None:
                    raise RuntimeError("the scaled monolith has stopped")
                stub = self._stubs[service] = Monolith.KINDS[service].stub(self._channel)
            return stub

    def client(self, service: str = "frontend") -> _FollowingStub:
        """Return a stub for ``service`` that calls through the balancer over all copies, as they are now."""
        if service not in Monolith.KINDS:
            raise KeyError(f"no service {service!r} in the monolith: {sorted(Monolith.KINDS)}")
        return _FollowingStub(self, service)

    def stop(self) -> None:
        """Stop every copy and close the client."""
        with self._lock:
            channels = [*self._replaced, *([self._channel] if self._channel else [])]
            self._channel, self._stubs, self._replaced = None, {}, []
            copies, self.copies = self.copies, []
        for channel in channels:
            channel.close()
        for copy in copies:
            copy.stop()

    def __enter__(self) -> ScaledMonolith:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
