"""The simulation: instances with workers and queues, callers with the mesh's policies, on SimPy.

One :class:`Simulation` runs a :class:`~sim.topology.Topology` on a ``simpy.Environment`` for a
span of simulated time, with arrivals at the entry service, faults on a timeline, and a seeded
``numpy.random.Generator``. Every call runs through the mesh's own call plan
(:func:`mesh.policies.plan.call_plan`) with the policy objects the real mesh builds from the same
:class:`~mesh.policies.PolicySettings` — balancer, release routing, breaker, limiter, bulkhead,
retries and budget, outlier detection, fallback, deadline propagation — on ``env.now``. Results
come back as one :class:`~sim.results.Record` per request, and sampled time series.

Speed: plans are driven as plain events (:mod:`sim.driver`), not one SimPy process per call; an
instance's own work on a job is a single event, and the job object is that event.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter

import numpy as np
import simpy
from simpy.events import NORMAL

from mesh.policies.plan import call_deadline, call_plan

from .arrivals import Arrivals, Poisson
from .distributions import Uniforms
from .driver import Deadlines, Task, Timer
from .instances import ClientStack, Instance, Job, Request
from .results import BreakerChange, EdgeSample, Record, Results, Sample, ServiceSample
from .topology import Topology

INF = math.inf
_new_record = partial(tuple.__new__, Record)  # Record(...) without its Python-level __new__


@dataclass(frozen=True)
class Fault:
    """Something that happens at ``at`` to an instance (``service-n``), to every instance of a
    service (``service``), or to the instances of one version of it (``service@v2``).

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


@contextlib.contextmanager
def _objects_made_before_exempt_from_gc():
    """Let the garbage collector skip every object that existed before (``gc.freeze``), for a while.

    A simulation makes and drops millions of small objects, so the collector runs often; each of
    its older-generation passes walked everything the process had loaded (numpy, pandas, the
    kernel's state), which cost a run 15-20% of its time. Frozen objects are still freed when
    their count drops to zero; only cycles among them wait until :func:`gc.unfreeze`.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
        self._deadlines = Deadlines(self.env)
        # env.now without the property's frame: the policies read the clock several times a call.
        self.clock = partial(attrgetter("_now"), self.env)
        self.uniform = Uniforms(rng)
        self.arrivals = arrivals or Poisson(100.0)
        self.timeout = timeout
        self.detection_delay = detection_delay
        self.network_delay = network_delay
        self.propagate_deadlines = propagate_deadlines
        self.sample_every = sample_every
        self.mailboxes: dict[str, deque] = {name: deque() for name in topology.services}
        self.instances: dict[str, list[Instance]] = {
            name: [Instance(self, name, i + 1, self.mailboxes[name]) for i in range(spec.replicas)]
            for name, spec in topology.services.items()
        }
        self._discoverable = {name: list(group) for name, group in self.instances.items()}
        self._client = ClientStack(self, "client", topology.entry)
        # The records of the requests that settled, in that order, as plain tuples until the run ends:
        # the garbage collector stops tracking a plain tuple of numbers and strings, but not a
        # named tuple, and a long run holding named tuples ran at half the speed.
        self.rows: list[tuple] = []
        self.in_flight: dict[Request, None] = {}  # the others, in the order they arrived
        self.series: list[Sample] = []
        self.service_samples: list[ServiceSample] = []
        self.edge_samples: list[EdgeSample] = []
        self._edge_calls: Counter | None = Counter() if sample_every else None
        if sample_every:
            for group in self.instances.values():
                for instance in group:
                    instance.log = []
        self.transitions: list[BreakerChange] = []
        self._faults = sorted(faults, key=lambda f: f.at)
        self._warmup = 0.0

    # -- running --------------------------------------------------------------------------------------
    def run(self, duration: float, warmup: float = 0.0, progress: bool = False) -> Results:
        """Simulate ``duration`` seconds (after ``warmup`` seconds whose requests are not kept).

        ``progress`` shows a bar (tqdm.auto: a widget in a notebook, text in a terminal) advancing
        in simulated time. Requests still in flight at the end are recorded as unfinished.
        """
        env = self.env
        self._warmup = warmup
        self._schedule_arrival()
        for fault in self._faults:
            env.schedule(Timer(lambda _, f=fault: self._apply(f)), NORMAL, fault.at)
        if self.sample_every:
            env.process(self._monitor())
        end = warmup + duration
        with _objects_made_before_exempt_from_gc():
            self._run_until(end, progress)
        records = [_new_record(row) for row in self.rows] + [_new_record(r.row()) for r in self.in_flight]
        return Results(records, self.series, self.transitions, warmup, end,
                       [i.id for group in self.instances.values() for i in group], self.service_samples,
                       self.edge_samples)

    def _run_until(self, end: float, progress: bool) -> None:
        env = self.env
        if progress:
            from tqdm.auto import tqdm

            steps = 100
            with tqdm(total=steps, desc="simulating", unit="%") as bar:
                for step in range(1, steps + 1):
                    env.run(until=end * step / steps)
                    bar.update(1)
        else:
            env.run(until=end)

    @property
    def entry(self) -> str:
        return self.topology.entry

    def _schedule_arrival(self) -> None:
        gap = self.arrivals.next_gap(self.env.now, self.uniform)
        if math.isfinite(gap):
            self.env.schedule(Timer(self._arrive), NORMAL, gap)

    def _arrive(self, _timer: Timer) -> None:
        self._schedule_arrival()
        now = self.env.now
        stack = self._client
        state = stack.state
        request = Request(self.clock, self if now >= self._warmup else None, now)
        if self._edge_calls is not None:
            self._edge_calls[("client", self.topology.entry)] += 1
        deadline = call_deadline(now, self.timeout, state.settings.timeout)
        Task(self, call_plan(stack, state, deadline, fallback=stack.fallback), request.answered, request,
             request.path)

    # -- calls ----------------------------------------------------------------------------------------
    def plan(self, caller: Instance, service: str, upstream: float):
        """Return the plan of one call from ``caller`` to ``service`` inside a job due by ``upstream``."""
        stack = caller.stacks.get(service)
        if stack is None:
            stack = caller.stacks[service] = ClientStack(self, caller.id, service)
        if self._edge_calls is not None:
            self._edge_calls[(caller.service, service)] += 1
        state = stack.state
        deadline = call_deadline(self.clock(), None, state.settings.timeout, upstream)
        return call_plan(stack, state, deadline, fallback=stack.fallback)

    def attempt(self, task: Task, step) -> None:
        """Send one attempt to its instance; the task hears the reply, or the timeout (its own
        timer, when the instance might answer late: the job queued, or deadlines not propagated)."""
        timeout = step.timeout
        now = self.clock()
        limit = now + timeout if timeout is not None else INF
        job = Job(limit if self.propagate_deadlines else INF, task.replied, task.context, now)
        task.waiting = job
        if self.network_delay:
            self.env.schedule(Timer(lambda _: self._submit(task, step.instance, job, limit)), NORMAL,
                              self.network_delay)
        elif not (step.instance.submit(job) and self.propagate_deadlines):
            self._keep_time(task, job, limit)

    def _submit(self, task: Task, instance: Instance, job: Job, limit: float) -> None:
        if not (instance.submit(job) and self.propagate_deadlines):
            self._keep_time(task, job, limit)

    def _keep_time(self, task: Task, job: Job, limit: float) -> None:
        """Time the attempt out at ``limit``: its instance queued it or ignores deadlines."""
        if limit != INF and task.waiting is job:
            self._deadlines.keep(task, job, limit)

    def hand_off(self, sender: Instance, request: Request | None) -> None:
        """Send the messages a job that ended OK hands off: one by the routing row, one per publish."""
        targets = list(sender.publishes)
        if sender.hands_off:
            draw, total = self.uniform(), 0.0
            for target, probability in sender.hands_off:
                total += probability
                if draw < total:
                    targets.append(target)
                    break
        for target in targets:
            if request is not None:
                request.open += 1
            job = Job(INF, self._handled, request, self.clock())
            mailbox = self.mailboxes[target]
            mailbox.append(job)
            for instance in self.instances[target]:
                if instance.busy < instance.workers and not instance.queue and not instance.crashed:
                    instance.take_next()
                    break

    @staticmethod
    def _handled(job: Job) -> None:
        if job.request is not None:
            job.request.settle()

    # -- discovery and faults -------------------------------------------------------------------------
    def discoverable(self, service: str) -> list[Instance]:
        """The instances discovery lists now (a crashed one stays until ``detection_delay`` passes).
        The list is updated in place, so a caller may keep it."""
        return self._discoverable[service]

    def _set_discoverable(self, instance: Instance, value: bool) -> None:
        instance.discoverable = value
        listed = [i for i in self.instances[instance.service] if i.discoverable]
        self._discoverable[instance.service][:] = listed

    def _targets(self, target: str) -> list[Instance]:
        service, _, version = target.partition("@")
        if service in self.instances:
            return [i for i in self.instances[service] if not version or i.version == version]
        return [i for group in self.instances.values() for i in group if i.id == target]

    def _apply(self, fault: Fault) -> None:
        for instance in self._targets(fault.target):
            if fault.recover:
                instance.slow, instance.fail = 1.0, self.topology.services[instance.service].fail_probability
                if instance.crashed:
                    instance.crashed = False
                    self._later(lambda i=instance: self._set_discoverable(i, not i.crashed))
                    instance.take_next()
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
        self.env.schedule(Timer(lambda _: action()), NORMAL, self.detection_delay)

    def _monitor(self):
        while True:
            now = self.env.now
            for service, group in self.instances.items():
                times, failed = [], 0
                for i in group:
                    self.series.append(Sample(now, i.id, len(i.queue), i.busy))
                    times.extend(t for t, _ in i.log)
                    failed += sum(1 for _, f in i.log if f)
                    i.log.clear()
                in_flight = sum(i.busy + len(i.queue) for i in group) + len(self.mailboxes[service])
                p99 = float(np.percentile(times, 99)) if times else math.nan
                self.service_samples.append(ServiceSample(now, service, sum(not i.crashed for i in group),
                                                          len(group), in_flight, len(times), failed, p99))
            for (caller, callee), calls in sorted(self._edge_calls.items()):
                self.edge_samples.append(EdgeSample(now, caller, callee, calls))
            self._edge_calls.clear()
            yield self.env.timeout(self.sample_every)


__all__ = ["ClientStack", "Fault", "Instance", "Simulation"]
