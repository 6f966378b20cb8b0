"""The embedded registry: a Consul-compatible agent on its own thread and event loop.

``Registry`` owns one thread that runs an asyncio loop with the HTTP API and the health checks.
Everything the registry holds is touched only from that loop, so it needs no locks. ``start()``
returns once the port is listening (or raises the bind error); ``stop()`` ends every held
blocking query at once, cancels the checks, closes the port and joins the thread.
"""

from __future__ import annotations

import asyncio
import random
import threading

import consul
from aiohttp import web

from ._catalog import Catalog
from ._checks import CheckRunner
from ._http import ConsulAPI


class Registry:
    """An embedded, in-process service registry that speaks Consul's HTTP API.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Registry() as registry:
            c = registry.client()          # a py-consul ``consul.Consul``
            c.agent.service.register("greeter", address="127.0.0.1", port=50051)
    """

    def __init__(self, http_port: int = 0, host: str = "127.0.0.1", node_name: str = "workbench",
                 datacenter: str = "dc1", seed: int | None = None):
        self.host = host
        self.http_port = http_port
        self.node_name = node_name
        self.datacenter = datacenter
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Registry:
        """Start listening; return self. Raise ``OSError`` if the port cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("registry already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"registry-{self.node_name}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the registry's thread. Safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(self._stopping.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def http_address(self) -> str:
        """Return ``host:port`` of the HTTP API, the form ``CONSUL_HTTP_ADDR`` takes."""
        return f"{self.host}:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http_address}"

    def client(self) -> consul.Consul:
        """Return a py-consul client bound to this registry."""
        return consul.Consul(host=self.host, port=self.http_port)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Registry {self.url} {state}>"

    # -- the loop thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() or logged by the thread
            if not self._ready.is_set():
                self._error = exc
            else:
                raise
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        api: ConsulAPI | None = None
        catalog = Catalog(self.node_name, self.host, self.datacenter, on_change=lambda: api.notify())
        checks = CheckRunner(catalog, self._rng)
        api = ConsulAPI(catalog, checks, leader=f"{self.host}:8300")
        runner = web.AppRunner(api.application(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.http_port)
            await site.start()
            self.http_port = site._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopping.wait()
            api.close()
        finally:
            await checks.close()
            await runner.cleanup()
