"""One call plan, two drivers: the same scripted outcomes give the same attempts, waits, instances
and results through the gRPC client interceptor (threads, sleeps) and through the simulator's
driver (SimPy events).

Each row of :data:`ROWS` is a policy, some calls, and a script: what each attempt that reaches an
instance does (its status and how long it takes; longer than the attempt's timeout means it times
out). Both drivers run the calls one after another against three instances (``a`` and ``b`` of
v1, ``c`` of v2) and log, on their own clocks, when each attempt started, on which instance, which
attempt of its call it was and with what timeout, when it ended, and how each call ended. Each log
must equal the row's expected one — so a change to the plan breaks both drivers at once.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import grpc
import numpy as np
import pytest
import simpy

from mesh.client.channel import chosen_instance
from mesh.client.headers import FALLBACK
from mesh.client.outcome import Completed, MeshRpcError, status_of
from mesh.interceptors import CallDetails, ResilienceInterceptor
from mesh.policies import Fallback, PolicySettings, PolicyState, Uniforms, make_balancer
from mesh.policies.plan import Attempt, Done, call_deadline, call_plan
from mesh.telemetry.metrics import Metrics
from mesh.telemetry.tracing import Tracing
from sim.driver import Task, after

from .policy_helpers import FakeClock


@dataclass(frozen=True)
class Node:
    id: str
    version: str = "v1"
    weight: int = 1


NODES = (Node("a"), Node("b"), Node("c", "v2"))
METHOD = "/helloworld.Greeter/SayHello"


@dataclass
class Call:
    """One call of a row: its own timeout, the version it asks for, its request (a hash key)."""

    timeout: float | None = None
    asked: str = ""
    request: str = "user-1"


@dataclass
class Row:
    policy: dict[str, Any]
    calls: list[Call]
    script: list[tuple[str, float]]  # (status, seconds) of each attempt that reaches an instance
    expected: list[tuple]
    nodes: tuple[Node, ...] = NODES
    fallback: bool = False
    full_bulkhead: bool = False  # another call holds the bulkhead's only place
    extra: dict[str, Any] = field(default_factory=dict)


def attempt(at, node, number, timeout, ended):
    return ("attempt", at, node, number, timeout, ended)


def done(at, status, fallback=""):
    return ("done", at, status, fallback)


NO_JITTER = {"jitter": "none", "backoff_base": 0.01}
ROWS = {
    "answered at once": Row(
        {}, [Call()], [("OK", 0.01)],
        [attempt(0, "a", 1, None, 0.01), done(0.01, "OK")]),
    "a one-attempt call tells a load-aware balancer it ended (else a would not come twice)": Row(
        {"balancer": "least_outstanding"}, [Call()] * 3, [("OK", 0.01)] * 3,
        [attempt(0, "a", 1, None, 0.01), done(0.01, "OK"), attempt(0.01, "a", 1, None, 0.02),
         done(0.02, "OK"), attempt(0.02, "c", 1, None, 0.03), done(0.03, "OK")]),
    "a retry goes to another instance after a back-off": Row(
        {"max_attempts": 3, **NO_JITTER}, [Call()], [("UNAVAILABLE", 0.005), ("OK", 0.01)],
        [attempt(0, "a", 1, None, 0.005), attempt(0.015, "b", 2, None, 0.025), done(0.025, "OK")]),
    "a hash ring is asked again, then the next instance is taken": Row(
        {"max_attempts": 3, "balancer": "ring_hash", **NO_JITTER}, [Call(request="user-7")],
        [("UNAVAILABLE", 0.0), ("UNAVAILABLE", 0.0), ("OK", 0.01)],
        [attempt(0, "b", 1, None, 0), attempt(0.01, "a", 2, None, 0.01), attempt(0.03, "c", 3, None, 0.04),
         done(0.04, "OK")]),
    "the back-off doubles, attempts run out": Row(
        {"max_attempts": 3, **NO_JITTER}, [Call()], [("UNAVAILABLE", 0.0)] * 3,
        [attempt(0, "a", 1, None, 0), attempt(0.01, "b", 2, None, 0.01), attempt(0.03, "c", 3, None, 0.03),
         done(0.03, "UNAVAILABLE")]),
    "a status that is not retryable is not retried": Row(
        {"max_attempts": 3, **NO_JITTER}, [Call()], [("INTERNAL", 0.002)],
        [attempt(0, "a", 1, None, 0.002), done(0.002, "INTERNAL")]),
    "a slow attempt times out at the per-try timeout and is retried": Row(
        {"max_attempts": 2, "per_try_timeout": 0.05, "retry_on": "DEADLINE_EXCEEDED", **NO_JITTER}, [Call()],
        [("OK", 1.0), ("OK", 0.01)],
        [attempt(0, "a", 1, 0.05, 0.05), attempt(0.06, "b", 2, 0.05, 0.07), done(0.07, "OK")]),
    "the call's deadline cuts the last try and ends the retries": Row(
        {"max_attempts": 3, "per_try_timeout": 0.1, "retry_on": "DEADLINE_EXCEEDED", **NO_JITTER},
        [Call(timeout=0.125)], [("OK", 1.0), ("OK", 1.0)],
        [attempt(0, "a", 1, 0.1, 0.1), attempt(0.11, "b", 2, 0.015, 0.125),
         done(0.125, "DEADLINE_EXCEEDED")]),
    "a back-off longer than the time left ends the call at once": Row(
        {"max_attempts": 3, "jitter": "none", "backoff_base": 0.1}, [Call(timeout=0.05)],
        [("UNAVAILABLE", 0.01)],
        [attempt(0, "a", 1, 0.05, 0.01), done(0.01, "UNAVAILABLE")]),
    "the policy's timeout applies when the call sets none": Row(
        {"timeout": 0.2}, [Call()], [("OK", 1.0)],
        [attempt(0, "a", 1, 0.2, 0.2), done(0.2, "DEADLINE_EXCEEDED")]),
    "a breaker opens and rejects the next call without an attempt": Row(
        {"breaker_failure_rate": 50, "breaker_window": 2, "breaker_minimum_calls": 2, "breaker_wait": 5},
        [Call(), Call(), Call()], [("INTERNAL", 0.01), ("INTERNAL", 0.01)],
        [attempt(0, "a", 1, None, 0.01), done(0.01, "INTERNAL"), attempt(0.01, "b", 1, None, 0.02),
         done(0.02, "INTERNAL"), done(0.02, "UNAVAILABLE")]),
    "slow calls open a breaker too": Row(
        {"breaker_failure_rate": 100, "breaker_slow_call": 0.05, "breaker_slow_rate": 50, "breaker_window": 2,
         "breaker_minimum_calls": 2}, [Call(), Call(), Call()], [("OK", 0.06), ("OK", 0.07)],
        [attempt(0, "a", 1, None, 0.06), done(0.06, "OK"), attempt(0.06, "b", 1, None, 0.13),
         done(0.13, "OK"), done(0.13, "UNAVAILABLE")]),
    "an open breaker is answered by the fallback": Row(
        {"breaker_failure_rate": 50, "breaker_window": 2, "breaker_minimum_calls": 2, "breaker_wait": 5},
        [Call(), Call(), Call()], [("INTERNAL", 0.01), ("INTERNAL", 0.01)],
        [attempt(0, "a", 1, None, 0.01), done(0.01, "INTERNAL"), attempt(0.01, "b", 1, None, 0.02),
         done(0.02, "INTERNAL"), done(0.02, "OK", "breaker_open")], fallback=True),
    "an exhausted retry budget stops retries": Row(
        {"max_attempts": 3, "budget_tokens": 3, "budget_ratio": 0.1, **NO_JITTER}, [Call(), Call()],
        [("UNAVAILABLE", 0.0), ("OK", 0.01), ("UNAVAILABLE", 0.0)],
        [attempt(0, "a", 1, None, 0), attempt(0.01, "b", 2, None, 0.02), done(0.02, "OK"),
         attempt(0.02, "c", 1, None, 0.02), done(0.02, "UNAVAILABLE")]),
    "outlier detection ejects failing instances until every one is out": Row(
        {"outlier_errors": 1, "outlier_max_percent": 100}, [Call(), Call(), Call(), Call()],
        [("INTERNAL", 0.0), ("INTERNAL", 0.0), ("INTERNAL", 0.0), ("OK", 0.01)],
        [attempt(0, "a", 1, None, 0), done(0, "INTERNAL"), attempt(0, "c", 1, None, 0), done(0, "INTERNAL"),
         attempt(0, "b", 1, None, 0), done(0, "INTERNAL"), attempt(0, "a", 1, None, 0.01), done(0.01, "OK")]),
    "no instance is an attempt that fails at once, and is retried": Row(
        {"max_attempts": 2, **NO_JITTER}, [Call()], [],
        [done(0.01, "UNAVAILABLE")], nodes=()),
    "a pinned version takes every call (blue-green)": Row(
        {"release_version": "v2"}, [Call(), Call()], [("OK", 0.01), ("OK", 0.01)],
        [attempt(0, "c", 1, None, 0.01), done(0.01, "OK"), attempt(0.01, "c", 1, None, 0.02),
         done(0.02, "OK")]),
    "a pinned version with no instance is no instance": Row(
        {"release_version": "v3"}, [Call()], [], [done(0, "UNAVAILABLE")]),
    "a call may ask for a version itself (a dark launch)": Row(
        {}, [Call(asked="v2"), Call()], [("OK", 0.01), ("OK", 0.01)],
        [attempt(0, "c", 1, None, 0.01), done(0.01, "OK"), attempt(0.01, "a", 1, None, 0.02),
         done(0.02, "OK")]),
    "a sticky canary keeps a user on one version": Row(
        {"canary_version": "v2", "canary_percent": 50, "canary_sticky": True},
        [Call(request="user-3"), Call(request="user-3"), Call(request="user-1")], [("OK", 0.0)] * 3,
        [attempt(0, "a", 1, None, 0), done(0, "OK"), attempt(0, "b", 1, None, 0), done(0, "OK"),
         attempt(0, "c", 1, None, 0), done(0, "OK")]),
    "a rate limiter makes a call wait for its token": Row(
        {"rate_limit": 10, "rate_burst": 1, "rate_wait": 0.15}, [Call(), Call()], [("OK", 0.0), ("OK", 0.0)],
        [attempt(0, "a", 1, None, 0), done(0, "OK"), attempt(0.1, "b", 1, None, 0.1), done(0.1, "OK")]),
    "a rate limiter rejects a call that would wait too long; the fallback answers": Row(
        {"rate_limit": 10, "rate_burst": 1}, [Call(), Call()], [("OK", 0.0)],
        [attempt(0, "a", 1, None, 0), done(0, "OK"), done(0, "OK", "rejected")], fallback=True),
    "a full bulkhead rejects": Row(
        {"bulkhead": 1}, [Call()], [], [done(0, "RESOURCE_EXHAUSTED")], full_bulkhead=True),
    "a call waits in the full bulkhead's line until its wait runs out": Row(
        {"bulkhead": 1, "bulkhead_wait": 0.05}, [Call()], [], [done(0.05, "RESOURCE_EXHAUSTED")],
        full_bulkhead=True),
    "the deadline cuts the bulkhead's wait short; the fallback answers": Row(
        {"bulkhead": 1, "bulkhead_wait": 0.05}, [Call(timeout=0.02)], [], [done(0.02, "OK", "rejected")],
        fallback=True, full_bulkhead=True),
    "the deadline cuts a limiter's wait: a call that would outlive it is rejected at once": Row(
        {"rate_limit": 10, "rate_burst": 1, "rate_wait": 0.15}, [Call(), Call(timeout=0.05)], [("OK", 0.0)],
        [attempt(0, "a", 1, None, 0), done(0, "OK"), done(0, "RESOURCE_EXHAUSTED")]),
    "a one-attempt call reports its latency to a latency-aware balancer": Row(
        {"balancer": "peak_ewma"}, [Call()] * 4, [("UNAVAILABLE", 0.05)] + [("OK", 0.01)] * 3,
        [attempt(0, "a", 1, None, 0.05), done(0.05, "UNAVAILABLE"), attempt(0.05, "c", 1, None, 0.06),
         done(0.06, "OK"), attempt(0.06, "b", 1, None, 0.07), done(0.07, "OK"),
         attempt(0.07, "b", 1, None, 0.08), done(0.08, "OK")]),  # a was slow: not picked again
    "a call with room in the bulkhead goes ahead and gives its place back": Row(
        {"bulkhead": 1}, [Call(), Call()], [("OK", 0.01), ("UNAVAILABLE", 0.01)],
        [attempt(0, "a", 1, None, 0.01), done(0.01, "OK"), attempt(0.01, "b", 1, None, 0.02),
         done(0.02, "UNAVAILABLE")]),
    "a call already past its deadline does not start": Row(
        {}, [Call(timeout=0.0)], [], [done(0, "DEADLINE_EXCEEDED")]),
}


class Route:
    """The caller's side, as both drivers see it (the mesh's client stack has the same attributes)."""

    def __init__(self, row: Row, clock, seed: int = 3):
        # A row names every deadline it has (0: none); the default deadline is pinned in test_hangs.
        settings = PolicySettings(**{"timeout": 0.0, **row.policy})
        self.service = "greeter"
        self.caller = self.callee = "greeter"
        self.clock = clock
        self.rng = np.random.default_rng(seed)
        self.draw = Uniforms(np.random.default_rng(seed + 1))
        self.balancer = make_balancer(settings.balancer, self.rng, clock)
        self.policy = PolicyState(settings, "parity", clock)
        self.fallback = Fallback(static="degraded") if row.fallback else None
        self._nodes = list(row.nodes)
        if row.full_bulkhead:
            assert self.policy.bulkhead.try_enter()

    def instances(self):
        return self._nodes


def _ended(script: list, timeout: float | None) -> tuple[str, float]:
    """What the next scripted attempt does, cut by its timeout (a server that honours deadlines)."""
    status, seconds = script.pop(0)
    if timeout is not None and seconds > timeout:
        return "DEADLINE_EXCEEDED", timeout
    return status, seconds


def _t(value: float) -> float:
    return round(value, 9)


def through_the_mesh(row: Row) -> list[tuple]:
    """Run the row's calls through the gRPC client interceptor, with a fake clock and sleep."""
    clock = FakeClock()
    route = Route(row, clock)
    script, log = list(row.script), []
    fallbacks = {"SayHello": route.fallback} if row.fallback else {}
    stack = SimpleNamespace(**vars(route), lock=threading.RLock(), tracing=Tracing("parity"),
                            metrics=Metrics(clock), fallbacks=fallbacks, state=lambda method: route.policy,
                            instances=route.instances)
    interceptor = ResilienceInterceptor(stack, sleep=clock.advance, wait_in_line=_waited(clock))

    def continuation(details, request):
        instance, start = chosen_instance.get(), clock.now
        status, seconds = _ended(script, details.timeout)
        clock.advance(seconds)
        log.append(attempt(_t(start), instance.id, _attempt_number(details), details.timeout, _t(clock.now)))
        if status == "OK":
            return Completed("hello")
        return MeshRpcError(grpc.StatusCode[status], "scripted")

    for call in row.calls:
        metadata = [("x-version", call.asked)] if call.asked else []
        outcome = interceptor.intercept_unary_unary(
            continuation, CallDetails(METHOD, call.timeout, metadata, None, None, None), call.request)
        fallback = dict(outcome.initial_metadata()).get(FALLBACK, "")
        log.append(done(_t(clock.now), status_of(outcome), fallback))
    stack.tracing.shutdown()
    return log


def _waited(clock):
    """Wait in a bulkhead's line on the fake clock: nobody else runs, so the wait is spent in full."""

    def wait(admitted: threading.Event, seconds: float) -> bool:
        clock.advance(seconds)
        return admitted.is_set()

    return wait


def _attempt_number(details) -> int:
    return int(dict(details.metadata).get("x-attempt", "1"))


def through_the_simulator(row: Row) -> list[tuple]:
    """Run the row's calls through the simulator's driver on a SimPy environment."""
    env = simpy.Environment()
    route = Route(row, lambda: env.now)
    script, log = list(row.script), []

    class Host:
        def __init__(self):
            self.env = env

        def attempt(self, task, step):
            job = SimpleNamespace(status="")
            task.waiting = job
            start = env.now
            job.status, seconds = _ended(script, step.timeout)

            def reply(_timer):
                log.append(attempt(_t(start), step.instance.id, step.number, step.timeout, _t(env.now)))
                task.replied(job)

            after(env, seconds, reply)

    host = Host()
    for call in row.calls:
        ended = []
        deadline = call_deadline(env.now, call.timeout, route.policy.settings.timeout)
        plan = call_plan(route, route.policy, deadline, request=call.request, asked=call.asked,
                         fallback=route.fallback)
        Task(host, plan, ended.append)
        env.run()
        (outcome,) = ended
        log.append(done(_t(env.now), outcome.status, outcome.fallback))
    return log


@pytest.mark.parametrize("name", list(ROWS))
@pytest.mark.parametrize("driver", [through_the_mesh, through_the_simulator], ids=["mesh", "simulator"])
def test_both_drivers_run_the_plan_alike(name, driver):
    row = ROWS[name]
    assert driver(row) == _approx(row.expected)


def _approx(log: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in entry) for entry in log]


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jittered_back_offs_are_the_same_in_both_drivers(jitter):
    row = Row({"max_attempts": 4, "jitter": jitter, "backoff_base": 0.02}, [Call()],
              [("UNAVAILABLE", 0.001)] * 3 + [("OK", 0.001)], [])
    mesh, simulated = through_the_mesh(row), through_the_simulator(row)
    assert _approx(mesh) == simulated
    attempts = [e for e in mesh if e[0] == "attempt"]
    waits = [b[1] - a[5] for a, b in itertools.pairwise(attempts)]
    assert len(waits) == 3 and min(waits) >= 0 and len(set(waits)) == 3  # drawn, not fixed


def test_the_deadline_is_the_calls_own_else_the_policys_cut_to_the_upstream_one():
    assert call_deadline(10.0) == math.inf
    assert call_deadline(10.0, timeout=1.0, policy_timeout=5.0) == 11.0
    assert call_deadline(10.0, policy_timeout=5.0) == 15.0
    assert call_deadline(10.0, timeout=1.0, upstream=10.5) == 10.5
    assert call_deadline(10.0, upstream=12.0) == 12.0
    assert call_deadline(10.0, timeout=1.0, upstream=11.0) == 11.0


def _refused_at_once(row: Row, prepare=lambda route: None, **call) -> Done:
    """Run one call of ``row`` through the plan itself until it ends without an attempt."""
    clock = FakeClock()
    route = Route(row, clock)
    prepare(route)
    plan = call_plan(route, route.policy, call_deadline(clock.now, call.pop("timeout", None)),
                     request="user-1", fallback=route.fallback, **call)
    with pytest.raises(StopIteration) as ended:
        next(plan)
    return ended.value.value


@pytest.mark.parametrize(("row", "prepare", "call", "expected"), [
    (Row({"rate_limit": 10}, [], [], []), lambda r: r.policy.limiter.acquire(0), {},
     ("RESOURCE_EXHAUSTED", "rate_limit", "rate limit of 10/s reached", 0)),
    (Row({"bulkhead": 1}, [], [], [], full_bulkhead=True), lambda r: None, {},
     ("RESOURCE_EXHAUSTED", "bulkhead", "bulkhead full (1 calls in flight)", 0)),
    # no instance is an attempt that failed UNAVAILABLE (breakers and budgets hear of it)
    (Row({}, [], [], [], nodes=()), lambda r: None, {},
     ("UNAVAILABLE", "no_instance", "no passing instance of 'greeter' in the registry", 1)),
    (Row({"release_version": "v3"}, [], [], []), lambda r: None, {},
     ("UNAVAILABLE", "no_instance", "no passing instance of 'greeter' version 'v3' in the registry", 1)),
    (Row({}, [], [], []), lambda r: None, {"timeout": 0.0},
     ("DEADLINE_EXCEEDED", "deadline", "deadline passed before the call", 0)),
])
def test_a_call_the_plan_ends_itself_says_why(row, prepare, call, expected):
    done = _refused_at_once(row, prepare, **call)
    assert (done.status, done.cause, done.details, done.attempts) == expected
    assert (done.fallback, done.answer) == ("", None)


def test_a_fallback_answers_for_the_request_it_was_asked_about():
    row = Row({"rate_limit": 10}, [], [], [], fallback=True)
    seen = []

    def prepare(route):
        route.policy.limiter.acquire(0)
        route.fallback = Fallback(cache=True)
        route.fallback.remember("user-1", "cached for user-1")
        route.fallback.respond = lambda request, reason: seen.append((request, reason)) or f"for {request}"

    done = _refused_at_once(row, prepare)
    assert (done.status, done.fallback, done.answer) == ("OK", "rejected", "for user-1")
    assert seen == [("user-1", "rejected")] and done.details == "rate limit of 10/s reached"


class _Heard:
    """A balancer that records what it hears (and picks the first instance)."""

    def __init__(self):
        self.heard = []

    def pick(self, instances, request=None):
        return instances[0]

    def on_start(self, instance):
        self.heard.append(("start", instance.id))

    def on_end(self, instance, latency, ok):
        self.heard.append(("end", instance.id, latency, ok))


@pytest.mark.parametrize(("status", "ok"), [("OK", True), ("UNAVAILABLE", False)])
def test_a_one_attempt_plan_reports_its_end_once_with_its_latency(status, ok):
    clock = FakeClock()
    route = Route(Row({}, [], [], []), clock)
    route.balancer = _Heard()
    plan = call_plan(route, route.policy, call_deadline(clock.now, 2.0))
    assert (plan.instance.id, plan.number, plan.timeout) == ("a", 1, 2.0)
    clock.advance(0.25)
    assert plan.ended(status) == Done(status, 1, plan.instance)
    plan.close()  # already ended: nothing more to report
    assert route.balancer.heard == [("start", "a"), ("end", "a", 0.25, ok)]


def test_a_one_attempt_plan_given_up_tells_the_balancer_it_failed():
    clock = FakeClock()
    route = Route(Row({}, [], [], []), clock)
    route.balancer = _Heard()
    plan = call_plan(route, route.policy, call_deadline(clock.now))
    clock.advance(0.5)
    plan.close()
    plan.close()
    assert route.balancer.heard == [("start", "a"), ("end", "a", 0.5, False)]


def _drive(row: Row, call: Call, prepare=lambda route: None, route=None) -> tuple[Done, list]:
    """Drive one call's plan by hand on a fake clock; return how it ended and what the balancer heard."""
    clock = FakeClock()
    route = route or Route(row, clock)
    route.clock = clock
    prepare(route)
    heard = []
    real_end = route.balancer.on_end
    route.balancer.on_end = lambda instance, latency, ok: (heard.append((instance.id, latency, ok)),
                                                           real_end(instance, latency, ok))
    plan = call_plan(route, route.policy, call_deadline(clock.now, call.timeout), request=call.request,
                     asked=call.asked, fallback=route.fallback)
    script, sent = list(row.script), None
    try:
        while True:
            step = plan.send(sent)
            if isinstance(step, Attempt):
                status, seconds = _ended(script, step.timeout)
                clock.advance(seconds)
                sent = (status, f"answer from {step.instance.id}" if status == "OK" else None)
            else:
                clock.advance(step.seconds)
                sent = None
    except StopIteration as stop:
        return stop.value, heard


def test_a_call_that_ends_on_an_attempt_names_it_and_counts_its_attempts():
    row = Row({"max_attempts": 3, **NO_JITTER}, [], [("UNAVAILABLE", 0.02), ("OK", 0.03)], [])
    done, heard = _drive(row, Call())
    assert (done.status, done.attempts, done.instance.id, done.cause) == ("OK", 2, "b", "")
    assert heard == [("a", pytest.approx(0.02), False), ("b", pytest.approx(0.03), True)]
    failed = Row({"max_attempts": 2, **NO_JITTER}, [], [("UNAVAILABLE", 0.0)] * 2, [])
    done, _ = _drive(failed, Call())
    assert (done.status, done.attempts, done.instance.id) == ("UNAVAILABLE", 2, "b")


def test_a_breaker_that_opens_between_attempts_ends_the_call_with_the_attempts_made():
    row = Row({"max_attempts": 3, "breaker_failure_rate": 50, "breaker_window": 2, "breaker_minimum_calls": 1,
               **NO_JITTER}, [], [("UNAVAILABLE", 0.0)] * 3, [])
    done, _ = _drive(row, Call())
    assert (done.status, done.cause, done.attempts) == ("UNAVAILABLE", "breaker", 1)
    assert done.details == "circuit breaker to greeter is open"


def test_a_cached_fallback_remembers_each_request_s_own_answer():
    row = Row({}, [], [("OK", 0.0)], [], fallback=True)
    clock = FakeClock()
    route = Route(row, clock)
    route.fallback = Fallback(cache=True)
    _drive(row, Call(request="user-1"), route=route)
    route.policy.update(route.policy.settings.replace(rate_limit=1))
    route.policy.limiter.acquire(0)
    done, _ = _drive(Row({}, [], [], []), Call(request="user-1"), route=route)
    assert (done.status, done.fallback, done.answer) == ("OK", "rejected", "answer from a")
    other, _ = _drive(Row({}, [], [], []), Call(request="user-2"), route=route)
    assert (other.status, other.cause) == ("RESOURCE_EXHAUSTED", "rate_limit")  # nothing cached for it


def test_a_back_off_exactly_as_long_as_the_time_left_is_not_taken():
    row = Row({"max_attempts": 3, "jitter": "none", "backoff_base": 0.05}, [],
              [("UNAVAILABLE", 0.05)] * 3, [])
    done, _ = _drive(row, Call(timeout=0.1))  # 0.05 s left after the first attempt: no room for a retry
    assert (done.status, done.attempts) == ("UNAVAILABLE", 1)
