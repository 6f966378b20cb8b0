"""The simulation: instances with workers and queues, clients with the mesh's policies, on SimPy.

One :class:`Simulation` runs a :class:`~sim.topology.Topology` on a ``simpy.Environment`` for a
span of simulated time, with arrivals at the entry service, faults on a timeline, and a seeded
``numpy.random.Generator``. Every caller applies the very same ``mesh.policies`` objects the real
mesh does (built from the same :class:`~mesh.policies.PolicySettings`), with ``env.now`` as
their clock. Results come back as one flat record per request, and sampled time series.

Speed: an instance whose service calls nothing queues its jobs with plain callbacks (an arrival,
a completion: two scheduled events per request); instances that call dependencies, and callers
with policies, run as SimPy processes. A request that needs neither takes the fast path.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import simpy

from mesh.policies import PolicySettings, PolicyState, RetryPolicy, TokenBucket, make_balancer

from .arrivals import Arrivals, Poisson
from .distributions import Sampler, Uniforms
from .results import Results
from .topology import Topology

OK = "OK"
SERVER_ERRORS = {"UNAVAILABLE", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "DATA_LOSS"}


@dataclass(frozen=True)
class Fault:
    """Something that happens to an instance (``service-n``) or every instance of a service at ``at``.

    ``slow`` multiplies service times; ``fail`` is the probability a call fails (INTERNAL);
    ``crash`` stops the instance (calls are refused until discovery drops it after the
    simulation's ``detection_delay``); ``recover`` undoes all of it.
    """

    at: float
    target: str
    slow: float | None = None
    fail: float | None = None
    crash: bool = False
    recover: bool = False


class Instance:
    """One replica: ``workers`` servers and a FIFO queue (bounded by ``queue_limit`` if set)."""

    __slots__ = (
        "_sample",
        "busy",
        "call_probability",
        "calls",
        "crashed",
        "discoverable",
        "fail",
        "id",
        "leaf",
        "limiter",
        "queue",
        "queue_limit",
        "served",
        "service",
        "sim",
        "slow",
        "workers",
    )

    def __init__(self, sim: Simulation, service: str, number: int):
        spec = sim.topology.services[service]
        self.sim = sim
        self.service = service
        self.id = f"{service}-{number}"
        self.workers = spec.workers
        self.queue_limit = spec.queue_limit
        self.calls = spec.calls
        self.leaf = not spec.calls
        self.fail = spec.fail_probability
        self.call_probability = spec.call_probability
        self.limiter = TokenBucket(spec.rate_limit, max(1.0, spec.rate_limit / 10), sim.clock) \
            if spec.rate_limit > 0 else None
        self.slow = 1.0
        self.crashed = False
        self.discoverable = True
        self.busy = 0
        self.served = 0
        self.queue: deque = deque()
        self._sample = Sampler(spec.service_time, sim.rng)

    @property
    def weight(self) -> int:
        return 1

    def submit(self, deadline: float, done: simpy.Event) -> None:
        """Take a job that must end by ``deadline``; ``done`` succeeds with its status."""
        if not self.sim.propagate_deadlines:
            deadline = math.inf
        if self.crashed:
            done.succeed("UNAVAILABLE")
        elif self.limiter is not None and self.limiter.acquire() is None:
            done.succeed("RESOURCE_EXHAUSTED")
        elif self.busy < self.workers:
            self._start(deadline, done)
        elif self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            done.succeed("RESOURCE_EXHAUSTED")
        else:
            self.queue.append((deadline, done))

    def _start(self, deadline: float, done: simpy.Event) -> None:
        env = self.sim.env
        now = env.now
        if deadline <= now:  # it waited past its caller's deadline: never start it
            done.succeed("DEADLINE_EXCEEDED")
            return
        self.busy += 1
        if self.leaf:
            work = self._sample() * self.slow
            status = OK
            if now + work > deadline:
                work, status = deadline - now, "DEADLINE_EXCEEDED"
            elif self.fail and self.sim.uniform() < self.fail:
                status = "INTERNAL"
            timer = env.timeout(work, status)
            timer.callbacks.append(lambda event, done=done: self._finish(done, event.value))
        else:
            env.process(self._handle(deadline, done))

    def _handle(self, deadline: float, done: simpy.Event):
        env = self.sim.env
        work = self._sample() * self.slow
        left = deadline - env.now
        yield env.timeout(min(work, left))
        status = OK if work <= left else "DEADLINE_EXCEEDED"
        if status == OK and self.fail and self.sim.uniform() < self.fail:
            status = "INTERNAL"
        calls = self.calls
        if self.call_probability < 1 and self.sim.uniform() >= self.call_probability:
            calls = ()  # this request needs only local work
        for group in calls if status == OK else ():
            calls = [env.process(self.sim.call(self, target, deadline)) for target in group]
            yield env.all_of(calls)
            failed = [c.value for c in calls if c.value != OK]
            if failed:
                status = failed[0]
                break
        self._finish(done, status)

    def _finish(self, done: simpy.Event, status: str) -> None:
        self.busy -= 1
        self.served += 1
        done.succeed(status)
        queue = self.queue
        while queue and self.busy < self.workers:
            self._start(*queue.popleft())

    def drop_queue(self) -> None:
        while self.queue:
            self.queue.popleft()[1].succeed("UNAVAILABLE")


class _Direct:
    """A completion that calls back at once, instead of scheduling an event (the fast path's)."""

    __slots__ = ("_callback",)

    def __init__(self, callback):
        self._callback = callback

    def succeed(self, value) -> None:
        self._callback(value)


class ClientStack:
    """One caller's policies and balancer towards one service (the mesh keeps the same per caller)."""

    __slots__ = ("balancer", "caller", "service", "state")

    def __init__(self, sim: Simulation, caller: str, service: str, settings: PolicySettings):
        clock = sim.clock
        self.caller, self.service = caller, service
        self.state = PolicyState(settings, f"{caller}->{service}", clock,
                                 on_transition=lambda t: sim.transitions.append(
                                     (t.time, caller, service, t.source.value, t.target.value)))
        self.balancer = make_balancer(settings.balancer, sim.rng, clock)


class Simulation:
    """Run ``topology`` under ``arrivals`` for ``duration`` simulated seconds.

    ``timeout`` is the client's deadline for each request (None: none); ``detection_delay`` how
    long discovery takes to drop a crashed instance (or add back a recovered one);
    ``sample_every`` the period of the time series. With ``propagate_deadlines=False`` servers
    ignore their callers' deadlines and finish every job they took, even one nobody waits for any
    more (the wasted work behind metastable failures).
    """

    def __init__(self, topology: Topology, rng: np.random.Generator, arrivals: Arrivals | None = None,
                 faults: Sequence[Fault] = (), timeout: float | None = None, detection_delay: float = 1.0,
                 sample_every: float | None = None, network_delay: float = 0.0,
                 propagate_deadlines: bool = True):
        self.topology = topology
        self.rng = rng
        self.env = simpy.Environment()
        self.clock = lambda: self.env.now
        self.uniform = Uniforms(rng)
        self.arrivals = arrivals or Poisson(100.0)
        self.timeout = timeout
        self.detection_delay = detection_delay
        self.network_delay = network_delay
        self.propagate_deadlines = propagate_deadlines
        self.sample_every = sample_every
        self.instances: dict[str, list[Instance]] = {
            name: [Instance(self, name, i + 1) for i in range(spec.replicas)]
            for name, spec in topology.services.items()
        }
        self._stacks: dict[tuple[str, str], ClientStack] = {}
        self._discoverable = {name: list(group) for name, group in self.instances.items()}
        self.records: list[tuple] = []
        self.series: list[tuple] = []
        self.transitions: list[tuple] = []
        self._faults = sorted(faults, key=lambda f: f.at)

    # -- running --------------------------------------------------------------------------------------
    def run(self, duration: float, warmup: float = 0.0, progress: bool = False) -> Results:
        """Simulate ``duration`` seconds (after ``warmup`` seconds whose requests are not kept).

        ``progress`` shows a bar (tqdm.auto: a widget in a notebook, text in a terminal) advancing
        in simulated time.
        """
        env = self.env
        self._warmup = warmup
        entry_spec = self.topology.services[self.entry]
        self._fast = entry_spec.policy == PolicySettings(balancer=entry_spec.policy.balancer) and \
            all(i.leaf for i in self.instances[self.entry]) and self.network_delay == 0
        self._entry_stack = self.stack("client", self.entry)
        self._schedule_arrival()
        for fault in self._faults:
            env.timeout(fault.at).callbacks.append(lambda _, f=fault: self._apply(f))
        if self.sample_every:
            env.process(self._monitor())
        end = warmup + duration
        if progress:
            from tqdm.auto import tqdm

            steps = 100
            with tqdm(total=steps, desc="simulating", unit="%") as bar:
                for step in range(1, steps + 1):
                    env.run(until=end * step / steps)
                    bar.update(1)
        else:
            env.run(until=end)
        return Results(self.records, self.series, self.transitions, warmup, warmup + duration,
                       [i.id for group in self.instances.values() for i in group])

    @property
    def entry(self) -> str:
        return self.topology.entry

    def _schedule_arrival(self) -> None:
        gap = self.arrivals.next_gap(self.env.now, self.uniform)
        if math.isfinite(gap):
            self.env.timeout(gap).callbacks.append(self._arrive)

    def _arrive(self, _event) -> None:
        self._schedule_arrival()
        now = self.env.now
        deadline = now + self.timeout if self.timeout is not None else math.inf
        if self._fast:
            self._fast_request(now, deadline)
        else:
            self.env.process(self._request(now, deadline))

    def _fast_request(self, arrival: float, deadline: float) -> None:
        stack = self._entry_stack
        instances = self._discoverable[self.entry]
        if not instances:
            self._record(arrival, arrival, "UNAVAILABLE", 0, "")
            return
        instance = stack.balancer.pick(instances)
        stack.balancer.on_start(instance)
        instance.submit(deadline, _Direct(lambda status: self._fast_done(arrival, instance, stack, status)))

    def _fast_done(self, arrival: float, instance: Instance, stack: ClientStack, status: str) -> None:
        now = self.env.now
        stack.balancer.on_end(instance, now - arrival, status == OK)
        if arrival >= self._warmup:
            self.records.append((arrival, now, status, 1, instance.id))

    def _request(self, arrival: float, deadline: float):
        attempts: list[str] = []
        status = yield self.env.process(self.call(None, self.entry, deadline, attempts))
        self._record(arrival, self.env.now, status, len(attempts), ">".join(attempts))

    def _record(self, arrival: float, finish: float, status: str, attempts: int, instance: str) -> None:
        if arrival >= self._warmup:
            self.records.append((arrival, finish, status, attempts, instance))

    # -- discovery and faults -------------------------------------------------------------------------
    def discoverable(self, service: str) -> list[Instance]:
        """The instances discovery lists now (a crashed one stays until ``detection_delay`` passes)."""
        return self._discoverable[service]

    def _set_discoverable(self, instance: Instance, value: bool) -> None:
        instance.discoverable = value
        self._discoverable[instance.service] = [i for i in self.instances[instance.service] if i.discoverable]

    def _targets(self, target: str) -> list[Instance]:
        if target in self.instances:
            return self.instances[target]
        return [i for group in self.instances.values() for i in group if i.id == target]

    def _apply(self, fault: Fault) -> None:
        for instance in self._targets(fault.target):
            if fault.recover:
                instance.slow, instance.fail = 1.0, self.topology.services[instance.service].fail_probability
                if instance.crashed:
                    instance.crashed = False
                    self._later(lambda i=instance: self._set_discoverable(i, not i.crashed))
                continue
            if fault.slow is not None:
                instance.slow = fault.slow
            if fault.fail is not None:
                instance.fail = fault.fail
            if fault.crash:
                instance.crashed = True
                instance.drop_queue()
                self._later(lambda i=instance: self._set_discoverable(i, not i.crashed))

    def _later(self, action) -> None:
        self.env.timeout(self.detection_delay).callbacks.append(lambda _: action())

    def _monitor(self):
        while True:
            now = self.env.now
            for group in self.instances.values():
                for i in group:
                    self.series.append((now, i.id, len(i.queue), i.busy))
            yield self.env.timeout(self.sample_every)

    # -- calls with policies --------------------------------------------------------------------------
    def stack(self, caller: str, service: str) -> ClientStack:
        key = (caller, service)
        stack = self._stacks.get(key)
        if stack is None:
            stack = self._stacks[key] = ClientStack(self, caller, service,
                                                    self.topology.services[service].policy)
        return stack

    def call(self, caller: Instance | None, service: str, deadline: float, attempts: list | None = None):
        """A process: one call from ``caller`` to ``service`` under the caller's policy; returns a status."""
        env = self.env
        stack = self.stack(caller.id if caller is not None else "client", service)
        state = stack.state
        settings = state.settings
        if settings.timeout > 0:
            deadline = min(deadline, env.now + settings.timeout)
        if deadline <= env.now:
            return "DEADLINE_EXCEEDED"
        if state.limiter is not None:
            wait = state.limiter.acquire(timeout=min(settings.rate_wait, deadline - env.now))
            if wait is None:
                return "RESOURCE_EXHAUSTED"
            if wait > 0:
                yield env.timeout(wait)
        bulkhead = state.bulkhead
        if bulkhead is not None and not bulkhead.try_enter():
            ticket = bulkhead.enqueue(env.event())
            if ticket is None:
                return "RESOURCE_EXHAUSTED"
            yield ticket.payload | env.timeout(min(bulkhead.max_wait, max(deadline - env.now, 0.0)))
            if not ticket.admitted:
                bulkhead.cancel(ticket)
                return "RESOURCE_EXHAUSTED"
        try:
            status = yield from self._attempts(stack, service, deadline, attempts)
        finally:
            if bulkhead is not None:
                admitted = bulkhead.leave()
                if admitted is not None:
                    admitted.payload.succeed()
        return status

    def _attempts(self, stack: ClientStack, service: str, deadline: float, attempts: list | None):
        env = self.env
        state = stack.state
        retry: RetryPolicy = state.retry
        backoff = None
        attempt = 0
        avoid: set[str] = set()
        while True:
            attempt += 1
            if state.breaker is not None and not state.breaker.try_acquire():
                return "UNAVAILABLE"
            candidates = self.discoverable(service)
            if not candidates:
                return "UNAVAILABLE"
            if state.outlier is not None:
                candidates = state.outlier.available(candidates)
            instance = stack.balancer.pick(candidates)
            if instance.id in avoid and len(candidates) > 1:
                instance = next((c for c in candidates if c.id not in avoid), instance)
            stack.balancer.on_start(instance)
            if attempts is not None:
                attempts.append(instance.id)
            start = env.now
            per_try = deadline - start
            if retry.per_try_timeout:
                per_try = min(per_try, retry.per_try_timeout)
            done = env.event()
            if self.network_delay:
                yield env.timeout(self.network_delay)
            instance.submit(start + per_try if math.isfinite(per_try) else math.inf, done)
            if math.isfinite(per_try):
                yield done | env.timeout(per_try)
                status = done.value if done.triggered else "DEADLINE_EXCEEDED"
            else:
                status = yield done
            duration = env.now - start
            ok = status == OK
            stack.balancer.on_end(instance, duration, ok)
            if state.outlier is not None:
                state.outlier.on_result(instance, status not in SERVER_ERRORS, len(self.instances[service]))
            if state.breaker is not None:
                if ok:
                    state.breaker.on_success(duration)
                else:
                    state.breaker.on_error(duration, status)
            if state.budget is not None:
                if ok:
                    state.budget.on_success()
                elif status in retry.retryable:
                    state.budget.on_failure()
            if ok:
                return OK
            avoid.add(instance.id)
            if not retry.should_retry(status, attempt, deadline - env.now):
                return status
            backoff = backoff or retry.backoff(self.rng)
            delay = backoff.delay(attempt)
            if delay >= deadline - env.now:
                return status
            yield env.timeout(delay)
