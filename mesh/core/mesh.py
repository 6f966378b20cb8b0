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
import dataclasses
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import grpc

from ..client.discovery_proxy import DiscoveryProxy
from ..client.identity import Identities
from ..control.backends import Backend, start_backend
from ..control.config import ConfigCenter, ServiceConfig
from ..control.discovery import Discovery
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
from ..telemetry.tracing import Tracing
from .clients import Clients
from .lifetime import ByName
from .observing import MeshObserving
from .placement import KernelPlacement, Placement
from .roster import MeshEvent, Roster
from .runtime import InstanceRuntime
from .shared import SharedState

if TYPE_CHECKING:
    from ..registry import Registry

_live = ByName()
MODES = ("kernel", "processes")
_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")


class Mesh(MeshObserving):
    """Replicas of services, a registry they register with, and clients that discover them.

    ``Mesh({"greeter": 3})`` starts an embedded registry and three Greeter replicas. ``registry=``
    chooses another (see :mod:`mesh.control.backends`): ``"env"`` for the agent at ``CONSUL_HTTP_ADDR``,
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
    :class:`mesh.processes.ProcessPlacement`): faults, policies, settings, access rules and
    fallbacks reach the processes through the KV store, their spans come back over OTLP, and
    ``kill`` is SIGKILL. With ``hosts`` (:class:`mesh.processes.Hosts`, root only) the processes
    run on hosts made of network namespaces, and the registry listens on the hosts' gateway
    address. ``identities`` signs the mesh's service identities (a process of a mesh is given its
    kernel's, so that each side verifies the other).

    ``token`` is the ACL token the mesh sends the registry with every request, from the kernel and
    from its processes alike (a learner's, on a class registry with ACLs: see
    :mod:`mesh.control.classroom`). ``acl`` (a :class:`mesh.registry.ACLConfig`) turns Consul's ACL
    system on in the embedded registry the mesh starts; the mesh then uses the management token
    (one is made if the configuration names none).
    """

    def __init__(self, services: Mapping[str, int] | None = None, *,
                 registry: Registry | str | None = "embedded", name: str = "default",
                 check_interval: str = "1s", check_timeout: str = "1s", seed: int | None = None,
                 prefix: str = "", mode: str = "kernel", hosts: Hosts | None = None,
                 identities: Identities | None = None, token: str | None = None, acl=None):
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
        self.roster = Roster()  # the instances, shared with the placement that starts them
        self.events: list[MeshEvent] = self.roster.events
        self.tracing = Tracing(name)
        self.metrics = Metrics()
        self.logs = LogStore(name).attach()
        #: signs this mesh's identities; a process of a mesh is given its kernel's (``mesh.serve``)
        self.identities = identities or Identities(name)
        self.shared = SharedState(self.identities)
        self._plain_channels: list[grpc.Channel] = []
        self._proxies: list[DiscoveryProxy] = []
        self._stop_actions: list[Callable[[], None]] = []
        self._stopped = False
        self.hosts = hosts
        if acl is not None and acl.management_token is None:
            acl = dataclasses.replace(acl, management_token=str(uuid.uuid4()))
        if acl is not None and token is None:
            token = acl.management_token
        if hosts is not None:  # the registry where every host can reach it: the bridge's address
            from ..registry import Registry

            found = Registry(host=hosts.gateway, acl=acl).start()
            self.backend = Backend("embedded", found.host, found.http_port, found.dns_port, registry=found)
        else:
            self.backend = start_backend(registry, acl=acl)
        self.backend.token = token
        self.consul = self.backend.client()
        self.discovery = Discovery(self.consul, prefix=prefix)
        self.registration = Registration(self.consul, self.keys, name, check_interval, check_timeout)
        self.configs = ConfigCenter(self.consul, self.keys.root(CONFIG), owner=f"the mesh {name!r}")
        self.clients = Clients(self.discovery, self.configs, lambda callee: self.roster.kind_of(callee).stub,
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
        kernel = KernelPlacement(self.name, self.seed, self.roster, self.registration, self.configs,
                                 self.clients, self.tracing, self.metrics, self.logs, self.identities)
        if mode == "kernel":
            return kernel
        receiver = OtlpReceiver(self.tracing.store, self.metrics, logs=self.logs,
                                host=hosts.gateway if hosts is not None else "127.0.0.1")
        spec = SpawnSpec(self.backend.http_address, self.name, self.identities.secret, self.prefix, self.seed,
                         self.check_interval, self.check_timeout, otlp=receiver.address,
                         token=self.backend.token)
        return ProcessPlacement(spec, self.consul, self.keys, self.registration, self.roster, kernel,
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
        numbers = self.roster.next_numbers(kind, replicas, version)
        self.configs.refuse_if_closed()
        started = self.placement.add(kind, numbers, max_workers, version)
        for instance in started:
            self.roster.log("start", instance)
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
        kind = service if isinstance(service, ServiceKind) else self.roster.kind_of(service)
        if kind.settings is None:
            raise KeyError(f"service {kind.name!r} declares no settings")
        return self.configs.get(kind.name, kind.settings)

    def kill(self, ref):
        """Stop an instance hard, as a crash would: it stays registered until its check fails."""
        instance = self.instance(ref)
        instance.stop(grace=None)
        self.roster.log("kill", instance)
        return instance

    def revive(self, ref):
        """Start a killed instance again on the same address; its check finds it healthy again."""
        instance = self.instance(ref)
        if not instance.running:
            instance.start()
        self.roster.log("revive", instance)
        return instance

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

    def breaker(self, service: str, caller: str = "client"):
        """Return the circuit breaker of ``caller`` (an instance id, or ``client``) towards ``service``."""
        return self.clients.stack(service_of(caller), caller, service).breaker

    # -- policies, fallbacks and faults ---------------------------------------------------------
    def policy(self, service: str, method: str | None = None) -> ServiceConfig:
        """Return the live policy callers apply to ``service`` (or one method), in the config center."""
        return self.clients.policy(service, method)

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
        self.roster.log("inject", instance)
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

    # -- server-side discovery ------------------------------------------------------------------
    def proxy(self, service: str, balancer: Balancer | None = None) -> DiscoveryProxy:
        """Start a load-balancing proxy for ``service`` (server-side discovery); the mesh stops it."""
        proxy = DiscoveryProxy(self.discovery.watch(service), balancer)
        self._proxies.append(proxy)
        return proxy

    def client_via(self, proxy: DiscoveryProxy):
        """Return a plain stub on one channel to ``proxy``: a client that knows only that address."""
        kind = self.roster.kind_of(proxy.service)
        channel = grpc.insecure_channel(proxy.address)
        self._plain_channels.append(channel)
        return kind.stub(channel)

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
        services = ", ".join(f"{n}: {c} running" for n, c in self.roster.counts().items()) or "no services"
        return f"<Mesh {self.name!r} {state}; {services}; {self.backend}>"


def stop_all(meshes: Iterable[Mesh] | None = None) -> None:
    """Stop every live mesh (run at interpreter exit)."""
    for mesh in list(meshes) if meshes is not None else _live.running():
        mesh.stop()


atexit.register(stop_all)
