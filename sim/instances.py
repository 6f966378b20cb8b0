"""The simulated replicas: workers and a FIFO queue each, the jobs they serve, the requests those
jobs belong to, and each caller's policies towards a service (:class:`ClientStack`, the route a
call plan runs on). :class:`~sim.model.Simulation` makes them and drives their calls' plans.

Every object here keeps ``__slots__`` and does its work in plain method calls: a run makes millions
of them (see :mod:`sim.model` on speed).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol

import numpy as np
import simpy
from simpy.events import NORMAL

from mesh.policies import Fallback, PolicyState, TokenBucket, breaker_name, instance_id, make_balancer
from mesh.policies.plan import Done

from .distributions import Sampler
from .driver import Fork, Task
from .results import UNFINISHED, BreakerChange
from .topology import Topology

__all__ = ["OK", "ClientStack", "Instance", "Job", "Request", "Runner"]

OK = "OK"


class Runner(Protocol):
    """What the objects here use of the simulation that runs them (:class:`sim.model.Simulation`)."""

    topology: Topology
    env: simpy.Environment
    rng: np.random.Generator
    clock: Callable[[], float]
    uniform: Callable[[], float]
    transitions: list[BreakerChange]
    rows: list[tuple]  # the records of settled requests' fields
    in_flight: dict[Request, None]

    def plan(self, caller: Instance, service: str, upstream: float) -> Generator[Any, Any, Done]: ...

    def hand_off(self, sender: Instance, request: Request | None) -> None: ...

    def discoverable(self, service: str) -> list[Instance]: ...


class Request:
    """A request from the edge while it is in flight; once it has settled (its answer came and the
    messages it handed off were handled) it is kept only as the fields of its Record
    (:attr:`sim.model.Simulation.rows`): keeping every request object to the end made a long run slower, as
    the garbage collector kept walking them."""

    __slots__ = ("arrival", "attempts", "clock", "fallback", "finish", "open", "path", "settled", "sim",
                 "status")

    def __init__(self, clock, sim: Runner | None, arrival: float):
        self.clock = clock
        self.sim = sim  # None for a request of the warm-up: no record is kept
        self.arrival = arrival
        self.finish = math.nan
        self.settled = math.nan
        self.status = UNFINISHED
        self.attempts = 0
        self.fallback = ""
        self.path: list[str] = []
        self.open = 1  # the answer, and each message handed off and not yet handled
        if sim is not None:
            sim.in_flight[self] = None

    def answered(self, done: Done) -> None:
        """The entry call's plan ended: the request has its answer."""
        self.finish = self.clock()
        self.status, self.attempts, self.fallback = done.status, done.attempts, done.fallback
        self.settle()

    def settle(self) -> None:
        """One part of the request (its answer, or a message it handed off) ended."""
        self.open -= 1
        if self.open == 0:
            self.settled = self.clock()
            sim = self.sim
            if sim is not None:
                sim.rows.append(self.row())
                del sim.in_flight[self]

    def row(self) -> tuple:
        """Return the request's Record's fields, as a plain tuple."""
        return (self.arrival, self.finish, self.status, self.attempts, ">".join(self.path), self.fallback,
                self.settled)


class Job:
    """One call or message an instance serves. It is also the event that ends the instance's own
    work on it: what ``Environment.step`` reads of an event is ``callbacks`` and ``_ok``."""

    __slots__ = ("callbacks", "deadline", "reply", "request", "server", "since", "status")
    _ok = True

    def __init__(self, deadline: float, reply, request: Request | None, since: float):
        self.deadline = deadline
        self.reply = reply  # called with the job when it ends
        self.request = request
        self.since = since  # when it was sent
        self.status = OK

    def called(self, done: Done) -> None:
        """The plan of the one call this job makes has ended: so does the job, with its status."""
        if done.status != OK:
            self.status = done.status
        self.server.end(self)


class Instance:
    """One replica: ``workers`` servers and a FIFO queue (bounded by ``queue_limit`` if set); idle
    workers also take messages from its service's ``mailbox``."""

    __slots__ = (
        "_ended",
        "_sample",
        "_worked",
        "busy",
        "call_probability",
        "calls",
        "crashed",
        "discoverable",
        "fail",
        "hands_off",
        "id",
        "leaf",
        "limiter",
        "log",
        "mailbox",
        "publishes",
        "queue",
        "queue_limit",
        "served",
        "service",
        "sim",
        "slow",
        "stacks",
        "version",
        "weight",
        "workers",
    )

    def __init__(self, sim: Runner, service: str, number: int, mailbox: deque):
        spec = sim.topology.services[service]
        self.sim = sim
        self.service = service
        self.id = instance_id(service, number)
        self.version = spec.version(number - 1)
        self.weight = 1
        self.workers = spec.workers
        self.queue_limit = spec.queue_limit
        self.calls = spec.calls
        self.leaf = not spec.calls
        self.hands_off = spec.hands_off
        self.publishes = spec.publishes
        self.fail = spec.fail_probability
        self.call_probability = spec.call_probability
        self.limiter = TokenBucket(spec.rate_limit, max(1.0, spec.rate_limit / 10), sim.clock) \
            if spec.rate_limit > 0 else None
        self.slow = 1.0
        self.crashed = False
        self.discoverable = True
        self.busy = 0
        self.served = 0
        self.queue: deque[Job] = deque()
        self.mailbox = mailbox
        self.stacks: dict[str, ClientStack] = {}  # this instance's policies towards each callee
        self.log: list[tuple[float, bool]] | None = None  # (time taken, failed) of jobs, when sampled
        self._sample = Sampler(spec.service_time, sim.rng)
        self._ended = (self.end,)
        self._worked = (self._call,)

    def submit(self, job: Job) -> bool:
        """Take ``job``; ``job.reply(job)`` is called when it ends, with ``job.status`` set. Return
        False if it waits in the queue (it may then end past its deadline: the caller keeps time)."""
        if self.crashed:
            job.status = "UNAVAILABLE"
            job.reply(job)
        elif self.limiter is not None and self.limiter.acquire() is None:
            job.status = "RESOURCE_EXHAUSTED"
            job.reply(job)
        elif self.busy < self.workers:
            self._start(job)
        elif self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            job.status = "RESOURCE_EXHAUSTED"
            job.reply(job)
        else:
            self.queue.append(job)
            return False
        return True

    def _start(self, job: Job) -> None:
        sim = self.sim
        now = sim.clock()
        deadline = job.deadline
        if deadline <= now:  # it waited past its caller's deadline: never start it
            job.status = "DEADLINE_EXCEEDED"
            job.reply(job)
            return
        self.busy += 1
        work = self._sample() * self.slow
        if now + work > deadline:
            work, job.status = deadline - now, "DEADLINE_EXCEEDED"
            job.callbacks = self._ended
        elif self.fail and sim.uniform() < self.fail:
            job.status = "INTERNAL"
            job.callbacks = self._ended
        else:
            job.callbacks = self._ended if self.leaf else self._worked
        sim.env.schedule(job, NORMAL, work)

    def _call(self, job: Job) -> None:
        """The job's own work is done: make its calls (unless this request needs only local work)."""
        sim = self.sim
        calls = self.calls
        if self.call_probability < 1 and sim.uniform() >= self.call_probability:
            self.end(job)
        elif len(calls) == 1 and len(calls[0]) == 1:  # one call: its plan is the job's task
            job.server = self
            Task(sim, sim.plan(self, calls[0][0], job.deadline), job.called, job.request)
        else:
            Task(sim, self._calls(job), self.end, job.request)

    def _calls(self, job: Job):
        """Make the job's calls, group by group (the calls of a group side by side); return the job."""
        sim = self.sim
        deadline = job.deadline
        for group in self.calls:
            if len(group) == 1:
                done: Done = yield from sim.plan(self, group[0], deadline)
                failed = done.status if done.status != OK else None
            else:
                dones = yield Fork([sim.plan(self, target, deadline) for target in group])
                failed = next((d.status for d in dones if d.status != OK), None)
            if failed is not None:
                job.status = failed
                break
        return job

    def end(self, job: Job) -> None:
        self.busy -= 1
        self.served += 1
        if self.log is not None:
            self.log.append((self.sim.clock() - job.since, job.status != OK))
        if job.status == OK and (self.hands_off or self.publishes):
            self.sim.hand_off(self, job.request)
        job.reply(job)
        if self.queue or self.mailbox:
            self.take_next()

    def take_next(self) -> None:
        """Start what waits while a worker is free: calls in the queue first, then messages."""
        queue, mailbox = self.queue, self.mailbox
        while self.busy < self.workers and not self.crashed:
            if queue:
                self._start(queue.popleft())
            elif mailbox:
                self._start(mailbox.popleft())
            else:
                return

    def drop_queue(self) -> None:
        while self.queue:
            job = self.queue.popleft()
            job.status = "UNAVAILABLE"
            job.reply(job)


class ClientStack:
    """One caller's policies and balancer towards one service (the mesh keeps the same per caller):
    the route a call plan runs on."""

    __slots__ = ("_found", "balancer", "caller", "clock", "draw", "fallback", "rng", "service", "state")

    def __init__(self, sim: Runner, caller: str, service: str):
        spec = sim.topology.services[service]
        settings = spec.policy
        self.caller, self.service = caller, service
        self.clock, self.rng, self.draw = sim.clock, sim.rng, sim.uniform
        self.state = PolicyState(settings, breaker_name(caller, service), sim.clock,
                                 on_transition=lambda t: sim.transitions.append(BreakerChange(
                                     t.time, caller, service, t.source.value, t.target.value)))
        self.balancer = make_balancer(settings.balancer, sim.rng, sim.clock, settings.choice_count)
        self.fallback = Fallback(static="fallback") if spec.fallback else None
        self._found = sim.discoverable(service)

    def instances(self) -> list[Instance]:
        return self._found
