"""Run health checks for real, as a Consul agent does: TCP, HTTP, gRPC (grpc.health.v1) and TTL.

Each check is an asyncio task on the registry's loop. As in Consul, the first run waits a random
stagger within one interval (so that many checks registered together do not fire together), then
the check runs every ``Interval`` after the previous run ended, each run bounded by ``Timeout``
(10 s by default). Intervals below Consul's minimum of one second are raised to it.

Output strings follow Consul's, so a learner who later reads a real agent's check output sees the
same words. gRPC probes use the blocking grpcio API in a small thread pool: grpc.aio binds itself to
one event loop per process, which does not survive a notebook re-creating registries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ._catalog import CRITICAL, PASSING, WARNING, Check

MIN_INTERVAL = 1.0
DEFAULT_TIMEOUT = 10.0
TTL_EXPIRED = "TTL expired"


def check_type(definition: dict) -> str:
    """Return Consul's ``Type`` for a check definition, or '' if it names no kind we run."""
    for key, kind in (("TTL", "ttl"), ("TCP", "tcp"), ("GRPC", "grpc"), ("HTTP", "http")):
        if definition.get(key):
            return kind
    return ""


def _go_code_name(code: grpc.StatusCode) -> str:
    return "".join(part.capitalize() for part in code.name.split("_"))


def probe_grpc(target: str, use_tls: bool, timeout: float) -> tuple[str, str]:
    """Return (status, output) of one grpc.health.v1 Check against ``host:port[/service]``."""
    address, _, service = target.partition("/")
    if use_tls:
        return CRITICAL, f"gRPC check {target}: TLS is not supported by this registry"
    channel = grpc.insecure_channel(address)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    except grpc.RpcError as exc:
        return CRITICAL, f"rpc error: code = {_go_code_name(exc.code())} desc = {exc.details()}"
    finally:
        channel.close()
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return CRITICAL, f"gRPC {target} serving status: {status_name}"
    return PASSING, f"gRPC check {target}: success"


async def probe_tcp(address: str, timeout: float) -> tuple[str, str]:
    """Return (status, output) of one TCP connect to ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), timeout)
    except asyncio.TimeoutError:
        return CRITICAL, f"dial tcp {address}: i/o timeout"
    except ConnectionRefusedError:
        return CRITICAL, f"dial tcp {address}: connect: connection refused"
    except (OSError, ValueError) as exc:
        return CRITICAL, f"dial tcp {address}: {exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return PASSING, f"TCP connect {address}: Success"


async def probe_http(session: aiohttp.ClientSession, definition: dict, timeout: float) -> tuple[str, str]:
    """Return (status, output) of one HTTP check: 2xx passing, 429 warning, anything else critical."""
    method = definition.get("Method") or "GET"
    url = definition["HTTP"]
    headers = {k: ", ".join(v) if isinstance(v, list) else str(v)
               for k, v in (definition.get("Header") or {}).items()}
    try:
        async with session.request(method, url, headers=headers, data=definition.get("Body"),
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = (await resp.content.read(4096)).decode("utf-8", "replace").strip()
            status_line = f"{resp.status} {resp.reason}"
            output = f"HTTP {method} {url}: {status_line} Output: {body}"
            if 200 <= resp.status < 300:
                return PASSING, output
            return (WARNING if resp.status == 429 else CRITICAL), output
    except asyncio.TimeoutError:
        return CRITICAL, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded)'
    except aiohttp.ClientError as exc:
        return CRITICAL, f'Get "{url}": {exc}'


Recorder = Callable[[Check, str, str], None]


class CheckRunner:
    """Start and stop the running checks; report each result through ``record``.

    ``is_current(check)`` tells whether a check is still registered (a probe that ends after its
    check was deregistered or replaced must not write a result).
    """

    def __init__(self, record: Recorder, is_current: Callable[[Check], bool], rng: random.Random):
        self._record = record
        self._is_current = is_current
        self._rng = rng
        self._tasks: dict[str, asyncio.Task] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="registry-grpc-check")
        self._http: aiohttp.ClientSession | None = None

    def start(self, check: Check) -> None:
        """(Re)start running ``check``; TTL checks wait for their first update or expiry."""
        self.stop(check.check_id)
        if check.type == "ttl":
            self._tasks[check.check_id] = asyncio.ensure_future(self._expire(check))
        elif check.type in ("tcp", "grpc", "http"):
            check.interval = max(check.interval, MIN_INTERVAL)
            check.timeout = check.timeout or DEFAULT_TIMEOUT
            self._tasks[check.check_id] = asyncio.ensure_future(self._loop(check))

    def stop(self, check_id: str) -> None:
        task = self._tasks.pop(check_id, None)
        if task is not None:
            task.cancel()

    def touch_ttl(self, check: Check, status: str, output: str) -> None:
        """Record a TTL update and restart its expiry timer."""
        self._record(check, status, output)
        self.start(check)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def _expire(self, check: Check) -> None:
        await asyncio.sleep(check.definition["TTL"])
        if self._is_current(check):
            self._record(check, CRITICAL, TTL_EXPIRED)

    async def _loop(self, check: Check) -> None:
        await asyncio.sleep(self._rng.uniform(0, check.interval))
        while True:
            status, output = await self._probe(check)
            if not self._is_current(check):
                return  # deregistered or replaced while the probe ran
            self._record(check, status, output)
            await asyncio.sleep(check.interval)

    async def _probe(self, check: Check) -> tuple[str, str]:
        definition = check.definition
        if check.type == "tcp":
            return await probe_tcp(definition["TCP"], check.timeout)
        if check.type == "grpc":
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, probe_grpc, definition["GRPC"], bool(definition.get("GRPCUseTLS")),
                check.timeout,
            )
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return await probe_http(self._http, definition, check.timeout)
