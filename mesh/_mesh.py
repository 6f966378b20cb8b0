"""``Mesh``: replicas of services as real gRPC servers in this process, registered and discovered.

Every instance listens on its own loopback port, serves ``grpc.health.v1``, and is registered with
a gRPC health check that the registry runs. Clients find instances only through the registry.

A notebook cell that builds ``Mesh(...)`` again stops the previous mesh of the same name first, so
re-running cells leaks no ports, threads or registrations.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import consul
import grpc

from ._client import ClientStack
from ._instance import Instance
from ._runtime import InstanceRuntime
from .admin import AdminServicer
from .backends import Backend, start_backend
from .config import PREFIX as CONFIG_ROOT
from .config import ServiceConfig
from .discovery import Discovery, Endpoint, local_name, registry_name
from .hosts import Hosts
from .identity import Identities
from .interceptors import FaultInjector, Faults, ServerContext, ServerIdentity, ServerMetrics, ServerTracing
from .logs import LogStore
from .metrics import Metrics
from .otlp import OtlpReceiver
from .policies import Balancer, Fallback, PolicySettings, rng_for
from .processes import ProcessInstance
from .proxy import DiscoveryProxy
from .services import KINDS, ServiceKind
from .shared_state import encode_fallback
from .tracing import CallNode, Tracing

if TYPE_CHECKING:
    from .registry import Registry

_live: weakref.WeakValueDictionary[str, Mesh] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()
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
                 prefix: str = "", mode: str = "kernel", hosts: Hosts | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if hosts is not None and (mode != "processes" or registry not in ("embedded", None)):
            raise ValueError("hosts need mode='processes' and the embedded registry (which then "
                             "listens on the hosts' gateway address)")
        if prefix and not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix must be a DNS label of lowercase letters, digits and dashes "
                             f"(at most 24 characters, no dash at either end), got {prefix!r}")
        with _live_lock:
            previous = _live.get(name)
        if previous is not None:
            previous.stop()
        self.name = name
        self.prefix = prefix
        self.mode = mode
        self.seed = seed
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.events: list[MeshEvent] = []
        self.tracing = Tracing(name)
        self.metrics = Metrics()
        self.logs = LogStore(name).attach()
        self.identities = Identities(name)
        self._instances: dict[str, Instance] = {}
        self._runtimes: dict[str, InstanceRuntime] = {}
        self._stacks: dict[tuple[str, str], ClientStack] = {}
        self._stacks_lock = threading.Lock()
        self._plain_channels: list[grpc.Channel] = []
        self._proxies: list[DiscoveryProxy] = []
        self._configs: dict[str, ServiceConfig] = {}
        self._configs_lock = threading.Lock()
        self._fallbacks: dict[str, dict[str, Fallback]] = {}
        self._stop_actions: list[Callable[[], None]] = []
        self._fan_out = ThreadPoolExecutor(max_workers=32, thread_name_prefix=f"mesh-{name}-fanout")
        self._stopped = False
        self.hosts = hosts
        if hosts is not None:  # the registry where every host can reach it: the bridge's address
            from .registry import Registry

            found = Registry(host=hosts.gateway).start()
            self.backend = Backend("embedded", found.host, found.http_port, found.dns_port, registry=found)
        else:
            self.backend = start_backend(registry)
        self.consul = self.backend.client()
        self.discovery = Discovery(self.consul, prefix=prefix)
        with _live_lock:
            _live[name] = self
        self.otlp = None  # where processes send their spans (on the hosts' gateway, if any)
        try:
            if mode == "processes":
                gateway = hosts.gateway if hosts is not None else "127.0.0.1"
                self.otlp = OtlpReceiver(self.tracing.store, self.metrics, host=gateway, logs=self.logs)
                self._wait_ready([i for service, replicas in (services or {}).items()
                                  for i in self._spawn(service, replicas)])
            else:
                for service, replicas in (services or {}).items():
                    self.add_service(service, replicas)
        except BaseException:
            self.stop()
            raise

    # -- instances ------------------------------------------------------------------------------
    def add_service(self, service: str | ServiceKind, replicas: int = 1, max_workers: int = 16,
                    version: str = "v1") -> list[Instance]:
        """Start ``replicas`` more instances of a service and register each one.

        ``version`` is registered as a tag and as ``Meta.version``: release routing (blue-green,
        canary: see :meth:`set_policy`) chooses between the versions of a service.
        """
        if self.mode == "processes" and self._spawnable(service):
            return self._wait_ready(self._spawn(service, replicas, max_workers, version))
        started = []
        for kind, number in self._new_numbers(service, replicas, version):
            instance = self._start_instance(kind, number, max_workers, version)
            self._log("start", instance)
            started.append(instance)
        return started

    @staticmethod
    def _spawnable(service: str | ServiceKind) -> bool:
        """Whether a process can start ``service``: one of ``KINDS`` by its name, or a kind made at
        run time that says how (``serve_args``: the bus's replicas); any other kind made at run
        time (a service defined in a notebook cell) runs in the kernel."""
        if isinstance(service, ServiceKind) and service.serve_args:
            return True
        name = service.name if isinstance(service, ServiceKind) else service
        known = KINDS.get(name)
        return known is not None and (not isinstance(service, ServiceKind) or known is service)

    def on_stop(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the mesh stops, once its instances have (a bus's log, say)."""
        self._stop_actions.append(action)

    def _new_numbers(self, service: str | ServiceKind, replicas: int, version: str) -> list[tuple]:
        kind = service if isinstance(service, ServiceKind) else KINDS.get(service)
        if kind is None:
            raise KeyError(f"unknown service {service!r}; known: {sorted(KINDS)}")
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        if not version or not version.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"version must be a DNS-friendly label such as 'v2', got {version!r}")
        existing = sum(1 for i in self._instances.values() if i.kind.name == kind.name)
        return [(kind, number) for number in range(existing + 1, existing + replicas + 1)]

    def _spawn(self, service: str | ServiceKind, replicas: int, max_workers: int = 16,
               version: str = "v1") -> list[ProcessInstance]:
        """Start the processes of ``replicas`` more instances, without waiting for them."""
        self._refuse_if_stopped()
        spawned = []
        for kind, number in self._new_numbers(service, replicas, version):
            if kind.settings:
                self.config(kind)  # watched before its processes start
            instance = self._instances[f"{kind.name}-{number}"] = ProcessInstance(
                self, kind, number, max_workers, version)
            spawned.append(instance.spawn())
        return spawned

    def _wait_ready(self, spawned: list[ProcessInstance]) -> list[ProcessInstance]:
        # Started together, then waited for: each takes a second or two to import and serve.
        for instance in spawned:
            instance.wait_ready()
            self._log("start", instance)
        return spawned

    def _start_instance(self, kind: ServiceKind, number: int, max_workers: int, version: str,
                        port: int = 0, host: str = "127.0.0.1", advertise: str = "") -> Instance:
        """Start one instance in this process (on ``host:port``, port 0 for any) and register it
        (at ``advertise``, ``host:port`` of a proxy in front of it, if given)."""
        config = self.config(kind) if kind.settings else None
        instance = Instance(kind, number, lambda i, c=config: i.kind.servicer(self._runtime(i, c)),
                            self._server_interceptors, host=host, max_workers=max_workers, version=version,
                            admin=lambda i, c=config: AdminServicer(
                                i, lambda: c.current if c else None, lambda: self.breakers_of(i.id),
                                self.metrics, self.logs))
        instance.port = port
        instance.start()
        self._instances[instance.id] = instance
        self._register(instance, address=advertise)
        return instance

    def _server_interceptors(self, instance: Instance) -> list[grpc.ServerInterceptor]:
        return [
            ServerContext(instance.service, instance.id, self.name),
            ServerTracing(self.tracing, instance.service, instance.id),
            ServerMetrics(self.metrics, instance.service, instance.id, on_call=instance.count_call),
            ServerIdentity(self.identities, instance.service),
            FaultInjector(rng_for(self.seed, "faults", instance.id), instance.stopping),
        ]

    def _runtime(self, instance: Instance, config) -> InstanceRuntime:
        runtime = self._runtimes.get(instance.id)
        if runtime is None:
            runtime = self._runtimes[instance.id] = InstanceRuntime(instance, self._client_of, config,
                                                                    self._fan_out)
        return runtime

    def runtime(self, ref: str | Instance) -> InstanceRuntime:
        """Return the runtime an instance's handlers use (its work log, its clients)."""
        return self._runtimes[self.instance(ref).id]

    def _register(self, instance: Instance, weight: int = 1, address: str = "") -> None:
        host, _, port = (address or instance.address).rpartition(":")
        self.consul.agent.service.register(
            self.registry_name(instance.service), service_id=self.registry_id(instance),
            address=host, port=int(port),
            tags=["workbench", instance.version], meta={"mesh": self.name, "version": instance.version},
            weights={"Passing": weight, "Warning": 1},
            check=consul.Check.grpc(f"{host}:{port}", self.check_interval, timeout=self.check_timeout),
        )

    def registry_name(self, service: str) -> str:
        """The name ``service`` is registered under: itself, or ``<prefix>-<service>`` (what a
        raw registry client — ``mesh.consul``, DNS — must ask for)."""
        return registry_name(self.prefix, service)

    def kv_path(self, name: str) -> str:
        """Where the mesh keeps ``name`` in the KV store: ``name``, or ``<prefix>/name``."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def registry_id(self, ref: str | Instance) -> str:
        """The registry's id of an instance: its own, or ``<prefix>-<id>``."""
        return registry_name(self.prefix, self.instance(ref).id)

    def set_weight(self, ref: str | Instance, weight: int) -> None:
        """Re-register an instance with ``Weights.Passing = weight`` (what weighted balancers use)."""
        if weight < 1:
            raise ValueError("weight must be at least 1")
        instance = self.instance(ref)
        self._register(instance, weight)
        self.wait_until(lambda: any(e.id == instance.id and e.weight == weight
                                    for e in self.endpoints(instance.service)))

    def config(self, service: str | ServiceKind) -> ServiceConfig:
        """Return the live settings of a service, kept in the registry's KV store (config center)."""
        kind = service if isinstance(service, ServiceKind) else self._kind(service)
        if kind.settings is None:
            raise KeyError(f"service {kind.name!r} declares no settings")
        return self._config_named(kind.name, kind.settings)

    def _config_named(self, name: str, settings: type) -> ServiceConfig:
        """Return the config of ``name``, making (and watching) it once, never after the mesh stopped."""
        config = self._configs.get(name)
        if config is None:
            with self._configs_lock:
                config = self._configs.get(name)
                if config is None:
                    self._refuse_if_stopped()
                    config = self._configs[name] = ServiceConfig(self.consul, name, settings,
                                                                 root=self.kv_path(CONFIG_ROOT))
        return config

    def _refuse_if_stopped(self) -> None:
        """A stopped (or stopping) mesh makes no new client or watch: nothing would stop it."""
        if self._stopped:
            raise RuntimeError(f"the mesh {self.name!r} has stopped")

    def instances(self, service: str | None = None) -> list[Instance]:
        return [i for i in self._instances.values() if service is None or i.service == service]

    def instance(self, ref: str | Instance) -> Instance:
        key = ref.id if isinstance(ref, Instance | ProcessInstance) else ref
        try:
            return self._instances[key]
        except KeyError:
            raise KeyError(f"no instance {key!r}; the mesh has {sorted(self._instances)}") from None

    def kill(self, ref: str | Instance) -> Instance:
        """Stop an instance hard, as a crash would: it stays registered until its check fails."""
        instance = self.instance(ref)
        instance.stop(grace=None)
        self._log("kill", instance)
        return instance

    def revive(self, ref: str | Instance) -> Instance:
        """Start a killed instance again on the same address; its check finds it healthy again."""
        instance = self.instance(ref)
        if not instance.running:
            instance.start()
        self._log("revive", instance)
        return instance

    def _log(self, action: str, instance: Instance) -> None:
        self.events.append(MeshEvent(time.monotonic(), action, instance.id))

    # -- discovery and calls --------------------------------------------------------------------
    def client(self, service: str, balancer: Balancer | None = None, caller: str = "client"):
        """Return a generated stub for ``service`` whose calls come from the notebook (``client``).

        Calls are balanced over the passing instances, follow the policy set with
        :meth:`set_policy`, and are traced and measured. ``balancer`` pins a balancer object;
        ``caller`` names who calls in traces and metrics (the API gateway calls as ``gateway``).
        """
        stack = self._stack(caller, caller, service)
        if balancer is not None:
            with stack.lock:
                stack.balancer = balancer
        return stack.stub

    def _client_of(self, service: str, instance: Instance):
        return self._stack(instance.service, instance.id, service).stub

    def _stack(self, caller: str, caller_instance: str, callee: str) -> ClientStack:
        key = (caller_instance, callee)
        with self._stacks_lock:
            stack = self._stacks.get(key)
        if stack is None:
            self._refuse_if_stopped()
            kind = self._kind(callee)
            stack = ClientStack(caller, caller_instance, callee, self.discovery.watch(callee), kind.stub,
                                self.policy(callee), lambda m: self._configs.get(f"policy.{callee}.{m}"),
                                self.tracing, self.metrics, self.seed, identities=self.identities)
            stack.fallbacks = self._fallbacks.setdefault(callee, {})
            with self._stacks_lock:
                made, stack = stack, self._stacks.setdefault(key, stack)
                stopped = self._stopped
            if made is not stack or stopped:  # another thread made it first, or the mesh stopped meanwhile
                made.close()
                self._refuse_if_stopped()
        return stack

    def breaker_states(self) -> dict[tuple[str, str], str]:
        """Return the state of every circuit breaker a caller holds now, by (caller instance or
        ``client``, callee service): ``closed``, ``open``, ``half_open`` (callers whose policy has
        no breaker are left out)."""
        with self._stacks_lock:
            stacks = list(self._stacks.items())
        states = {key: stack.breaker.state.value for key, stack in stacks if stack.breaker is not None}
        for instance in self._processes():  # their callers' breakers are in them: ask
            states.update(instance.breakers())
        return states

    def in_flight(self) -> dict[str, int]:
        """Return the calls each instance is serving now, by instance id (instances serving none
        are left out); a process is asked through its admin interface."""
        counts = dict(self.metrics.in_flight())
        for instance in self._processes():
            found = instance.status()
            counts.pop(instance.id, None)
            if found is not None and found.in_flight:
                counts[instance.id] = found.in_flight
        return counts

    def _processes(self) -> list[ProcessInstance]:
        return [i for i in self.instances() if isinstance(i, ProcessInstance) and i.running]

    def breaker(self, service: str, caller: str = "client"):
        """Return the circuit breaker of ``caller`` (an instance id, or ``client``) towards ``service``."""
        caller_service = caller.rsplit("-", 1)[0] if caller != "client" else "client"
        return self._stack(caller_service, caller, service).breaker

    # -- policies, fallbacks and faults ---------------------------------------------------------
    def policy(self, service: str, method: str | None = None) -> ServiceConfig:
        """Return the live policy callers apply to ``service`` (or one method), in the config center."""
        return self._config_named(f"policy.{service}" + (f".{method}" if method else ""), PolicySettings)

    def breakers_of(self, instance: str) -> dict[str, str]:
        """Return the state of each circuit breaker ``instance`` keeps towards a service it calls."""
        found = self._instances.get(instance)
        if isinstance(found, ProcessInstance):
            held = sorted(found.breakers().items())
            return {f"{caller}->{callee}": state for (caller, callee), state in held}
        with self._stacks_lock:
            stacks = [((caller, callee), stack) for (caller, callee), stack in self._stacks.items()
                      if caller == instance]
        return {f"{caller}->{callee}": stack.breaker.state.value for (caller, callee), stack in sorted(stacks)
                if stack.breaker is not None}

    def allow_callers(self, service: str, callers: Iterable[str] | None) -> None:
        """Let only ``callers`` — services, ``client`` for the notebook, ``gateway`` — call
        ``service``, each proved by the identity the mesh signs for it; ``None`` lets anyone call
        again (see :mod:`mesh.identity`)."""
        self.identities.allow_callers(service, callers)
        if self.mode == "processes":  # the processes follow the rules from the KV store
            key = f"{self.kv_path('access')}/{service}"
            if callers is None:
                self.consul.kv.delete(key)
            else:
                self.consul.kv.put(key, json.dumps(sorted(callers)))

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
        self._fallbacks.setdefault(service, {})[method] = fallback
        if self.mode == "processes":  # the callers in processes answer with it too
            self.consul.kv.put(f"{self.kv_path('fallbacks')}/{service}/{method}", encode_fallback(fallback))
        return fallback

    def adopt_access_rules(self, rules: Mapping[str, Iterable[str]]) -> None:
        """Make ``rules`` (``service -> callers``) the whole of this mesh's access rules, lifting
        any other: what an instance's process does with the rules its kernel shares."""
        for service in set(self.identities.rules()) - set(rules):
            self.identities.allow_callers(service, None)
        for service, callers in rules.items():
            self.identities.allow_callers(service, callers)

    def adopt_fallbacks(self, fallbacks: Mapping[str, Mapping[str, Fallback]]) -> None:
        """Make ``fallbacks`` (``service -> method -> Fallback``) the whole of this mesh's
        fallbacks: what an instance's process does with those its kernel shares. Updated in place,
        since the callers' stacks hold the mesh's dicts."""
        for service in set(self._fallbacks) | set(fallbacks):
            methods = self._fallbacks.setdefault(service, {})
            methods.clear()
            methods.update(fallbacks.get(service, {}))

    def inject(self, ref: str | Instance, faults: Faults | None = None, **changes) -> Faults:
        """Set faults on one instance (see :class:`mesh.interceptors.Faults`); return them."""
        instance = self.instance(ref)
        injector = instance.faults
        result = injector.set(faults, **changes) if faults is not None else injector.set(**changes)
        self._log("inject", instance)
        return result

    def faults(self, ref: str | Instance) -> Faults:
        """Return the faults in force on one instance (see :meth:`inject`)."""
        return self.instance(ref).faults.faults

    def clear_faults(self, ref: str | Instance | None = None) -> None:
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
        if self.otlp is None:
            return 0.0
        start = last_change = time.monotonic()
        seen = self.otlp.received
        while (now := time.monotonic()) - last_change < quiet and now - start < timeout:
            time.sleep(0.02)
            if self.otlp.received != seen:
                seen, last_change = self.otlp.received, time.monotonic()
        return time.monotonic() - start

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
            status = {local_name(self.prefix, e["Service"]["ID"]): e["Checks"] for e in entries}
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
        with self._configs_lock, self._stacks_lock:  # nothing new is made from here on
            self._stopped = True
            stacks = list(self._stacks.values())
        for stack in stacks:
            stack.close()
        for channel in self._plain_channels:
            channel.close()
        for proxy in self._proxies:
            proxy.stop()
        self._stacks.clear()
        self.discovery.request_stop()
        for config in list(self._configs.values()):
            config.request_stop()
        handlers_end = time.monotonic() + 2.0  # then a handler that never returns is left behind
        processes = [i for i in self._instances.values() if isinstance(i, ProcessInstance)]
        for instance in processes:
            instance.terminate()  # all at once: each then deregisters and sends its last spans
        for instance in self._instances.values():
            # The registry may already be gone; the instance must stop all the same.
            with contextlib.suppress(Exception):
                self.consul.agent.service.deregister(self.registry_id(instance))
            if isinstance(instance, ProcessInstance):
                instance.stop(grace=max(handlers_end - time.monotonic(), 0.5))
                instance.release()
                with contextlib.suppress(Exception):
                    instance.faults.forget()  # a later mesh of the same names starts without them
            else:
                instance.stop(grace=None, wait=max(handlers_end - time.monotonic(), 0.0))
        for action in self._stop_actions:
            with contextlib.suppress(Exception):
                action()
        if self.otlp is not None:
            self.otlp.stop()
            for shared in ("access", "fallbacks"):  # a later mesh of the same names starts without them
                with contextlib.suppress(Exception):
                    self.consul.kv.delete(self.kv_path(shared), recurse=True)
        self.backend.stop()
        self.discovery.stop()
        for config in list(self._configs.values()):
            config.stop()
        self._fan_out.shutdown(wait=True)
        self.tracing.shutdown()
        self.metrics.prometheus.stop()
        self.logs.detach()
        self.consul.http.session.close()
        with _live_lock:
            if _live.get(self.name) is self:
                del _live[self.name]

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
    with _live_lock:
        targets = list(meshes if meshes is not None else _live.values())
    for mesh in targets:
        mesh.stop()


atexit.register(stop_all)
