"""The simulator's driver of call plans: each step is a plain scheduled callback, not a SimPy process.

A :class:`Task` runs a generator of steps — a :func:`mesh.policies.plan.call_plan`, or an
instance's handler that ``yield from``-s the plans of the calls it makes — on a
``simpy.Environment``:

- :class:`~mesh.policies.plan.Wait`: a timer event, then the task goes on;
- :class:`~mesh.policies.plan.Queue`: the bulkhead's ticket wakes the task when it is admitted,
  or a timer does when the wait is over;
- :class:`~mesh.policies.plan.Attempt`: handed to the task's ``host`` (``host.attempt(task,
  step)``), which answers through :meth:`Task.replied` or :meth:`Task.timed_out`;
- :class:`Fork`: the plans of a parallel group run as tasks of their own; the task goes on when
  all have ended, with their :class:`~mesh.policies.plan.Done` in order.

Steps that need no waiting cost no event at all. Events are :class:`Timer` objects, which give
``Environment.step`` only what it reads (``callbacks``, ``_ok``); SimPy's own ``Timeout`` and
``Process`` would cost a call several more objects and a scheduled start. Written by hand for that
reason: SimPy has no lighter event and no other library runs these plans.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple, Protocol

import simpy
from simpy.events import NORMAL

from mesh.policies import Ticket
from mesh.policies.plan import Attempt, Direct, Queue, Wait

OK = "OK"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


class Fork(NamedTuple):
    """Run these plans side by side; then send the list of their outcomes, in order."""

    plans: Sequence[Generator]


class Timer:
    """An event that calls ``callback(timer)`` when the environment reaches it."""

    __slots__ = ("callbacks", "subject")
    _ok = True

    def __init__(self, callback: Callable[[Timer], None], subject: Any = None):
        self.callbacks = (callback,)
        self.subject = subject  # what the timer is about (the job or ticket a task waits for)


def after(env: simpy.Environment, delay: float, callback: Callable[[Timer], None],
          subject: Any = None) -> None:
    """Call ``callback(timer)`` ``delay`` seconds from now."""
    env.schedule(Timer(callback, subject), NORMAL, delay)


class Host(Protocol):
    """What a task needs from the simulation it runs in."""

    env: simpy.Environment

    def attempt(self, task: Task, step: Attempt) -> None:
        """Run the attempt. First set ``task.waiting`` to the job that stands for it (anything with a
        ``status``); then, when it ends — at once, or later — call ``task.replied(job)``, or
        ``task.timed_out(timer)`` with a timer whose ``subject`` is the job."""
        ...


class Task:
    """Run ``steps`` on ``host``'s environment; call ``done(result)`` with what the generator returns.

    ``context`` is whatever the host wants attempts to carry (the request they serve); ``path``, if
    given, collects the instance id of each attempt.
    """

    __slots__ = ("context", "done", "host", "path", "steps", "waiting")

    def __init__(self, host: Host, steps: Generator, done: Callable[[Any], None], context: Any = None,
                 path: list[str] | None = None):
        self.host = host
        self.steps = steps
        self.done = done
        self.context = context
        self.path = path
        self.waiting: Any = None  # the job or ticket whose end the task waits for
        if type(steps) is Direct:  # the plan is one attempt
            if path is not None:
                path.append(steps.instance.id)
            host.attempt(self, steps)
        else:
            self.send(None)

    def send(self, value: Any) -> None:
        """Give the generator the outcome of its last step and carry out its next one."""
        try:
            step = self.steps.send(value)
        except StopIteration as stop:
            self.done(stop.value)
            return
        kind = type(step)
        if kind is Attempt:
            if self.path is not None:
                self.path.append(step.instance.id)
            self.host.attempt(self, step)
        elif kind is Wait:
            self.host.env.schedule(Timer(self._wake), NORMAL, step.seconds)
        elif kind is Queue:
            self._queue(step.ticket, step.seconds)
        elif kind is Fork:
            self._fork(step.plans)
        else:
            raise TypeError(f"unknown step {step!r}")

    # -- attempts -------------------------------------------------------------------------------
    def replied(self, job: Any) -> None:
        """An attempt's ``job`` ended with ``job.status`` (ignored if the task no longer waits for it)."""
        if self.waiting is job:
            self.waiting = None
            self._attempted(job.status)

    def timed_out(self, timer: Timer) -> None:
        """The attempt ``timer.subject`` ran out of time before its instance answered."""
        if self.waiting is timer.subject:
            self.waiting = None
            self._attempted(DEADLINE_EXCEEDED)

    def _attempted(self, status: str) -> None:
        steps = self.steps
        if type(steps) is Direct:
            self.done(steps.ended(status))
        else:
            self.send((status, None))

    # -- waits ----------------------------------------------------------------------------------
    def _wake(self, _timer: Timer) -> None:
        self.send(None)

    def _queue(self, ticket: Ticket, seconds: float) -> None:
        env = self.host.env
        self.waiting = ticket
        ticket.payload = lambda: env.schedule(Timer(self._end_wait, ticket), NORMAL, 0.0)
        env.schedule(Timer(self._end_wait, ticket), NORMAL, seconds)

    def _end_wait(self, timer: Timer) -> None:
        if self.waiting is timer.subject:
            self.waiting = None
            self.send(None)

    def _fork(self, plans: Sequence[Generator]) -> None:
        if not plans:
            self.send([])
            return
        results: list[Any] = [None] * len(plans)
        left = [len(plans)]

        def ended(index: int) -> Callable[[Any], None]:
            def record(result: Any) -> None:
                results[index] = result
                left[0] -= 1
                if left[0] == 0:
                    self.send(results)
            return record

        for index, plan in enumerate(plans):
            Task(self.host, plan, ended(index), self.context)


class Deadlines:
    """Time out attempts whose instance may answer late, with one pending timer for many.

    :meth:`keep` asks for ``task.timed_out`` at ``limit`` unless the task has stopped waiting for
    ``job`` by then. Most attempts end long before their limit (a 10 s default deadline on calls of
    milliseconds), so a timer each would be an event scheduled and popped for nothing on nearly
    every queued call. Limits mostly come in order (``now`` plus the same timeout), so they wait in
    a line with one timer, set for the first; when it fires, the attempts that ended are dropped
    from the front, any due are timed out, and the timer is set for the next still waiting. A limit
    earlier than the last in line gets a timer of its own, so every attempt times out exactly at
    its limit, as with a timer each.
    """

    __slots__ = ("_armed", "_line", "env")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._line: deque[tuple[float, Task, Any]] = deque()
        self._armed = False

    def keep(self, task: Task, job: Any, limit: float) -> None:
        line = self._line
        if line and limit < line[-1][0]:
            self.env.schedule(Timer(task.timed_out, job), NORMAL, limit - self.env.now)
            return
        line.append((limit, task, job))
        if not self._armed:
            self._arm(limit)

    def _arm(self, limit: float) -> None:
        self._armed = True
        self.env.schedule(Timer(self._fire), NORMAL, limit - self.env.now)

    def _fire(self, _timer: Timer) -> None:
        line, now = self._line, self.env.now
        self._armed = True  # while the line is walked, a retry's keep() must not set a second timer
        while line:
            limit, task, job = line[0]
            if task.waiting is job:
                if limit > now:
                    self._arm(limit)
                    return
                line.popleft()
                task.timed_out(Timer(task.timed_out, job))
            else:
                line.popleft()
        self._armed = False


__all__ = ["Deadlines", "Fork", "Host", "Task", "Timer", "after"]
