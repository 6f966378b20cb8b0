"""Callers' connections to services: one :class:`ClientStack` per caller and callee, kept by
:class:`Clients`.

A :class:`ClientStack` belongs to a caller (the notebook's ``client``, or one instance of a
service) and a callee service. It holds the balanced channel, the balancer, the policy state of
each method (built from the config center's :class:`PolicySettings` and rebuilt when they change),
fallbacks, and the interceptor that runs each call's plan; it is the route the call plan reads
(:class:`mesh.policies.plan.Route`). Its :attr:`stub` is the generated stub on all of that.
:class:`Clients` makes each stack once, reads the state of their breakers, and closes them all
when the mesh stops.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from ..client.channel import BalancedChannel
from ..control.config import ConfigCenter, ServiceConfig
from ..control.discovery import Discovery
from ..control.keys import policy_config
from ..interceptors import ResilienceInterceptor
from ..interceptors.intercepted_channel import InterceptedChannel
from ..policies import Fallback, PolicySettings, PolicyState, Uniforms, make_balancer, rng_for
from ..policies.names import breaker_name
from ..telemetry.metrics import Metrics
from ..telemetry.tracing import Tracing


class ClientStack:
    def __init__(self, caller: str, caller_instance: str, callee: str, watch, stub_class: type,
                 policy: ServiceConfig, method_policies, tracing: Tracing, metrics: Metrics,
                 seed: int | None, clock=time.monotonic, sleep=time.sleep, identities=None):
        self.caller, self.caller_instance, self.callee = caller, caller_instance, callee
        self.identities = identities  # the mesh's Identities: who this caller proves to be
        self.service = callee
        self.tracing, self.metrics = tracing, metrics
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = rng_for(seed, caller_instance, callee)
        self.draw = Uniforms(self.rng)
        self.fallbacks: dict[str, Fallback] = {}
        self._policy = policy
        self._method_policies = method_policies  # callable: method -> ServiceConfig | None
        self._states: dict[str, PolicyState] = {}
        settings = policy.current
        self.balancer = make_balancer(settings.balancer, self.rng, clock, settings.choice_count)
        self._balancer_kind = (settings.balancer, settings.choice_count)
        self.channel = BalancedChannel(watch)
        self._service_state = self._new_state(settings, "*")
        policy.subscribe(self._on_settings)
        self.interceptor = ResilienceInterceptor(self, sleep=sleep)
        self.stub = stub_class(InterceptedChannel(self.channel, self.interceptor))

    def _new_state(self, settings: PolicySettings, method: str) -> PolicyState:
        name = breaker_name(self.caller_instance, self.callee, None if method == "*" else method)
        return PolicyState(settings, name, self.clock,
                           on_transition=lambda event: self.metrics.breaker_transition(self.caller, event))

    def settings(self, method: str) -> PolicySettings:
        """The settings in force for ``method``: the service's, overridden by the method's own keys."""
        base = self._policy.current
        config = self._method_policies(method)
        if config is None or not config.explicit:
            return base
        return dataclasses.replace(base, **{k: getattr(config.current, k) for k in config.explicit})

    def state(self, method: str) -> PolicyState:
        settings = self.settings(method)
        with self.lock:
            if settings is self._service_state.settings or settings == self._service_state.settings:
                return self._service_state
            state = self._states.get(method)
            if state is None:
                state = self._states[method] = self._new_state(settings, method)
            elif state.settings != settings:
                state.update(settings)
            return state

    def instances(self):
        """The instances discovery reports passing now (what the call plan picks from)."""
        return self.channel.endpoints

    def _on_settings(self, settings: PolicySettings) -> None:
        with self.lock:
            self._service_state.update(settings)
            kind = (settings.balancer, settings.choice_count)
            if kind != self._balancer_kind:
                self.balancer = make_balancer(settings.balancer, self.rng, self.clock, settings.choice_count)
                self._balancer_kind = kind

    @property
    def breaker(self):
        return self._service_state.breaker

    def close(self) -> None:
        self._policy.unsubscribe(self._on_settings)
        self.channel.close()


class Clients:
    """Every caller's stack towards each service it calls, made once, all closed together.

    A caller is the notebook (``client``), the gateway, or an instance (its calls carry its id).
    ``stub_of(service)`` is the generated stub class of a service; ``fallbacks_of(service)`` the
    fallbacks its callers answer with (a dict shared with the mesh, changed in place).
    """

    def __init__(self, discovery: Discovery, configs: ConfigCenter, stub_of: Callable[[str], type],
                 fallbacks_of: Callable[[str], dict[str, Fallback]], tracing: Tracing, metrics: Metrics,
                 seed: int | None, identities=None):
        self._discovery, self._configs, self._stub_of = discovery, configs, stub_of
        self._fallbacks_of = fallbacks_of
        self._tracing, self._metrics, self._seed, self._identities = tracing, metrics, seed, identities
        self._stacks: dict[tuple[str, str], ClientStack] = {}
        self._lock = threading.Lock()
        self._closed = False

    def policy(self, service: str, method: str | None = None) -> ServiceConfig:
        """The live policy callers apply to ``service`` (or to one method), in the config center."""
        return self._configs.get(policy_config(service, method), PolicySettings)

    def stack(self, caller: str, caller_instance: str, callee: str) -> ClientStack:
        """Return the stack of ``caller_instance`` (of service ``caller``) towards ``callee``."""
        key = (caller_instance, callee)
        with self._lock:
            stack = self._stacks.get(key)
        if stack is None:
            self._configs.refuse_if_closed()
            stack = ClientStack(caller, caller_instance, callee, self._discovery.watch(callee),
                                self._stub_of(callee), self.policy(callee),
                                lambda m: self._configs.find(policy_config(callee, m)),
                                self._tracing, self._metrics, self._seed, identities=self._identities)
            stack.fallbacks = self._fallbacks_of(callee)
            with self._lock:
                made, stack = stack, self._stacks.setdefault(key, stack)
                closed = self._closed
            if made is not stack or closed:  # another thread made it first, or the mesh stopped meanwhile
                made.close()
                self._configs.refuse_if_closed()
        return stack

    def breaker_states(self) -> dict[tuple[str, str], str]:
        """The state of every breaker held here, by (caller instance, callee service)."""
        with self._lock:
            stacks = list(self._stacks.items())
        return {key: stack.breaker.state.value for key, stack in stacks if stack.breaker is not None}

    def breakers_of(self, caller_instance: str) -> dict[str, str]:
        """The state of each breaker ``caller_instance`` holds here, by breaker name."""
        held = sorted(self.breaker_states().items())
        return {breaker_name(caller, callee): state for (caller, callee), state in held
                if caller == caller_instance}

    def close(self) -> None:
        """Close every stack; none is made after this."""
        with self._lock:
            self._closed = True
            stacks, self._stacks = list(self._stacks.values()), {}
        for stack in stacks:
            stack.close()
