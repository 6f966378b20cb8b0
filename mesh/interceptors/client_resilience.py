"""Client side: apply a caller's policy to each call — deadline, rate limit, bulkhead, breaker,
retries with backoff and budget, and fallback.

For one call, in order:
1. The deadline is the call's own timeout (or the policy's), cut to what is left of the inbound
   call being served, if any: a callee never works past its caller's deadline.
2. The rate limiter may make the call wait (up to ``rate_wait``) or reject it.
3. The bulkhead admits it, queues it (up to ``bulkhead_wait``) or rejects it.
4. Each attempt asks the breaker, runs with ``min(per_try_timeout, time left)``, and reports to the
   breaker and the retry budget. A retryable failure is retried after a jittered backoff if the
   budget, the attempt count and the deadline allow; the next attempt avoids the instance that
   failed. Every attempt names its caller service in ``x-caller`` metadata; a retry also carries
   its attempt number in ``x-attempt`` (as Envoy's ``x-envoy-attempt-count``; none means the first).
   A call with an ``x-version`` header goes to instances of that version if any pass (a tester
   trying a release before it takes traffic).
5. When a call is rejected or finally fails, a registered fallback answers instead (marked with
   ``x-fallback: <reason>``), or the error goes to the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc

from ..channel import asked_version
from ..headers import ATTEMPT, CALLER, FALLBACK, VERSION
from ..inbound import inbound
from ..outcome import Completed, MeshRpcError, status_of
from ..policies import Deadline, NoFallback
from .client_tracing import AttemptTracer
from .intercepted_channel import CallDetails

_FALLBACK_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}


def _asked_version(metadata) -> str:
    """Return the version a call asks for in its ``x-version`` header ("" if none)."""
    if not metadata:
        return ""
    return next((value for key, value in metadata if key == VERSION), "")


class ResilienceInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Apply the policies of ``stack`` (a :class:`mesh._client.ClientStack`) to every call."""

    def __init__(self, stack, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._stack = stack
        self._clock = clock
        self._sleep = sleep
        self._tracer = AttemptTracer(stack)
        self._caller_metadata = (CALLER, stack.caller)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        stack = self._stack
        method = client_call_details.method.rsplit("/", 1)[-1]
        state = stack.state(method)
        settings = state.settings
        timeout = client_call_details.timeout
        if timeout is None and settings.timeout > 0:
            timeout = settings.timeout
        deadline = Deadline.after(timeout, self._clock)
        upstream = inbound.get()
        if upstream is not None and upstream.deadline is not None:
            deadline.at = min(deadline.at, upstream.deadline)
        if deadline.expired:
            return self._give_up(method, request, "DEADLINE_EXCEEDED", "deadline passed before the call")
        if state.limiter is not None:
            with stack.lock:
                wait = state.limiter.acquire(timeout=min(settings.rate_wait, max(deadline.remaining(), 0)))
            if wait is None:
                return self._give_up(method, request, "RESOURCE_EXHAUSTED",
                                     f"rate limit of {settings.rate_limit:g}/s reached")
            if wait > 0:
                self._sleep(wait)
        bulkhead = state.bulkhead
        if bulkhead is not None and not self._enter(bulkhead, deadline):
            return self._give_up(method, request, "RESOURCE_EXHAUSTED",
                                 f"bulkhead full ({bulkhead.max_concurrent} calls in flight)")
        asked = _asked_version(client_call_details.metadata)
        token = asked_version.set(asked) if asked else None
        try:
            return self._attempts(continuation, client_call_details, request, method, state, deadline)
        finally:
            if token is not None:
                asked_version.reset(token)
            if bulkhead is not None:
                self._leave(bulkhead)

    # -- attempts -------------------------------------------------------------------------------
    def _attempts(self, continuation, details, request, method, state, deadline):
        stack = self._stack
        backoff = None
        attempt = 0
        avoid: set[str] = set()
        while True:
            attempt += 1
            if state.breaker is not None:
                with stack.lock:
                    permitted = state.breaker.try_acquire()
                if not permitted:
                    return self._give_up(method, request, "UNAVAILABLE",
                                         f"circuit breaker to {stack.callee} is {state.breaker.state.value}")
            # Each metadata entry costs the call microseconds on both sides, so the first attempt
            # sends only the caller (and the tracer adds traceparent).
            metadata = [*(details.metadata or ()), self._caller_metadata]
            if attempt > 1:
                metadata.append((ATTEMPT, str(attempt)))
            timeout = deadline.limit(state.retry.per_try_timeout)
            attempt_details = CallDetails(details.method, timeout, metadata, details.credentials,
                                          details.wait_for_ready, details.compression)
            token = stack.avoid.set(frozenset(avoid)) if avoid else None
            start = self._clock()
            try:
                outcome = self._tracer.run(continuation, attempt_details, request, method, attempt)
            finally:
                if token is not None:
                    stack.avoid.reset(token)
            duration = self._clock() - start
            code = status_of(outcome)
            with stack.lock:
                if state.breaker is not None:
                    if code == "OK":
                        state.breaker.on_success(duration)
                    else:
                        state.breaker.on_error(duration, code)
                if state.budget is not None:
                    if code == "OK":
                        state.budget.on_success()
                    elif code in state.retry.retryable:
                        state.budget.on_failure()
            if code == "OK":
                fallback = stack.fallbacks.get(method)
                if fallback is not None:
                    with stack.lock:
                        fallback.remember(request, outcome.result())
                return outcome
            tried = stack.last_pick.get()
            if tried:
                avoid.add(tried)
            with stack.lock:
                again = state.retry.should_retry(code, attempt, deadline.remaining())
                if again:
                    backoff = backoff or state.retry.backoff(stack.rng)
                    delay = backoff.delay(attempt)
            if not again or delay >= deadline.remaining():
                if code in _FALLBACK_CODES:
                    return self._fallback(method, request, code.lower(), outcome)
                return outcome
            self._sleep(delay)

    # -- rejections and fallbacks ---------------------------------------------------------------
    def _give_up(self, method, request, code: str, details: str):
        error = MeshRpcError(grpc.StatusCode[code], details)
        reason = {"RESOURCE_EXHAUSTED": "rejected", "UNAVAILABLE": "breaker_open"}.get(code, code.lower())
        return self._fallback(method, request, reason, error)

    def _fallback(self, method, request, reason: str, outcome):
        fallback = self._stack.fallbacks.get(method)
        if fallback is None:
            return outcome
        try:
            with self._stack.lock:
                answer = fallback.respond(request, reason)
        except NoFallback:
            return outcome
        return Completed(answer, ((FALLBACK, reason),))

    # -- bulkhead -------------------------------------------------------------------------------
    def _enter(self, bulkhead, deadline: Deadline) -> bool:
        lock = self._stack.lock
        with lock:
            if bulkhead.try_enter():
                return True
            ticket = bulkhead.enqueue(threading.Event())
        if ticket is None:
            return False
        ticket.payload.wait(min(bulkhead.max_wait, max(deadline.remaining(), 0)))
        with lock:
            if ticket.admitted:
                return True
            bulkhead.cancel(ticket)
            return False

    def _leave(self, bulkhead) -> None:
        with self._stack.lock:
            ticket = bulkhead.leave()
        if ticket is not None:
            ticket.payload.set()
