"""The simulator times out every waiting attempt exactly at its limit, with one pending timer for
limits that come in order (sim.driver.Deadlines)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim import Deterministic, Poisson, ServiceSpec, Simulation, Topology
from sim.driver import Deadlines, Timer, after


class Waiting:
    """A task that waits for ``job`` and notes when it was timed out."""

    def __init__(self, env: simpy.Environment, job: str, log: list, then=None):
        self.env, self.waiting, self.log, self.then = env, job, log, then

    def timed_out(self, timer) -> None:
        if self.waiting is timer.subject:
            self.log.append((self.env.now, timer.subject))
            self.waiting = None
            if self.then:
                self.then()


def test_each_attempt_still_waiting_times_out_at_its_own_limit_and_no_other():
    env, log = simpy.Environment(), []
    deadlines = Deadlines(env)
    tasks = {name: Waiting(env, name, log) for name in ("a", "b", "c", "d")}
    for name, limit in (("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.5)):
        deadlines.keep(tasks[name], name, limit)
    after(env, 1.5, lambda _: setattr(tasks["b"], "waiting", None))  # b's reply came in time
    env.run()
    assert log == [(1.0, "a"), (2.0, "c"), (3.5, "d")]


def test_one_timer_is_pending_for_limits_in_order():
    env, log = simpy.Environment(), []
    deadlines = Deadlines(env)
    for n in range(100):
        deadlines.keep(Waiting(env, n, log), n, 10.0 + n / 100)
    assert len(env._queue) == 1
    env.run()
    assert [t for t, _ in log] == pytest.approx([10.0 + n / 100 for n in range(100)])


def test_a_limit_earlier_than_the_last_in_line_is_not_late():
    env, log = simpy.Environment(), []
    deadlines = Deadlines(env)
    deadlines.keep(Waiting(env, "late", log), "late", 5.0)
    deadlines.keep(Waiting(env, "early", log), "early", 2.0)
    deadlines.keep(Waiting(env, "later", log), "later", 6.0)
    env.run()
    assert log == [(2.0, "early"), (5.0, "late"), (6.0, "later")]


def test_an_attempt_kept_while_one_times_out_is_timed_out_too():
    """A retry made in a timed-out task's callback joins the line without a second timer."""
    env, log = simpy.Environment(), []
    deadlines = Deadlines(env)

    def retry():
        deadlines.keep(Waiting(env, "retry", log), "retry", env.now + 1.0)

    deadlines.keep(Waiting(env, "first", log, then=retry), "first", 1.0)
    deadlines.keep(Waiting(env, "second", log), "second", 1.5)
    env.run(until=1.2)
    assert sum(isinstance(event, Timer) for *_, event in env._queue) == 1
    env.run()
    assert log == [(1.0, "first"), (1.5, "second"), (2.0, "retry")]


def test_calls_queued_behind_a_slow_one_fail_exactly_at_the_callers_timeout():
    one_worker = Topology({"s": ServiceSpec(workers=1, service_time=Deterministic(1.0))}, "s")
    results = Simulation(one_worker, np.random.default_rng(0), Poisson(20.0), timeout=0.3).run(10.0)
    timed_out = [r.latency for r in results.finished if r.status == "DEADLINE_EXCEEDED"]
    assert len(timed_out) > 100 and results.by_status().get("OK", 0) == 0
    assert timed_out == pytest.approx([0.3] * len(timed_out), abs=1e-9)
