"""Client side: run every call through the call plan (:mod:`mesh.policies.plan`) with threads, real
sleeps and real RPCs.

The plan decides — the deadline, the rate limit, the bulkhead, the breaker, which instance each
attempt goes to, retries and back-off, the fallback — and this interceptor does what it says: it
sleeps, waits in the bulkhead's line, and runs each attempt on the instance the plan chose (through
the balanced channel, with the attempt's own timeout and metadata, traced by
:class:`~mesh.interceptors.client_tracing.AttemptTracer`). It advances the plan under the caller's
lock, so the policy objects see one call's step at a time; it never holds the lock while waiting.

The deadline a call starts with is its own timeout (or the policy's), cut to what is left of the
inbound call being served, if any: a callee never works past its caller's deadline. Every attempt
names its caller service in ``x-caller``; a retry also carries its attempt number in ``x-attempt``
(as Envoy's ``x-envoy-attempt-count``; none means the first). A call with an ``x-version`` header
asks for instances of that version (a tester trying a release before it takes traffic). When a
fallback answers, the answer carries ``x-fallback: <reason>``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc

from ..client import inbound
from ..client.channel import NoHealthyInstances, chosen_instance
from ..client.headers import ATTEMPT, CALLER, FALLBACK, IDENTITY, VERSION
from ..client.outcome import Completed, MeshRpcError, as_seen_by_caller, status_of
from ..policies.plan import Attempt, Direct, Done, Queue, Wait, call_deadline, call_plan
from .client_tracing import AttemptTracer
from .intercepted_channel import CallDetails


def _asked_version(metadata) -> str:
    """Return the version a call asks for in its ``x-version`` header ("" if none)."""
    if not metadata:
        return ""
    return next((value for key, value in metadata if key == VERSION), "")


class ResilienceInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Run the calls of ``stack`` (a :class:`mesh.core.clients.ClientStack`: the plan's route, policies,
    fallbacks and lock) through the call plan; ``sleep`` waits out back-offs and limiter waits,
    ``wait_in_line(event, seconds)`` waits for a bulkhead's admission (True if admitted)."""

    def __init__(self, stack, sleep: Callable[[float], None] = time.sleep,
                 wait_in_line: Callable[[threading.Event, float], bool] = threading.Event.wait):
        self._stack = stack
        self._sleep = sleep
        self._wait_in_line = wait_in_line
        self._tracer = AttemptTracer(stack)
        self._caller_metadata = (CALLER, stack.caller)
        self._identities = getattr(stack, "identities", None)  # the mesh's signer (mesh.identity)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        stack = self._stack
        method = client_call_details.method.rsplit("/", 1)[-1]
        state = stack.state(method)
        upstream = inbound.get()
        deadline = call_deadline(stack.clock(), client_call_details.timeout, state.settings.timeout,
                                 upstream.deadline if upstream is not None else None)
        asked = _asked_version(client_call_details.metadata)
        fallback = stack.fallbacks.get(method)
        lock = stack.lock
        with lock:
            plan = call_plan(stack, state, deadline, request=request, asked=asked, fallback=fallback)
        if type(plan) is Direct:
            return self._direct(continuation, client_call_details, request, method, plan)
        outcome = sent = call_trace = None
        try:
            while True:
                with lock:
                    step = plan.send(sent)
                    kind = type(step)
                    waiter = self._line_up(step) if kind is Queue else None
                if kind is Attempt:
                    outcome, call_trace = self._attempt(continuation, client_call_details, request, method,
                                                        step, call_trace)
                    code = status_of(outcome)
                    sent = (code, outcome.result() if code == "OK" else None)
                elif kind is Wait:
                    self._sleep(step.seconds)
                    sent = None
                else:
                    if waiter is not None:
                        self._wait_in_line(waiter, step.seconds)
                    sent = None
        except StopIteration as stop:
            return self._answer(stop.value, outcome, method, call_trace)
        except BaseException:
            with lock:
                plan.close()  # gives back the bulkhead's place and the balancer's count
            raise

    def _direct(self, continuation, details, request, method: str, plan: Direct):
        """Run a call that is one attempt and nothing else."""
        try:
            outcome, _ = self._attempt(continuation, details, request, method, plan, None)
        except BaseException:
            with self._stack.lock:
                plan.close()
            raise
        with self._stack.lock:
            done = plan.ended(status_of(outcome))
        return self._answer(done, outcome, method, None)

    @staticmethod
    def _line_up(step: Queue) -> threading.Event | None:
        """Arrange to be woken when the ticket is admitted (under the lock); None if it already is."""
        admitted = threading.Event()
        step.ticket.payload = admitted.set
        return None if step.ticket.admitted else admitted

    def _attempt(self, continuation, details, request, method: str, step: Attempt | Direct,
                 call_trace: tuple | None):
        """Run one attempt; return its outcome and its trace (for the call's later attempts)."""
        # Each metadata entry costs the call microseconds on both sides, so the first attempt
        # sends only the caller (and the tracer adds traceparent).
        metadata = [*(details.metadata or ()), self._caller_metadata]
        identities = self._identities
        if identities is not None and identities.active:
            metadata.append((IDENTITY, identities.token(self._stack.caller, self._stack.callee)))
        if step.number > 1:
            metadata.append((ATTEMPT, str(step.number)))
        attempt = CallDetails(details.method, step.timeout, metadata, details.credentials,
                              details.wait_for_ready, details.compression)
        token = chosen_instance.set(step.instance)
        try:
            outcome, call_trace = self._tracer.run(continuation, attempt, request, method, step.number,
                                                   step.instance.id, call_trace)
        finally:
            chosen_instance.reset(token)
        return as_seen_by_caller(outcome, step.instance.id), call_trace

    def _answer(self, done: Done, outcome, method: str, call_trace: tuple | None):
        """Return what the caller gets: a fallback's answer, the plan's own error, or the last attempt's."""
        if done.cause:
            self._tracer.refused(method, done.attempts + 1, done.cause, done.status, done.fallback,
                                 call_trace)
        if done.fallback:
            return Completed(done.answer, ((FALLBACK, done.fallback),))
        if done.cause == "no_instance":
            return NoHealthyInstances(done.details)
        if done.cause:
            return MeshRpcError(grpc.StatusCode[done.status], done.details)
        return outcome
