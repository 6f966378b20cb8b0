"""The call plan: the order of one call through a caller's policies, written once for the real mesh
and for the simulator.

:func:`call_plan` decides and its driver acts, in the spirit of tenacity's single decision engine
(``BaseRetrying.iter()`` yields ``DoAttempt``/``DoSleep``, which its sync and async drivers merely
execute). The plan is a generator that yields steps and is sent what came of each:

- :class:`Wait` — let ``seconds`` pass (a rate limiter's wait, a back-off); sent ``None``;
- :class:`Queue` — wait in the bulkhead's line until the ticket is admitted, at most ``seconds``;
  sent ``None``;
- :class:`Attempt` — run one attempt on ``instance`` for at most ``timeout`` seconds; sent
  ``(status, answer)``: the attempt's gRPC status name and, when OK, its response;

and it returns a :class:`Done`. A call whose policy has nothing but the balancer is one attempt
and nothing else: for it the plan is a :class:`Direct`, that one attempt, with no generator to
step through (a simulation makes millions of such calls); a driver runs it and calls its
``ended``. Two drivers execute plans: the gRPC
client interceptor (:mod:`mesh.interceptors.client_resilience`: threads, real sleeps, real RPCs)
and the simulator (:mod:`sim.driver`: SimPy events and simulated instances). A new policy is
added here, once.

For one call, in order:

1. The deadline (:func:`call_deadline`): the call's own timeout, else the policy's, cut to what is
   left of the call being served upstream. A call already past it does not start.
2. The rate limiter lets the call go at once, after a wait (at most ``rate_wait``), or rejects it.
3. The bulkhead admits it, queues it (at most ``bulkhead_wait``) or rejects it.
4. Each attempt: the breaker must permit it; of the instances discovery lists now, release routing
   keeps the versions that may serve (a blue-green pin, a canary's share, a version the call asked
   for), outlier detection drops the ejected ones, and the balancer picks one — asked again if it
   picks one this call already failed on (:func:`pick`). The attempt runs for
   ``min(per_try_timeout, time left)``; its outcome goes to the balancer, the outlier detector, the
   breaker and the retry budget. A retryable failure is tried again after a jittered back-off if the
   attempts, the budget and the deadline allow. No instance to pick is an attempt that failed
   UNAVAILABLE at once.
5. A call that was rejected, or finally failed UNAVAILABLE, DEADLINE_EXCEEDED or
   RESOURCE_EXHAUSTED, is answered by the fallback if one is given and has an answer.

The plan reads time only through the route's ``clock`` and draws randomness only from the route's
``rng`` and ``draw``. It takes no lock: a threaded driver advances it under the caller's lock.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .balancers import Balancer
from .bulkhead import Ticket
from .fallback import Fallback, NoFallback
from .release import route as versions_for
from .settings import PolicyState
from .statuses import FALLBACK_CODES, OK, SERVER_ERRORS


# Steps and outcomes are slotted dataclasses rather than named tuples: a simulation makes several
# per call, and these cost a third as much to make.
@dataclass(slots=True)
class Wait:
    """Let ``seconds`` pass; then send ``None``."""

    seconds: float


@dataclass(slots=True)
class Queue:
    """Wait in the bulkhead's line until ``ticket`` is admitted, for at most ``seconds``; then send
    ``None`` (the plan reads ``ticket.admitted``).

    Before waiting, the driver sets ``ticket.payload`` to a callable that wakes it: the plan calls
    it when a call leaving the bulkhead admits this ticket. A threaded driver must set it, and
    check ``ticket.admitted``, under the lock the plan runs under.
    """

    ticket: Ticket
    seconds: float


@dataclass(slots=True)
class Attempt:
    """Run attempt ``number`` (1 for the first) on ``instance`` for at most ``timeout`` seconds (None:
    no limit); then send ``(status, answer)``: the gRPC status name, and the response if OK."""

    instance: Any
    number: int
    timeout: float | None


@dataclass(slots=True)
class Done:
    """How a call ended.

    ``status`` is what the caller gets: OK (also when a fallback answered) or the failure's code.
    ``cause`` says what ended the call when no attempt's outcome did — ``deadline``,
    ``rate_limit``, ``bulkhead``, ``breaker`` or ``no_instance`` — with ``details`` for the caller;
    otherwise the last attempt's outcome (on ``instance``) is the call's. ``fallback`` is the
    reason a fallback answered ('' if none did) and ``answer`` its answer.
    """

    status: str
    attempts: int
    instance: Any = None
    cause: str = ""
    details: str = ""
    fallback: str = ""
    answer: Any = None


class Direct:
    """The plan of a call that is one attempt and nothing else: the attempt itself, with the
    ``instance`` the balancer picked (already counted as started), ``number`` 1 and its
    ``timeout``, as an :class:`Attempt` has. Run it; then :meth:`ended` tells the balancer how it
    went and returns the call's :class:`Done` (what the full plan would have returned).

    It is not a generator because a generator is what it spares: driving one costs a simulated
    call about as much as the rest of the call does.
    """

    __slots__ = ("instance", "route", "start", "timeout")
    number = 1

    def __init__(self, route: Route, instance: Any, timeout: float | None, start: float):
        self.route, self.instance, self.timeout, self.start = route, instance, timeout, start

    def ended(self, status: str) -> Done:
        """The attempt ended with ``status``: return how the call ended."""
        route, self.route = self.route, None
        route.balancer.on_end(self.instance, route.clock() - self.start, status == OK)
        return Done(status, 1, self.instance)

    def close(self) -> None:
        """Give up before the attempt ended (a driver's interrupt): the balancer hears of it."""
        route, self.route = self.route, None
        if route is not None:
            route.balancer.on_end(self.instance, route.clock() - self.start, False)


class Route(Protocol):
    """One caller's side of its calls to one service: what the plan reads and reports to."""

    service: str
    balancer: Balancer
    rng: np.random.Generator  # back-off jitter

    def clock(self) -> float: ...

    def instances(self) -> Sequence[Any]:
        """The instances discovery lists as passing now (each with an ``id``, and a ``version``)."""
        ...

    def draw(self) -> float:
        """A uniform number in [0, 1) (the canary split)."""
        ...


# The reason a fallback is told, by what ended the call.
_FALLBACK_REASONS = {"deadline": "deadline_exceeded", "rate_limit": "rejected", "bulkhead": "rejected",
                     "breaker": "breaker_open", "no_instance": "unavailable"}


def call_deadline(now: float, timeout: float | None = None, policy_timeout: float = 0.0,
                  upstream: float | None = None) -> float:
    """Return the time by which a call must end (``inf`` for never): its own ``timeout`` or else the
    policy's (0: none), cut to the ``upstream`` deadline of the call being served, if any."""
    if timeout is None and policy_timeout > 0:
        timeout = policy_timeout
    deadline = math.inf if timeout is None else now + timeout
    return deadline if upstream is None or upstream >= deadline else upstream


def no_instance(service: str, version: str = "") -> str:
    """Return what a caller is told when discovery lists no instance to call."""
    of = f"{service!r} version {version!r}" if version else repr(service)
    return f"no passing instance of {of} in the registry"


def pick(balancer: Balancer, candidates: Sequence[Any], request: Any = None, avoid: Sequence[str] = ()):
    """Return the balancer's pick, asking again while it picks an instance whose id is in ``avoid``.

    Re-picking from the whole list (as Envoy's previous-hosts retry predicate does) keeps each
    balancer's own logic; filtering the list instead would skew round robin's rotation. A balancer
    that keeps answering the same (a hash ring) gets the first instance not avoided.
    """
    chosen = balancer.pick(candidates, request)
    if not avoid or chosen.id not in avoid:
        return chosen
    for _ in range(len(candidates)):
        chosen = balancer.pick(candidates, request)
        if chosen.id not in avoid:
            return chosen
    return next((c for c in candidates if c.id not in avoid), chosen)


def call_plan(route: Route, state: PolicyState, deadline: float, *, request: Any = None, asked: str = "",
              fallback: Fallback | None = None) -> Generator[Wait | Queue | Attempt, Any, Done] | Direct:
    """Return the plan of one call to ``route.service`` under ``state`` (the caller's policy objects)
    that must end by ``deadline`` (on ``route.clock``): a generator of steps that returns a Done, or
    a :class:`Direct` when the call is one attempt and nothing else.

    ``request`` is the call's request (the key of a hash ring, a sticky canary and a caching
    fallback); ``asked`` a version the call asks for itself; ``fallback`` answers when the call
    cannot be served.
    """
    now = route.clock()
    if deadline <= now:
        return _finished(_ended("DEADLINE_EXCEEDED", "deadline", "deadline passed before the call", 0,
                                fallback, request))
    if state.direct and fallback is None and not asked:
        found = route.instances()
        if found:  # (with none, the full plan says so)
            balancer = route.balancer
            instance = balancer.pick(found, request)
            balancer.on_start(instance)
            per_try = state.retry.per_try_timeout
            timeout = None if deadline == math.inf and per_try is None else _timeout(deadline, now, per_try)
            return Direct(route, instance, timeout, now)
    if state.limiter is None and state.bulkhead is None:  # most calls: straight to the attempts
        return _attempts(route, state, deadline, request, asked, fallback)
    return _admitted(route, state, deadline, request, asked, fallback)


def _finished(done: Done):
    return done
    yield  # makes this a generator: one that ends at once with ``done``


def _admitted(route: Route, state: PolicyState, deadline: float, request: Any, asked: str,
              fallback: Fallback | None):
    """The plan of a call that must pass the rate limiter and the bulkhead before its attempts."""
    clock = route.clock
    settings = state.settings
    limiter = state.limiter
    if limiter is not None:
        wait = limiter.acquire(timeout=min(settings.rate_wait, max(deadline - clock(), 0.0)))
        if wait is None:
            limited = f"rate limit of {settings.rate_limit:g}/s reached"
            return _ended("RESOURCE_EXHAUSTED", "rate_limit", limited, 0, fallback, request)
        if wait > 0:
            yield Wait(wait)
    bulkhead = state.bulkhead
    if bulkhead is None:
        return (yield from _attempts(route, state, deadline, request, asked, fallback))
    if not bulkhead.try_enter():
        full = f"bulkhead full ({bulkhead.max_concurrent} calls in flight)"
        ticket = bulkhead.enqueue()
        if ticket is None:
            return _ended("RESOURCE_EXHAUSTED", "bulkhead", full, 0, fallback, request)
        try:
            yield Queue(ticket, min(bulkhead.max_wait, max(deadline - clock(), 0.0)))
        except GeneratorExit:  # the driver gave up (an interrupt): give the place back
            bulkhead.cancel(ticket)
            raise
        if not ticket.admitted:
            bulkhead.cancel(ticket)
            return _ended("RESOURCE_EXHAUSTED", "bulkhead", full, 0, fallback, request)
    try:
        return (yield from _attempts(route, state, deadline, request, asked, fallback))
    finally:
        admitted = bulkhead.leave()
        if admitted is not None and admitted.payload is not None:
            admitted.payload()


def _attempts(route: Route, state: PolicyState, deadline: float, request: Any, asked: str,
              fallback: Fallback | None):
    clock = route.clock
    retry, breaker, budget, outlier, release, routed, sticky = state.for_attempts
    routed = routed or bool(asked)
    key = str(request) if sticky else ""
    per_try = retry.per_try_timeout
    backoff = None
    avoid: tuple[str, ...] = ()
    attempt = 0
    while True:
        attempt += 1
        if breaker is not None and not breaker.try_acquire():
            refused = f"circuit breaker to {route.service} is {breaker.state.value}"
            return _ended("UNAVAILABLE", "breaker", refused, attempt - 1, fallback, request)
        found = route.instances()
        candidates = versions_for(found, release, route.draw(), key, asked) if routed and found else found
        if outlier is not None and candidates:
            candidates = outlier.available(candidates)
        if candidates:
            balancer = route.balancer
            if avoid:
                instance = pick(balancer, candidates, request, avoid)
            else:
                instance = balancer.pick(candidates, request)
            balancer.on_start(instance)
            start = clock()
            timeout = _timeout(deadline, start, per_try)
            try:
                status, answer = yield Attempt(instance, attempt, timeout)
            except GeneratorExit:  # the driver gave up mid-attempt: the balancer must not count it as running
                balancer.on_end(instance, clock() - start, False)
                raise
            duration = clock() - start
            ok = status == OK
            balancer.on_end(instance, duration, ok)
            if outlier is not None:
                outlier.on_result(instance, status not in SERVER_ERRORS, len(found))
        else:
            instance, status, answer, duration, ok = None, "UNAVAILABLE", None, 0.0, False
        if breaker is not None:
            if ok:
                breaker.on_success(duration)
            else:
                breaker.on_error(duration, status)
        if budget is not None:
            if ok:
                budget.on_success()
            elif status in retry.retryable:
                budget.on_failure()
        if ok:
            if fallback is not None:
                fallback.remember(request, answer)
            return Done(OK, attempt, instance)
        if instance is not None:
            avoid = (*avoid, instance.id)
        left = deadline - clock()
        if retry.should_retry(status, attempt, left):
            backoff = backoff or retry.backoff(route.rng)
            delay = backoff.delay(attempt)
            if delay < left:
                yield Wait(delay)
                continue
        if instance is None:
            nobody = no_instance(route.service, release.version if found else "")
            return _ended("UNAVAILABLE", "no_instance", nobody, attempt, fallback, request)
        done = Done(status, attempt, instance)
        return _fall_back(done, status.lower(), fallback, request) if status in FALLBACK_CODES else done


def _timeout(deadline: float, now: float, per_try: float | None) -> float | None:
    """Return an attempt's timeout: the smaller of ``per_try`` and the time left (None: neither)."""
    left = deadline - now
    if left == math.inf:
        return per_try
    left = max(left, 0.0)
    return left if per_try is None or per_try > left else per_try


def _ended(status: str, cause: str, details: str, attempts: int, fallback: Fallback | None,
           request: Any) -> Done:
    done = Done(status, attempts, None, cause, details)
    return _fall_back(done, _FALLBACK_REASONS[cause], fallback, request)


def _fall_back(done: Done, reason: str, fallback: Fallback | None, request: Any) -> Done:
    if fallback is None:
        return done
    try:
        answer = fallback.respond(request, reason)
    except NoFallback:
        return done
    done.status, done.fallback, done.answer = OK, reason, answer
    return done


__all__ = ["Attempt", "Direct", "Done", "Queue", "Route", "Wait", "call_deadline", "call_plan", "no_instance",
           "pick"]
