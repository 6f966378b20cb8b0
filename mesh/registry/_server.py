"""The embedded registry: a Consul-compatible agent on its own thread and event loop.

``Registry`` owns one thread that runs an asyncio loop with the HTTP API, the DNS interface, the
health checks and a maintenance task (session TTLs, ``DeregisterCriticalServiceAfter``). All state
is touched only from that loop, so it needs no locks. ``start()`` returns once the ports listen (or
raises the bind error); ``stop()`` ends every held blocking query at once, cancels the checks,
closes the ports and joins the thread.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import consul
from aiohttp import web

from ..background import LoopThread
from ._checks import CheckRunner
from ._context import Context
from ._dns import DNSProtocol
from ._http import application
from .acl import ACLConfig

MAINTENANCE_PERIOD = 0.25  # seconds between checks for expired sessions and services to reap
HEADER_TIMEOUT = 10.0  # seconds a connection has to send a request header (and may idle between requests)


class Registry:
    """An embedded, in-process service registry that speaks Consul's HTTP API and DNS.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Registry(dns_port=0) as registry:
            c = registry.client()          # a py-consul ``consul.Consul``
            c.agent.service.register("greeter", address="127.0.0.1", port=50051)

    ``http_port=0`` and ``dns_port=0`` take free ports (read them back after ``start()``);
    ``dns_port=None`` runs no DNS server. ``reap_min`` is the floor of
    ``DeregisterCriticalServiceAfter`` (Consul's is one minute; lessons may lower it).
    ``dns_only_passing`` answers DNS with passing instances only (Consul's ``only_passing``).
    ``header_timeout`` closes a connection that has not sent a whole request header that many
    seconds after it opened or after its previous answer (a slow client cannot hold a socket).
    ``acl`` turns on Consul's ACL system (:class:`~mesh.registry.acl.ACLConfig`); without it every
    request may do everything, as on a Consul agent with ACLs disabled.
    """

    def __init__(self, http_port: int = 0, host: str = "127.0.0.1", node_name: str = "workbench",
                 datacenter: str = "dc1", seed: int | None = None, dns_port: int | None = 0,
                 reap_min: float = 60.0, dns_only_passing: bool = True,
                 header_timeout: float = HEADER_TIMEOUT, acl: ACLConfig | None = None):
        self.host = host
        self.http_port = http_port
        self.dns_port = dns_port
        self.node_name = node_name
        self.datacenter = datacenter
        self.reap_min = reap_min
        self.dns_only_passing = dns_only_passing
        self.header_timeout = header_timeout
        self.acl = acl
        self._rng = random.Random(seed)
        self._thread = LoopThread(self._serve, f"registry-{node_name}")

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Registry:
        """Start listening; return self. Raise ``OSError`` if a port cannot be bound."""
        if self._thread.running:
            raise RuntimeError("registry already started")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the registry's thread. Safe to call twice."""
        self._thread.stop()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.running

    @property
    def http_address(self) -> str:
        """Return ``host:port`` of the HTTP API, the form ``CONSUL_HTTP_ADDR`` takes."""
        return f"{self.host}:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http_address}"

    def client(self, token: str | None = None) -> consul.Consul:
        """Return a py-consul client bound to this registry (sending ``token`` with each request)."""
        return consul.Consul(host=self.host, port=self.http_port, token=token)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        dns = f", DNS on {self.host}:{self.dns_port}" if self.dns_port is not None else ""
        return f"<Registry {self.url}{dns} {state}>"

    # -- the loop thread ----------------------------------------------------------------------------
    async def _serve(self, ready: Callable[[], None], stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        ctx = Context(self.node_name, self.host, self.datacenter, self._rng, loop.time, self.reap_min,
                      self.acl)
        runner = CheckRunner(ctx.record_check,
                             lambda c: ctx.catalog.checks.get((c.node, c.check_id)) is c, self._rng)
        ctx.runner = runner
        web_runner = web.AppRunner(application(ctx), access_log=None, shutdown_timeout=2.0,
                                   keepalive_timeout=self.header_timeout)
        await web_runner.setup()
        dns_transport = None
        maintenance = None
        try:
            site = web.TCPSite(web_runner, self.host, self.http_port)
            await site.start()
            self.http_port = site._server.sockets[0].getsockname()[1]
            if self.dns_port is not None:
                dns_transport, _ = await loop.create_datagram_endpoint(
                    lambda: DNSProtocol(ctx, self.dns_only_passing), local_addr=(self.host, self.dns_port))
                self.dns_port = dns_transport.get_extra_info("sockname")[1]
            maintenance = asyncio.ensure_future(self._maintain(ctx))
            ready()
            await stopping.wait()
            ctx.close()
        finally:
            if maintenance is not None:
                maintenance.cancel()
                await asyncio.gather(maintenance, return_exceptions=True)
            if dns_transport is not None:
                dns_transport.close()
            await runner.close()
            await web_runner.cleanup()

    @staticmethod
    async def _maintain(ctx: Context) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_PERIOD)
            ctx.reap()
