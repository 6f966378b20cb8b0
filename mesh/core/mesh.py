"""``Mesh``: replicas of services as real gRPC servers, registered and discovered.

Every instance listens on its own port, serves ``grpc.health.v1``, and is registered with a gRPC
health check that the registry runs. Clients find instances only through the registry.

``Mesh`` is a facade over parts with one job each: where the instances run (a
:class:`~mesh.core.placement.Placement`: in this process, or as processes), their registration
(:class:`~mesh.control.registration.Registration`), the config center
(:class:`~mesh.control.config.ConfigCenter`), the callers' stacks and breakers
(:class:`~mesh.core.clients.Clients`), the fallbacks and access rules
(:class:`~mesh.core.shared.SharedState`), and telemetry.

A notebook cell that builds ``Mesh(...)`` again stops the previous mesh of the same name first, so
re-running cells leaks no ports, threads or registrations.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from ..client.discovery_proxy import DiscoveryProxy
from ..client.identity import Identities
from ..control.backends import Backend, start_backend
from ..control.config import ConfigCenter, ServiceConfig
from ..control.discovery import Discovery, Endpoint
from ..control.keys import CONFIG, MeshKeys
from ..control.registration import Registration
from ..interceptors import Faults
from ..policies import Balancer, Fallback, PolicySettings
from ..policies.names import service_of
from ..processes import Hosts, ProcessPlacement, SpawnSpec
from ..services import KINDS, ServiceKind
from ..telemetry.logs import LogStore
from ..telemetry.metrics import Metrics
from ..telemetry.otlp import OtlpReceiver
from ..telemetry.tracing import CallNode, Tracing
from .clients import Clients
from .lifetime import ByName
from .placement import KernelPlacement, Placement
from .runtime import InstanceRuntime
from .shared import SharedState

if TYPE_CHECKING:
    from ..registry import Registry

_live = ByName()
MODES = ("kernel", "processes")
_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")


@dataclass(frozen=True)
class MeshEvent:
    """Something the mesh did to an instance, with the monotonic time it happened."""

    time: float
    action: str
    instance: str


class Mesh:
    """Replicas of services, a registry they register with, and clients that discover them.

    ``Mesh({"greeter": 3})`` starts an embedded registry and three Greeter replicas. ``registry=``
    chooses another (see :mod:`mesh.backends`): ``"env"`` for the agent at ``CONSUL_HTTP_ADDR``,
    ``"consul"`` for a ``consul agent -dev`` the mesh starts and stops, ``"auto"``, a running
    :class:`Registry`, or the ``host:port`` of any Consul agent (left running when the mesh stops).

    Every call is traced (``mesh.traces()``), measured (``mesh.metrics``, also in Prometheus's
    format) and logged with its trace id (``mesh.logs``); every caller applies its policy towards
    each service (``mesh.set_policy``), kept in the config center; faults are injected per instance
    (``mesh.inject``, ``mesh.partition``). ``seed`` seeds every random choice
    the mesh makes (balancers, jitter, faults).

    ``prefix`` keeps meshes that share one registry apart — a class whose learners all use one
    Consul, each with a prefix of their own: services register as ``<prefix>-<service>`` with ids
    ``<prefix>-<id>``, settings live under ``<prefix>/config/``, and discovery sees only its own
    mesh's instances. The mesh's API keeps the plain names; ``registry_name`` and ``registry_id``
    give what a raw registry client (``mesh.consul``, DNS) must ask for.

    ``mode="processes"`` runs every instance as an OS process of its own (:mod:`mesh.serve`,
    :class:`mesh.processes.ProcessInstance`): faults, policies, settings, access rules and
    fallbacks reach the processes through the KV store, their spans come back over OTLP, and
    ``kill`` is SIGKILL. With ``hosts`` (:class:`mesh.hosts.Hosts`, root only) the processes run on
    hosts made of network namespaces, and the registry listens on the hosts' gateway address.
    """

    def __init__(self, services: Mapping[str, int] | None = None, *,
                 registry: Registry | str | None = "embedded", name: str = "default",
                 check_interval: str = "1s", check_timeout: str = "1s", seed: int | None = None,
                 prefix: str = "", mode: str = "kernel", hosts: Hosts | None = None,
                 identities: Identities | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if hosts is not None and (mode != "processes" or registry not in ("embedded", None)):
            raise ValueError("hosts need mode='processes' and the embedded registry (which then "
                             "listens on the hosts' gateway address)")
        if prefix and not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix must be a DNS label of lowercase letters, digits and dashes "
                             f"(at most 24 characters, no dash at either end), got {prefix!r}")
        _live.replace(name)
        self.name, self.prefix, self.mode, self.seed = name, prefix, mode, seed
        self.check_interval, self.check_timeout = check_interval, check_timeout
        self.keys = MeshKeys(prefix)
        self.events: list[MeshEvent] = []
        self.tracing = Tracing(name)
        self.metrics = Metrics()
        self.logs = LogStore(name).attach()
        #: signs this mesh's identities; a process of a mesh is given its kernel's (``mesh.serve``)
        self.identities = identities or Identities(name)
        self.shared = SharedState(self.identities)
        self._instances: dict[str, Any] = {}  # by id, shared with the placement that starts them
        self._plain_channels: list[grpc.Channel] = []
        self._proxies: list[DiscoveryProxy] = []
        self._stop_actions: list[Callable[[], None]] = []
        self._stopped = False
        self.hosts = hosts
        if hosts is not None:  # the registry where every host can reach it: the bridge's address
            from ..registry import Registry

            found = Registry(host=hosts.gateway).start()
            self.backend = Backend("embedded", found.host, found.http_port, found.dns_port, registry=found)
        else:
            self.backend = start_backend(registry)
        self.consul = self.backend.client()
        self.discovery = Discovery(self.consul, prefix=prefix)
        self.registration = Registration(self.consul, self.keys, name, check_interval, check_timeout)
        self.configs = ConfigCenter(self.consul, self.keys.root(CONFIG), owner=f"the mesh {name!r}")
        self.clients = Clients(self.discovery, self.configs, lambda service: self._kind(service).stub,
                               self.shared.fallbacks_of, self.tracing, self.metrics, seed, self.identities)
        _live.claim(name, self)
        try:
            self.placement = self._placement(mode, hosts)
            for service, replicas in (services or {}).items():
                self.add_service(service, replicas)
        except BaseException:
            self.stop()
            raise

    def _placement(self, mode: str, hosts: Hosts | None) -> Placement:
        kernel = KernelPlacement(self.name, self.seed, self._instances, self.registration, self.configs,
                                 self.clients, self.tracing, self.metrics, self.logs, self.identities)
        if mode == "kernel":
            return kernel
        receiver = OtlpReceiver(self.tracing.store, self.metrics, logs=self.logs,
                                host=hosts.gateway if hosts is not None else "127.0.0.1")
        spec = SpawnSpec(self.backend.http_address, self.name, self.identities.secret, self.prefix, self.seed,
                         self.check_interval, self.check_timeout)
        return ProcessPlacement(spec, self.consul, self.keys, self.registration, self._instances, kernel,
                                receiver, hosts, watch_settings=lambda k: k.settings and self.config(k))

    # -- instances ------------------------------------------------------------------------------
    def add_service(self, service: str | ServiceKind, replicas: int = 1, max_workers: int = 16,
                    version: str = "v1") -> list:
        """Start ``replicas`` more instances of a service and register each one.

        ``version`` is registered as a tag and as ``Meta.version``: release routing (blue-green,
        canary: see :meth:`set_policy`) chooses between the versions of a service.
        """
        kind = service if isinstance(service, ServiceKind) else KINDS.get(service)
        if kind is None:
            raise KeyError(f"unknown service {service!r}; known: {sorted(KINDS)}")
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        if not version or not version.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"version must be a DNS-friendly label such as 'v2', got {version!r}")
        self.configs.refuse_if_closed()
        existing = sum(1 for i in self._instances.values() if i.kind.name == kind.name)
        started = self.placement.add(kind, range(existing + 1, existing + replicas + 1), max_workers, version)
        for instance in started:
            self._log("start", instance)
        return started

    def on_stop(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the mesh stops, once its instances have (a bus's log, say)."""
        self._stop_actions.append(action)

    def runtime(self, ref) -> InstanceRuntime:
        """Return the runtime an instance's handlers use (its work log, its clients)."""
        return self.placement.runtime(self.instance(ref).id)

    def registry_name(self, service: str) -> str:
        """The name ``service`` is registered under: itself, or ``<prefix>-<service>`` (what a
        raw registry client — ``mesh.consul``, DNS — must ask for)."""
        return self.keys.registry_name(service)

    def kv_path(self, name: str) -> str:
        """Where the mesh keeps ``name`` in the KV store: ``name``, or ``<prefix>/name``."""
        return self.keys.root(name)

    def registry_id(self, ref) -> str:
        """The registry's id of an instance: its own, or ``<prefix>-<id>``."""
        return self.keys.registry_name(self.instance(ref).id)

    def set_weight(self, ref, weight: int) -> None:
        """Re-register an instance with ``Weights.Passing = weight`` (what weighted balancers use)."""
        if weight < 1:
            raise ValueError("weight must be at least 1")
        instance = self.instance(ref)
        self.registration.register(instance, weight)
        self.wait_until(lambda: any(e.id == instance.id and e.weight == weight
                                    for e in self.endpoints(instance.service)))

    def config(self, service: str | ServiceKind) -> ServiceConfig:
        """Return the live settings of a service, kept in the registry's KV store (config center)."""
        kind = service if isinstance(service, ServiceKind) else self._kind(service)
        if kind.settings is None:
            raise KeyError(f"service {kind.name!r} declares no settings")
        return self.configs.get(kind.name, kind.settings)

    def instances(self, service: str | None = None) -> list:
        return [i for i in self._instances.values() if service is None or i.service == service]

    def instance(self, ref):
        key = ref if isinstance(ref, str) else ref.id
        try:
            return self._instances[key]
        except KeyError:
            raise KeyError(f"no instance {key!r}; the mesh has {sorted(self._instances)}") from None

    def kill(self, ref):
        """Stop an instance hard, as a crash would: it stays registered until its check fails."""
        instance = self.instance(ref)
        instance.stop(grace=None)
        self._log("kill", instance)
        return instance

    def revive(self, ref):
        """Start a killed instance again on the same address; its check finds it healthy again."""
        instance = self.instance(ref)
        if not instance.running:
            instance.start()
        self._log("revive", instance)
        return instance

    def _log(self, action: str, instance) -> None:
        self.events.append(MeshEvent(time.monotonic(), action, instance.id))

    # -- discovery and calls --------------------------------------------------------------------
    def client(self, service: str, balancer: Balancer | None = None, caller: str = "client"):
        """Return a generated stub for ``service`` whose calls come from the notebook (``client``).

        Calls are balanced over the passing instances, follow the policy set with
        :meth:`set_policy`, and are traced and measured. ``balancer`` pins a balancer object;
        ``caller`` names who calls in traces and metrics (the API gateway calls as ``gateway``).
        """
        stack = self.clients.stack(caller, caller, service)
        if balancer is not None:
            with stack.lock:
                stack.balancer = balancer
        return stack.stub

    def breaker_states(self) -> dict[tuple[str, str], str]:
        """Return the state of every circuit breaker a caller holds now, by (caller instance or
        ``client``, callee service): ``closed``, ``open``, ``half_open`` (callers whose policy has
        no breaker are left out)."""
        return {**self.clients.breaker_states(), **self.placement.breaker_states()}

    def in_flight(self) -> dict[str, int]:
        """Return the calls each instance is serving now, by instance id (instances serving none
        are left out); a process is asked through its admin interface."""
        counts = {**self.metrics.in_flight(), **self.placement.in_flight()}
        return {instance: count for instance, count in counts.items() if count}

    def breaker(self, service: str, caller: str = "client"):
        """Return the circuit breaker of ``caller`` (an instance id, or ``client``) towards ``service``."""
        return self.clients.stack(service_of(caller), caller, service).breaker

    # -- policies, fallbacks and faults ---------------------------------------------------------
    def policy(self, service: str, method: str | None = None) -> ServiceConfig:
        """Return the live policy callers apply to ``service`` (or one method), in the config center."""
        return self.clients.policy(service, method)

    def breakers_of(self, instance: str) -> dict[str, str]:
        """Return the state of each circuit breaker ``instance`` keeps towards a service it calls."""
        return {**self.clients.breakers_of(instance), **self.placement.breakers_of(instance)}

    def allow_callers(self, service: str, callers: Iterable[str] | None) -> None:
        """Let only ``callers`` — services, ``client`` for the notebook, ``gateway`` — call
        ``service``, each proved by the identity the mesh signs for it; ``None`` lets anyone call
        again (see :mod:`mesh.client.identity`)."""
        self.shared.allow_callers(service, callers)
        self.placement.share_access_rule(service, callers)

    def set_policy(self, service: str, method: str | None = None, **settings) -> PolicySettings:
        """Change policy settings (see :class:`PolicySettings`) and wait until callers apply them.

        All the settings are checked before any is written: a bad one changes nothing. Release
        routing is set here too: ``release_version="v2"`` (blue-green switch),
        ``canary_version="v2", canary_percent=10`` (canary), ``canary_sticky=True``.
        """
        config = self.policy(service, method)
        config.set_many(**settings)
        return config.wait_for(lambda s: set(settings) <= config.explicit
                               and all(getattr(s, k) == v for k, v in settings.items()))

    def reset_policy(self, service: str, method: str | None = None) -> PolicySettings:
        config = self.policy(service, method)
        config.reset()
        return config.wait_for(lambda s: not config.explicit)

    def fallback(self, service: str, method: str, static=None, cache: bool = False) -> Fallback:
        """Answer ``service.method`` with a cached or static response when it is rejected or fails."""
        fallback = Fallback(static=static, cache=cache)
        self.shared.set_fallback(service, method, fallback)
        self.placement.share_fallback(service, method, fallback)
        return fallback

    def inject(self, ref, faults: Faults | None = None, **changes) -> Faults:
        """Set faults on one instance (see :class:`mesh.interceptors.Faults`); return them."""
        instance = self.instance(ref)
        injector = instance.faults
        result = injector.set(faults, **changes) if faults is not None else injector.set(**changes)
        self._log("inject", instance)
        return result

    def faults(self, ref) -> Faults:
        """Return the faults in force on one instance (see :meth:`inject`)."""
        return self.instance(ref).faults.faults

    def clear_faults(self, ref=None) -> None:
        for instance in [self.instance(ref)] if ref is not None else self.instances():
            instance.faults.set(Faults())

    def partition(self, caller: str, callee: str) -> None:
        """Drop every call from service ``caller`` to service ``callee`` (other pairs are untouched)."""
        for instance in self.instances(callee):
            instance.faults.set(partitioned_from=instance.faults.faults.partitioned_from | {caller})

    def heal(self, caller: str, callee: str) -> None:
        for instance in self.instances(callee):
            instance.faults.set(partitioned_from=instance.faults.faults.partitioned_from - {caller})

    # -- observing ------------------------------------------------------------------------------
    @property
    def otlp(self) -> OtlpReceiver | None:
        """Where the instances' processes send their spans and log lines (None in the kernel)."""
        return self.placement.otlp

    def traces(self) -> list[CallNode]:
        """Return the call tree of every traced request, oldest first."""
        return self.tracing.calls()

    def settle_telemetry(self, quiet: float = 0.3, timeout: float = 5.0) -> float:
        """Wait until the spans of calls already made have arrived; return the seconds waited.

        In the kernel every span is recorded as its call ends, so this returns at once. Processes
        export theirs in batches (every 0.1 s) over OTLP: this waits until none has arrived for
        ``quiet`` seconds (at most ``timeout``), as one waits for a collector before reading it.
        Call it after the load has stopped, before reading traces or metrics rows.
        """
        return self.placement.settle(quiet, timeout)

    def dependency_graph(self):
        """Return the services and who called whom, as a networkx DiGraph (from the traces)."""
        return self.tracing.dependency_graph()

    def proxy(self, service: str, balancer: Balancer | None = None) -> DiscoveryProxy:
        """Start a load-balancing proxy for ``service`` (server-side discovery); the mesh stops it."""
        proxy = DiscoveryProxy(self.discovery.watch(service), balancer)
        self._proxies.append(proxy)
        return proxy

    def client_via(self, proxy: DiscoveryProxy):
        """Return a plain stub on one channel to ``proxy``: a client that knows only that address."""
        kind = self._kind(proxy.service)
        channel = grpc.insecure_channel(proxy.address)
        self._plain_channels.append(channel)
        return kind.stub(channel)

    def _kind(self, service: str) -> ServiceKind:
        kind = KINDS.get(service) or next(
            (i.kind for i in self._instances.values() if i.service == service), None)
        if kind is None:
            raise KeyError(f"no stub known for service {service!r}")
        return kind

    def versions(self, service: str) -> dict[str, list[str]]:
        """Return the running instances of ``service`` by version: ``{"v1": ["greeter-1", ...]}``."""
        found: dict[str, list[str]] = {}
        for instance in self.instances(service):
            found.setdefault(instance.version, []).append(instance.id)
        return found

    def passing(self, service: str) -> list[str]:
        """Return the ids of the instances discovery currently reports passing."""
        return [e.id for e in self.discovery.endpoints(service)]

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        return self.discovery.endpoints(service)

    def health(self, service: str | None = None) -> list[dict]:
        """Return one row per instance: id, address, whether it runs, and its checks' status."""
        rows = []
        for name in sorted({i.service for i in self.instances(service)}):
            _, entries = self.consul.health.service(self.registry_name(name))
            status = {self.keys.local_name(e["Service"]["ID"]): e["Checks"] for e in entries}
            for instance in self.instances(name):
                checks = [c for c in status.get(instance.id, []) if c["ServiceID"]]
                rows.append({
                    "instance": instance.id,
                    "address": instance.address,
                    "running": instance.running,
                    "status": checks[0]["Status"] if checks else "deregistered",
                    "output": checks[0]["Output"] if checks else "",
                })
        return rows

    def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0,
                   poll: float = 0.02) -> float:
        """Wait until ``condition()`` holds; return the seconds waited, or raise TimeoutError."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"condition not met within {timeout:g} s")
            time.sleep(poll)
        return time.monotonic() - start

    def wait_until_passing(self, service: str | None = None, timeout: float = 15.0) -> float:
        """Wait until discovery reports every running instance passing; return seconds waited."""
        names = sorted({i.service for i in self.instances(service)})

        def all_passing() -> bool:
            return all(
                {i.id for i in self.instances(n) if i.running} <= set(self.passing(n)) for n in names
            )

        return self.wait_until(all_passing, timeout)

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Close clients, deregister and stop every instance, stop watches and an owned registry."""
        if self._stopped:
            return
        self._stopped = True
        self.configs.close()  # nothing new is made from here on
        self.clients.close()
        for channel in self._plain_channels:
            channel.close()
        for proxy in self._proxies:
            proxy.stop()
        self.discovery.request_stop()
        placement = getattr(self, "placement", None)  # absent if making it failed
        if placement is not None:
            placement.stop(handlers_end=time.monotonic() + 2.0)  # then a stuck handler is left behind
        for action in self._stop_actions:
            with contextlib.suppress(Exception):  # one failed action must not keep the mesh running
                action()
        self.backend.stop()
        self.discovery.stop()
        self.configs.stop()
        self.tracing.shutdown()
        self.metrics.prometheus.stop()
        self.logs.detach()
        self.consul.http.session.close()
        _live.release(self.name, self)

    @property
    def registry(self) -> Registry | None:
        """The embedded registry, when the mesh runs on one."""
        return self.backend.registry

    @property
    def dns_port(self) -> int | None:
        """The UDP port of the registry's DNS interface, when the mesh knows it."""
        return self.backend.dns_port

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        counts: dict[str, int] = {}
        for instance in self._instances.values():
            counts[instance.service] = counts.get(instance.service, 0) + instance.running
        services = ", ".join(f"{n}: {c} running" for n, c in counts.items()) or "no services"
        return f"<Mesh {self.name!r} {state}; {services}; {self.backend}>"


def stop_all(meshes: Iterable[Mesh] | None = None) -> None:
    """Stop every live mesh (run at interpreter exit)."""
    for mesh in list(meshes) if meshes is not None else _live.running():
        mesh.stop()


atexit.register(stop_all)
