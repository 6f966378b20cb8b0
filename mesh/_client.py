"""One caller's connection to one service: its channel, its policies, and its telemetry.

A :class:`ClientStack` belongs to a caller (the notebook's ``client``, or one instance of a
service) and a callee service. It holds the balanced channel, the balancer, the policy state of
each method (built from the config center's :class:`PolicySettings` and rebuilt when they change),
fallbacks, and the interceptor that runs each call's plan; it is the route the call plan reads
(:class:`mesh.policies.plan.Route`). Its :attr:`stub` is the generated stub on all of that.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from .channel import BalancedChannel
from .config import ServiceConfig
from .interceptors import ResilienceInterceptor
from .interceptors.intercepted_channel import InterceptedChannel
from .metrics import Metrics
from .policies import Fallback, PolicySettings, PolicyState, Uniforms, make_balancer, rng_for
from .tracing import Tracing


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
        name = f"{self.caller_instance}->{self.callee}" + ("" if method == "*" else f".{method}")
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
