"""A circuit breaker (熔断) with Resilience4j's semantics, on an injected clock.

States: CLOSED (calls pass, outcomes recorded), OPEN (calls rejected at once), HALF_OPEN (a few
trial calls decide), DISABLED (always pass, nothing recorded) and FORCED_OPEN (always reject).

- Outcomes go into a sliding window, count-based (the last N calls) or time-based (the calls of
  the last N seconds, in one-second buckets).
- Once the window holds ``minimum_calls`` (for a count window, at most its size), the breaker opens
  when the failure rate reaches ``failure_rate_threshold`` percent, or the share of calls slower
  than ``slow_call_duration`` reaches ``slow_call_rate_threshold`` percent.
- OPEN lasts ``wait_in_open`` seconds; the first call asked for after that moves the breaker to
  HALF_OPEN (Resilience4j's default, lazy transition).
- HALF_OPEN permits ``permitted_in_half_open`` calls; when they have all been recorded, the same
  thresholds decide: OPEN again, or CLOSED with a fresh window.
- ``is_failure(error)`` chooses which errors count as failures (others count as successes);
  ``is_ignored(error)`` errors are not recorded at all.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    DISABLED = "disabled"
    FORCED_OPEN = "forced_open"


_CLOSED = State.CLOSED


class CallNotPermitted(Exception):
    """The breaker rejected a call without running it."""

    def __init__(self, name: str, state: State):
        super().__init__(f"circuit breaker {name!r} is {state.value} and does not permit calls")
        self.breaker = name
        self.state = state


@dataclass(frozen=True)
class BreakerConfig:
    """Resilience4j's settings, with its defaults."""

    failure_rate_threshold: float = 50.0
    slow_call_rate_threshold: float = 100.0
    slow_call_duration: float = 60.0
    window_type: str = "count"  # "count" or "time"
    window_size: int = 100      # calls, or seconds for a time window
    minimum_calls: int = 100
    wait_in_open: float = 60.0
    permitted_in_half_open: int = 10
    is_failure: Callable[[Any], bool] = lambda error: True
    is_ignored: Callable[[Any], bool] = lambda error: False

    def __post_init__(self) -> None:
        if self.window_type not in ("count", "time"):
            raise ValueError("window_type must be 'count' or 'time'")
        if not 0 < self.failure_rate_threshold <= 100 or not 0 < self.slow_call_rate_threshold <= 100:
            raise ValueError("rate thresholds are percentages in (0, 100]")
        if self.window_size < 1 or self.minimum_calls < 1 or self.permitted_in_half_open < 1:
            raise ValueError("window_size, minimum_calls and permitted_in_half_open must be at least 1")
        if self.wait_in_open < 0 or self.slow_call_duration <= 0:
            raise ValueError("wait_in_open must be >= 0 and slow_call_duration > 0")


@dataclass(frozen=True)
class Transition:
    """A change of state, with the breaker's clock time."""

    time: float
    breaker: str
    source: State
    target: State


class _Outcome:
    """Outcome bits (plain ints: enum flags cost more than the rest of recording a call)."""

    SUCCESS = 0
    FAILURE = 1  # CountWindow.record reads these two bits by value
    SLOW = 2


class CountWindow:
    """The outcomes of the last ``size`` calls."""

    def __init__(self, size: int):
        self._outcomes: deque[int] = deque(maxlen=size)
        self._size = size
        self.calls = self.failures = self.slow = 0

    def record(self, outcome: int, now: float) -> None:
        # Written out rather than through a helper: a breaker records every call of a simulation.
        outcomes = self._outcomes
        if len(outcomes) == self._size:
            oldest = outcomes[0]  # the append below drops it
            self.calls -= 1
            self.failures -= oldest & 1
            self.slow -= (oldest & 2) >> 1
        outcomes.append(outcome)
        self.calls += 1
        self.failures += outcome & 1
        self.slow += (outcome & 2) >> 1

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow


class TimeWindow:
    """The outcomes of the calls in the last ``seconds`` seconds, in one-second buckets."""

    def __init__(self, seconds: int):
        self._seconds = seconds
        self._buckets: deque[list[int]] = deque()  # [epoch second, calls, failures, slow]

    def _expire(self, now: float) -> None:
        oldest = int(now) - self._seconds + 1
        while self._buckets and self._buckets[0][0] < oldest:
            self._buckets.popleft()

    def record(self, outcome: int, now: float) -> None:
        self._expire(now)
        second = int(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += bool(outcome & _Outcome.FAILURE)
        bucket[3] += bool(outcome & _Outcome.SLOW)

    def totals(self, now: float) -> tuple[int, int, int]:
        self._expire(now)
        return (sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets),
                sum(b[3] for b in self._buckets))


class CircuitBreaker:
    """One breaker: ask :meth:`try_acquire` before a call, then report how the call ended."""

    def __init__(self, name: str, config: BreakerConfig, clock: Callable[[], float]):
        self.name = name
        self.config = config
        self._clock = clock
        self._state = State.CLOSED
        # A count window never holds more than its size, so it opens after at most that many calls.
        self._minimum = min(config.minimum_calls, config.window_size) if config.window_type == "count" \
            else config.minimum_calls
        self._window = self._closed_window()
        self._opened_at = 0.0
        self._half_open_permits = 0
        self.transitions: list[Transition] = []
        self.rejected = 0
        self._listeners: list[Callable[[Transition], None]] = []

    # -- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    def add_listener(self, listener: Callable[[Transition], None]) -> None:
        """Call ``listener(transition)`` on every change of state."""
        self._listeners.append(listener)

    def _closed_window(self) -> CountWindow | TimeWindow:
        if self.config.window_type == "count":
            return CountWindow(self.config.window_size)
        return TimeWindow(self.config.window_size)

    def _transition(self, target: State) -> None:
        if target == self._state:
            return
        event = Transition(self._clock(), self.name, self._state, target)
        self._state = target
        if target == State.OPEN:
            self._opened_at = event.time
        elif target == State.HALF_OPEN:
            self._window = CountWindow(self.config.permitted_in_half_open)
            self._half_open_permits = self.config.permitted_in_half_open
        elif target == State.CLOSED:
            self._window = self._closed_window()
        self.transitions.append(event)
        for listener in self._listeners:
            listener(event)

    def transition_to(self, state: State) -> None:
        """Force a state (DISABLED, FORCED_OPEN, or back to CLOSED), as an operator would."""
        self._transition(state)

    def reset(self) -> None:
        self._transition(State.CLOSED)
        self._window = self._closed_window()

    # -- calls ------------------------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Return whether a call may go ahead now (and take a half-open permit if so)."""
        state = self._state
        if state is _CLOSED or state is State.DISABLED:
            return True
        if state == State.OPEN and self._clock() - self._opened_at >= self.config.wait_in_open:
            self._transition(State.HALF_OPEN)
            state = State.HALF_OPEN
        if state == State.HALF_OPEN and self._half_open_permits > 0:
            self._half_open_permits -= 1
            return True
        self.rejected += 1
        return False

    def acquire(self) -> None:
        """Like :meth:`try_acquire`, but raise :class:`CallNotPermitted` when rejected."""
        if not self.try_acquire():
            raise CallNotPermitted(self.name, self._state)

    def release(self) -> None:
        """Give back a permission for a call that did not run (or whose error is ignored)."""
        if self._state == State.HALF_OPEN:
            self._half_open_permits = min(self._half_open_permits + 1, self.config.permitted_in_half_open)

    def on_success(self, duration: float) -> None:
        self._record(_Outcome.SUCCESS, duration)

    def on_error(self, duration: float, error: Any = None) -> None:
        if self.config.is_ignored(error):
            self.release()
            return
        self._record(_Outcome.FAILURE if self.config.is_failure(error) else _Outcome.SUCCESS, duration)

    def _record(self, outcome: int, duration: float) -> None:
        state = self._state
        if state is not _CLOSED and state is not State.HALF_OPEN:
            return
        config = self.config
        if duration >= config.slow_call_duration:
            outcome |= _Outcome.SLOW
        now = self._clock()
        window = self._window
        window.record(outcome, now)
        calls, failures, slow = window.totals(now)
        if state is State.HALF_OPEN:
            if calls >= config.permitted_in_half_open:
                self._transition(State.OPEN if self._over(calls, failures, slow) else State.CLOSED)
            return
        if (failures or slow) and calls >= self._minimum and self._over(calls, failures, slow):
            self._transition(State.OPEN)

    def _over(self, calls: int, failures: int, slow: int) -> bool:
        return (100.0 * failures / calls >= self.config.failure_rate_threshold
                or 100.0 * slow / calls >= self.config.slow_call_rate_threshold)

    # -- metrics ----------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Return the window's calls, failure rate and slow-call rate (rates -1 below the minimum)."""
        calls, failures, slow = self._window.totals(self._clock())
        enough = calls >= self._minimum and calls > 0
        return {
            "calls": calls,
            "failure_rate": 100.0 * failures / calls if enough else -1.0,
            "slow_call_rate": 100.0 * slow / calls if enough else -1.0,
            "rejected": self.rejected,
        }
