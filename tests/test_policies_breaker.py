"""The circuit breaker on a fake clock: every transition of Resilience4j's state machine."""

from __future__ import annotations

import pytest

from mesh.policies import BreakerConfig, CallNotPermitted, CircuitBreaker, State

from .policy_helpers import FakeClock


def breaker(clock, **settings) -> CircuitBreaker:
    defaults = {"window_size": 10, "minimum_calls": 4, "failure_rate_threshold": 50,
                "wait_in_open": 5.0, "permitted_in_half_open": 2}
    return CircuitBreaker("downstream", BreakerConfig(**{**defaults, **settings}), clock)


def test_closed_stays_closed_below_the_minimum_number_of_calls():
    cb = breaker(FakeClock())
    for _ in range(3):
        assert cb.try_acquire()
        cb.on_error(0.01)
    assert cb.state == State.CLOSED
    assert cb.metrics()["failure_rate"] == -1.0


def test_closed_opens_when_the_failure_rate_reaches_the_threshold():
    cb = breaker(FakeClock())
    for ok in (True, True, False, False):
        cb.on_success(0.01) if ok else cb.on_error(0.01)
    assert cb.state == State.OPEN  # 2 of 4 = 50 % >= 50 %
    assert [(t.source, t.target) for t in cb.transitions] == [(State.CLOSED, State.OPEN)]


def test_closed_stays_closed_just_below_the_threshold():
    cb = breaker(FakeClock())
    for ok in (True, True, True, False, True, True, False):  # 2 of 7 = 29 %
        cb.on_success(0.01) if ok else cb.on_error(0.01)
    assert cb.state == State.CLOSED


def test_slow_calls_open_the_breaker_even_when_they_succeed():
    cb = breaker(FakeClock(), slow_call_duration=1.0, slow_call_rate_threshold=75)
    for duration in (2.0, 2.0, 2.0, 0.1):
        cb.on_success(duration)
    assert cb.state == State.OPEN
    assert cb.metrics()["slow_call_rate"] == 75.0


def test_open_rejects_until_the_wait_ends_then_half_open_lazily():
    clock = FakeClock()
    cb = breaker(clock)
    cb.transition_to(State.OPEN)
    assert not cb.try_acquire()
    with pytest.raises(CallNotPermitted):
        cb.acquire()
    clock.advance(4.9)
    assert not cb.try_acquire() and cb.state == State.OPEN
    clock.advance(0.1)
    assert cb.state == State.OPEN  # no timer: the next call moves it
    assert cb.try_acquire()
    assert cb.state == State.HALF_OPEN
    assert cb.rejected == 3


def test_half_open_permits_a_fixed_number_of_trial_calls():
    clock = FakeClock()
    cb = breaker(clock)
    cb.transition_to(State.OPEN)
    clock.advance(5)
    assert cb.try_acquire() and cb.try_acquire()
    assert not cb.try_acquire()
    cb.release()  # a trial that did not run gives its permit back
    assert cb.try_acquire()


def test_half_open_closes_when_the_trials_succeed():
    clock = FakeClock()
    cb = breaker(clock)
    cb.transition_to(State.OPEN)
    clock.advance(5)
    for _ in range(2):
        assert cb.try_acquire()
        cb.on_success(0.01)
    assert cb.state == State.CLOSED
    assert cb.metrics()["calls"] == 0  # a fresh window


def test_half_open_reopens_when_the_trials_fail():
    clock = FakeClock()
    cb = breaker(clock)
    cb.transition_to(State.OPEN)
    clock.advance(5)
    cb.try_acquire()
    cb.on_success(0.01)
    cb.try_acquire()
    cb.on_error(0.01)  # 1 of 2 = 50 %
    assert cb.state == State.OPEN
    assert not cb.try_acquire()
    clock.advance(5)
    assert cb.try_acquire() and cb.state == State.HALF_OPEN


def test_disabled_and_forced_open():
    cb = breaker(FakeClock())
    cb.transition_to(State.DISABLED)
    for _ in range(20):
        assert cb.try_acquire()
        cb.on_error(0.01)
    assert cb.state == State.DISABLED
    cb.transition_to(State.FORCED_OPEN)
    assert not cb.try_acquire()
    cb.reset()
    assert cb.state == State.CLOSED and cb.try_acquire()


def test_which_errors_count_is_configurable():
    cb = breaker(FakeClock(), is_failure=lambda e: e != "NOT_FOUND", is_ignored=lambda e: e == "CANCELLED")
    for error in ("NOT_FOUND", "NOT_FOUND", "CANCELLED", "UNAVAILABLE", "NOT_FOUND"):
        cb.on_error(0.01, error)
    assert cb.state == State.CLOSED
    assert cb.metrics()["calls"] == 4  # the cancelled call was not recorded


def test_count_window_forgets_old_calls():
    cb = breaker(FakeClock(), window_size=4, minimum_calls=4)
    for ok in (False, True, True, True, True):
        cb.on_success(0.01) if ok else cb.on_error(0.01)
    assert cb.metrics()["failure_rate"] == 0.0


def test_time_window_counts_only_the_last_seconds():
    clock = FakeClock()
    cb = breaker(clock, window_type="time", window_size=3, minimum_calls=3)
    cb.on_error(0.01)
    cb.on_error(0.01)
    clock.advance(3.0)  # those two failures fall out of the 3-second window
    for _ in range(3):
        cb.on_success(0.01)
    cb.on_error(0.01)
    assert cb.state == State.CLOSED and cb.metrics()["failure_rate"] == 25.0
    cb.on_error(0.01)  # 2 of 5 = 40 %
    assert cb.state == State.CLOSED
    cb.on_error(0.01)  # 3 of 6 = 50 %
    assert cb.state == State.OPEN


def test_listeners_hear_every_transition_with_its_time():
    clock = FakeClock(100.0)
    cb = breaker(clock)
    events = []
    cb.add_listener(events.append)
    cb.transition_to(State.OPEN)
    clock.advance(5)
    cb.try_acquire()
    assert [(e.time, e.target) for e in events] == [(100.0, State.OPEN), (105.0, State.HALF_OPEN)]


@pytest.mark.parametrize("settings", [
    {"failure_rate_threshold": 0}, {"failure_rate_threshold": 101}, {"window_type": "sliding"},
    {"window_size": 0}, {"permitted_in_half_open": 0}, {"wait_in_open": -1},
])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError):
        BreakerConfig(**settings)
