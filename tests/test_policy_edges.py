"""The policies at their edges, where a plausible one-character bug would hide (mutation testing
found each kind): every setting exactly at its bound, accepted or refused with its message; the
defaults each policy documents (Envoy's, Resilience4j's, gRPC's), pinned; counters that only a
dashboard reads; weights other than 1; time exactly at a boundary."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from mesh.gateway import Tokens
from mesh.policies import (
    BALANCERS,
    Backoff,
    BreakerConfig,
    Bulkhead,
    CallNotPermitted,
    CircuitBreaker,
    Deadline,
    DeadlineExceeded,
    Fallback,
    NoFallback,
    OutlierDetector,
    PolicySettings,
    PolicyState,
    PowerOfChoices,
    Release,
    RetryBudget,
    RetryPolicy,
    RoundRobin,
    SlidingWindow,
    State,
    TokenBucket,
    key_bucket,
    rng_for,
    route,
    version_share,
)
from mesh.policies.release import describe


class Clock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def refused(message: str):
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


# -- settings at their bounds, with their messages ---------------------------------------------
@pytest.mark.parametrize(("make", "message"), [
    (lambda: TokenBucket(0, 1, Clock()), "rate must be > 0 and burst >= 1"),
    (lambda: TokenBucket(1, 0.999, Clock()), "rate must be > 0 and burst >= 1"),
    (lambda: SlidingWindow(0, 1.0, Clock()), "limit must be >= 1 and window > 0"),
    (lambda: SlidingWindow(1, 0.0, Clock()), "limit must be >= 1 and window > 0"),
    (lambda: Bulkhead(0), "max_concurrent must be >= 1 and max_wait >= 0"),
    (lambda: Bulkhead(1, max_wait=-0.001), "max_concurrent must be >= 1 and max_wait >= 0"),
    (lambda: Backoff(np.random.default_rng(0), base=0.0), "need 0 < base <= cap and multiplier >= 1"),
    (lambda: Backoff(np.random.default_rng(0), base=0.2, cap=0.1),
     "need 0 < base <= cap and multiplier >= 1"),
    (lambda: Backoff(np.random.default_rng(0), multiplier=0.99), "need 0 < base <= cap and multiplier >= 1"),
    (lambda: Backoff(np.random.default_rng(0), jitter="some"),
     "jitter must be one of ('none', 'full', 'equal', 'decorrelated')"),
    (lambda: RetryBudget(max_tokens=0), "need 0 < max_tokens <= 1000 and token_ratio > 0"),
    (lambda: RetryBudget(max_tokens=1000.001), "need 0 < max_tokens <= 1000 and token_ratio > 0"),
    (lambda: RetryBudget(token_ratio=0), "need 0 < max_tokens <= 1000 and token_ratio > 0"),
    (lambda: OutlierDetector(Clock(), consecutive_errors=0), "bad outlier-detection settings"),
    (lambda: OutlierDetector(Clock(), base_ejection_time=0), "bad outlier-detection settings"),
    (lambda: OutlierDetector(Clock(), max_ejection_percent=-1), "bad outlier-detection settings"),
    (lambda: OutlierDetector(Clock(), max_ejection_percent=100.5), "bad outlier-detection settings"),
    (lambda: PowerOfChoices(np.random.default_rng(0), choices=0), "choices must be at least 1"),
    (lambda: BreakerConfig(window_type="sliding"), "window_type must be 'count' or 'time'"),
    (lambda: BreakerConfig(failure_rate_threshold=0), "rate thresholds are percentages in (0, 100]"),
    (lambda: BreakerConfig(failure_rate_threshold=100.1), "rate thresholds are percentages in (0, 100]"),
    (lambda: BreakerConfig(slow_call_rate_threshold=0), "rate thresholds are percentages in (0, 100]"),
    (lambda: BreakerConfig(slow_call_rate_threshold=100.1), "rate thresholds are percentages in (0, 100]"),
    (lambda: BreakerConfig(window_size=0),
     "window_size, minimum_calls and permitted_in_half_open must be at least 1"),
    (lambda: BreakerConfig(minimum_calls=0),
     "window_size, minimum_calls and permitted_in_half_open must be at least 1"),
    (lambda: BreakerConfig(permitted_in_half_open=0),
     "window_size, minimum_calls and permitted_in_half_open must be at least 1"),
    (lambda: BreakerConfig(wait_in_open=-0.001), "wait_in_open must be >= 0 and slow_call_duration > 0"),
    (lambda: BreakerConfig(slow_call_duration=0), "wait_in_open must be >= 0 and slow_call_duration > 0"),
])
def test_a_setting_past_its_bound_is_refused_with_its_message(make, message):
    with refused(message):
        make()


def test_every_setting_exactly_at_its_bound_is_accepted():
    rng = np.random.default_rng(0)
    TokenBucket(0.001, 1, Clock())
    SlidingWindow(1, 0.001, Clock())
    Bulkhead(1, max_wait=0.0)
    Backoff(rng, base=0.1, cap=0.1, multiplier=1.0)
    RetryBudget(max_tokens=1000, token_ratio=0.001)
    RetryBudget(max_tokens=0.001)
    OutlierDetector(Clock(), consecutive_errors=1, base_ejection_time=0.001, max_ejection_percent=0)
    OutlierDetector(Clock(), max_ejection_percent=100)
    PowerOfChoices(rng, choices=1)
    BreakerConfig(failure_rate_threshold=100, slow_call_rate_threshold=100, window_size=1, minimum_calls=1,
                  permitted_in_half_open=1, wait_in_open=0, slow_call_duration=0.001)
    BreakerConfig(failure_rate_threshold=0.001, slow_call_rate_threshold=0.001, window_type="time")


def test_the_documented_defaults_are_the_ones_their_sources_give():
    outlier = OutlierDetector(Clock())  # Envoy's outlier detection
    assert (outlier.consecutive_errors, outlier.base_ejection_time, outlier.max_ejection_time,
            outlier.max_ejection_percent) == (5, 30.0, 300.0, 10.0)
    budget = RetryBudget()  # gRPC's retryThrottling example
    assert (budget.max_tokens, budget.token_ratio, budget.tokens) == (10.0, 0.1, 10.0)
    backoff = Backoff(np.random.default_rng(0))
    assert (backoff.base, backoff.cap, backoff.multiplier, backoff.jitter) == (0.025, 1.0, 2.0, "full")
    config = BreakerConfig()  # Resilience4j's
    assert (config.failure_rate_threshold, config.slow_call_rate_threshold, config.slow_call_duration,
            config.window_type, config.window_size, config.minimum_calls, config.wait_in_open,
            config.permitted_in_half_open) == (50.0, 100.0, 60.0, "count", 100, 100, 60.0, 10)
    assert PowerOfChoices(np.random.default_rng(0)).choices == 2
    fallback = Fallback()
    assert (fallback.static, fallback.cache) == (None, False)


# -- limiters at exact boundaries -------------------------------------------------------------
def test_a_token_bucket_admits_with_exactly_enough_tokens_and_waits_exactly_its_timeout():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)
    assert [bucket.acquire(0), bucket.acquire(0), bucket.acquire(0)] == [0.0, 0.0, None]
    assert bucket.acquire(timeout=0.5) == 0.5  # a wait exactly as long as allowed is allowed
    assert bucket.acquire(timeout=0.999) is None  # the next token is 1 s away now
    clock.now = 1.0  # two tokens refilled: the reserved one is paid back, one is left
    assert bucket.acquire(timeout=0) == 0.0
    assert bucket.acquire(timeout=0.499) is None and bucket.acquire(timeout=0.5) == 0.5
    assert (bucket.admitted, bucket.rejected) == (5, 3)
    clock.now = 100.0
    assert bucket.available == 2  # refilled to its cap, not beyond


def test_a_sliding_window_forgets_an_admission_exactly_one_window_later():
    clock = Clock()
    window = SlidingWindow(limit=2, window=1.0, clock=clock)
    assert [window.acquire(0), window.acquire(0), window.acquire(0)] == [0.0, 0.0, None]
    clock.now = 0.999
    assert window.acquire(0) is None
    assert window.acquire(timeout=0.001) == pytest.approx(0.001)  # waits exactly to the edge
    clock.now = 2.0  # both first admissions are exactly one window old: gone
    assert window.acquire(0) == 0.0
    assert (window.admitted, window.rejected) == (4, 2)


def test_a_bulkheads_line_holds_exactly_max_queue_and_counts_what_it_turns_away():
    bulkhead = Bulkhead(1, max_wait=1.0, max_queue=2)
    assert bulkhead.try_enter() and not bulkhead.try_enter()
    first, second = bulkhead.enqueue("a"), bulkhead.enqueue("b")
    assert bulkhead.enqueue("c") is None and bulkhead.rejected == 1
    assert (first.payload, first.admitted, first.cancelled) == ("a", False, False)
    bulkhead.cancel(first)
    assert first.cancelled and bulkhead.rejected == 2 and bulkhead.waiting == 1
    assert bulkhead.leave() is second and second.admitted and bulkhead.active == 1
    bulkhead.cancel(second)  # admitted before it gave up: its place is given back
    assert bulkhead.active == 0 and bulkhead.waiting == 0
    assert Bulkhead(1).enqueue() is None  # no waiting allowed: rejected at once


# -- breakers ------------------------------------------------------------------------------------
def _breaker(clock, **settings) -> CircuitBreaker:
    config = BreakerConfig(window_size=4, minimum_calls=4, wait_in_open=1.0, permitted_in_half_open=2,
                           slow_call_duration=0.5, **settings)
    return CircuitBreaker("payments", config, clock)


def test_a_breaker_opens_at_exactly_its_failure_rate_and_names_itself_when_it_refuses():
    clock = Clock()
    breaker = _breaker(clock)
    for ok in (True, True, False):
        breaker.on_success(0.1) if ok else breaker.on_error(0.1)
    assert breaker.state == State.CLOSED and breaker.metrics()["failure_rate"] == -1.0  # 3 < minimum
    breaker.on_error(0.1)  # 2 failures in 4 calls: exactly 50%
    assert breaker.state == State.OPEN
    words = "circuit breaker 'payments' is open and does not permit calls"
    with pytest.raises(CallNotPermitted, match=f"^{re.escape(words)}$") as no:
        breaker.acquire()
    assert (no.value.breaker, no.value.state) == ("payments", State.OPEN)
    assert breaker.metrics()["rejected"] == 1
    assert [t.breaker for t in breaker.transitions] == ["payments"]


def test_a_call_exactly_as_long_as_slow_call_duration_is_slow():
    clock = Clock()
    breaker = _breaker(clock, slow_call_rate_threshold=50)
    for duration in (0.1, 0.5, 0.499, 0.5):
        breaker.on_success(duration)
    assert breaker.state == State.OPEN and breaker.metrics()["slow_call_rate"] == 50.0


def test_a_full_count_window_forgets_the_oldest_slow_call_and_failure():
    clock = Clock()
    breaker = _breaker(clock, slow_call_rate_threshold=60, failure_rate_threshold=60)
    breaker.on_error(0.6)  # a slow failure
    for _ in range(3):
        breaker.on_success(0.1)
    assert breaker.metrics() == {"calls": 4, "failure_rate": 25.0, "slow_call_rate": 25.0, "rejected": 0}
    breaker.on_success(0.1)  # pushes the slow failure out
    assert breaker.metrics() == {"calls": 4, "failure_rate": 0.0, "slow_call_rate": 0.0, "rejected": 0}


def test_a_time_window_keeps_exactly_its_seconds():
    clock = Clock()
    config = BreakerConfig(window_type="time", window_size=2, minimum_calls=1, failure_rate_threshold=100,
                           slow_call_duration=0.5)
    breaker = CircuitBreaker("t", config, clock)
    breaker.on_success(0.1)
    clock.now = 0.5
    breaker.on_success(0.1)  # the same second
    assert breaker.metrics()["calls"] == 2
    clock.now = 1.9
    breaker.on_success(0.1)
    assert breaker.metrics()["calls"] == 3
    clock.now = 2.0  # second 0 has left a 2-second window
    assert breaker.metrics() == {"calls": 1, "failure_rate": 0.0, "slow_call_rate": 0.0, "rejected": 0}


def test_half_open_permits_are_given_back_but_never_beyond_the_configured_number():
    clock = Clock()
    breaker = _breaker(clock)
    breaker.transition_to(State.OPEN)
    clock.now = 1.0  # exactly wait_in_open later
    assert breaker.try_acquire() and breaker.state == State.HALF_OPEN
    for _ in range(3):
        breaker.release()
    assert breaker.try_acquire() and breaker.try_acquire() and not breaker.try_acquire()


# -- the rest ----------------------------------------------------------------------------------
def test_a_retry_budget_never_goes_below_zero_and_counts_denials():
    budget = RetryBudget(max_tokens=2, token_ratio=0.5)
    for _ in range(5):
        budget.on_failure()
    assert budget.tokens == 0.0
    assert [budget.allow_retry() for _ in range(3)] == [False, False, False] and budget.denied == 3
    for _ in range(10):
        budget.on_success()
    assert budget.tokens == 2


def test_equal_jitter_stays_in_the_upper_half_of_its_ceiling():
    backoff = Backoff(np.random.default_rng(1), base=0.1, cap=10.0, jitter="equal")
    delays = [backoff.delay(3) for _ in range(2000)]  # ceiling 0.1 * 2**2 = 0.4
    assert min(delays) >= 0.2 and max(delays) <= 0.4 and max(delays) > 0.39


def test_a_fallback_cache_keeps_exactly_max_entries_dropping_the_least_recent():
    fallback = Fallback(cache=True, max_entries=2)
    for request, answer in (("a", 1), ("b", 2), ("a", 3), ("c", 4)):
        fallback.remember(request, answer)
    assert fallback.respond("a", "open") == 3 and fallback.respond("c", "open") == 4
    with pytest.raises(NoFallback, match=r"^limited$"):
        fallback.respond("b", "limited")  # evicted: the least recently written
    assert fallback.used == {"open": 2}


def test_an_outliers_streak_starts_again_after_ejection_and_it_is_not_ejected_twice():
    clock = Clock()
    detector = OutlierDetector(clock, consecutive_errors=2, base_ejection_time=1.0, max_ejection_percent=100)
    assert detector.on_result("a", ok=True, pool_size=2) is False
    assert [detector.on_result("a", False, 2), detector.on_result("a", False, 2)] == [False, True]
    clock.now = 1.0  # exactly the ejection time: back in
    assert not detector.is_ejected("a")
    assert detector.on_result("a", False, 2) is False  # the streak began again at the ejection
    assert detector.on_result("a", False, 2) is True and detector.ejections[-1] == (1.0, "a", 2.0)
    assert [detector.on_result("a", False, 2) for _ in range(3)] == [False] * 3  # out already
    assert len(detector.ejections) == 2


@dataclass(frozen=True)
class Node:
    name: str
    weight: float = 1


def test_power_of_choices_compares_load_per_unit_of_weight():
    rng = np.random.default_rng(0)
    p2c = PowerOfChoices(rng)
    big, small = Node("big", weight=3), Node("small", weight=1)
    for _ in range(2):
        p2c.on_start(big)
    p2c.on_start(small)  # big: 2 calls / weight 3 < small: 1 call / weight 1
    assert {p2c.pick([big, small]) for _ in range(20)} == {big}
    p2c.on_start(big)
    p2c.on_start(big)  # 4/3 > 1/1
    assert {p2c.pick([big, small]) for _ in range(20)} == {small}
    zero = Node("zero", weight=0)  # no division by zero: an idle one costs 0, a busy one a great deal
    assert {p2c.pick([zero, small]) for _ in range(10)} == {zero}
    p2c.on_start(zero)
    assert {p2c.pick([zero, small]) for _ in range(10)} == {small}


def test_power_of_choices_picks_two_different_instances_and_the_less_loaded_on_a_tie_first():
    p2c = PowerOfChoices(np.random.default_rng(3))
    pool = [Node(f"n{i}") for i in range(5)]
    busy = pool[:4]
    for node in busy:
        p2c.on_start(node)
    picks = [p2c.pick(pool) for _ in range(400)]
    # n4 is idle: it wins whenever it is one of the two sampled, which is 2/5 of the time
    assert 0.3 < picks.count(pool[4]) / 400 < 0.5
    for node in busy:
        p2c.on_end(node, 0.1, True)
        p2c.on_end(node, 0.1, True)  # a second end never goes below zero
    assert p2c.active == {}


def test_an_empty_pool_is_a_lookup_error_with_its_message():
    with pytest.raises(LookupError, match=r"^no instances to pick from$"):
        RoundRobin().pick([])


def test_a_deadline_says_how_long_ago_it_passed():
    clock = Clock()
    deadline = Deadline.after(1.0, clock)
    assert deadline.limit(5.0) == 1.0 and deadline.limit(0.5) == 0.5 and deadline.limit(None) == 1.0
    assert Deadline.after(None, clock).limit(0.5) == 0.5
    clock.now = 1.25
    with pytest.raises(DeadlineExceeded, match=r"^deadline passed 0\.250 s ago$"):
        deadline.check()


@pytest.mark.parametrize(("changes", "message"), [
    ({"balancer": "fastest"}, "balancer must be one of " + str(sorted(BALANCERS))),
    ({"choice_count": 0}, "choice_count must be at least 1"),
    ({"jitter": "some"}, "jitter must be one of ('none', 'full', 'equal', 'decorrelated')"),
    ({"rate_limiter": "leaky"}, "rate_limiter must be 'token_bucket' or 'sliding_window'"),
    ({"breaker_window_type": "sliding"}, "breaker_window_type must be 'count' or 'time'"),
    ({"timeout": -1, "bulkhead": -2}, "settings must not be negative: bulkhead, timeout"),
    ({"breaker_failure_rate": 100.5}, "rates and percentages must be at most 100"),
    ({"breaker_slow_rate": 101}, "rates and percentages must be at most 100"),
    ({"outlier_max_percent": 100.01}, "rates and percentages must be at most 100"),
    ({"canary_percent": 100.5}, "canary_percent must be in [0, 100]"),
])
def test_policy_settings_refuse_each_bad_value_with_its_message(changes, message):
    with refused(message):
        PolicySettings(**changes)


def test_policy_settings_accept_every_value_at_its_bound():
    settings = PolicySettings(choice_count=1, rate_limiter="sliding_window", breaker_window_type="time",
                              breaker_failure_rate=100, breaker_slow_rate=100, outlier_max_percent=100,
                              canary_version="v2", canary_percent=100, timeout=0)
    assert settings.release() == Release("", "v2", 100.0, False)


@dataclass(frozen=True)
class Versioned:
    name: str
    version: str


V1, V2, V2B = Versioned("a", "v1"), Versioned("b", "v2"), Versioned("c", "v2")


def test_a_canary_takes_draws_strictly_below_its_percent():
    canary = Release(canary="v2", canary_percent=25)
    assert route([V1, V2], canary, draw=0.2499) == [V2]
    assert route([V1, V2], canary, draw=0.25) == [V1]  # exactly at the share: the others
    assert route([V1, V2, V2B], Release(canary="v2", canary_percent=100), draw=0.9999) == [V2, V2B]
    assert route([V2, V2B], canary, draw=0.9) == [V2, V2B]  # no others: the canary serves
    assert route([V1], canary, draw=0.0) == [V1]  # no canary instance: the others serve


def test_a_sticky_key_lands_in_a_fixed_hundredth():
    """Pinned: a change of hash would move users between versions in the middle of a canary."""
    assert (key_bucket("user-1"), key_bucket("user-2"), key_bucket("")) == (37.68, 78.64, 98.76)


def test_describe_says_where_calls_go():
    assert describe(Release()) == "every version serves"
    assert describe(Release(version="v2")) == "all calls to v2"
    assert describe(Release(version="v2", canary="v3")) == "all calls to v2 (the canary v3 is overridden)"
    assert describe(Release(canary="v2", canary_percent=12.5)) == (
        "12.5% of calls to v2, the rest to the other versions")
    assert describe(Release(canary="v2", canary_percent=5, sticky=True)) == (
        "5% of request keys to v2, the rest to the other versions")


def test_version_share_counts_each_version():
    assert version_share(["v2", "v1", "v1", "v1"]) == {"v1": 0.75, "v2": 0.25}
    assert version_share([]) == {}


def test_every_setting_reaches_the_policy_object_it_configures():
    clock = Clock()
    heard = []
    settings = PolicySettings(
        breaker_failure_rate=40, breaker_slow_rate=70, breaker_slow_call=0.3, breaker_window_type="time",
        breaker_window=7, breaker_minimum_calls=3, breaker_wait=2.5, breaker_half_open_calls=4,
        rate_limit=3.4, rate_limiter="sliding_window", bulkhead=5, bulkhead_wait=0.2, budget_tokens=6,
        budget_ratio=0.3, outlier_errors=2, outlier_ejection=400, outlier_max_percent=30,
        max_attempts=3, retry_on=" unavailable, ,deadline_exceeded", per_try_timeout=0.1,
        backoff_base=0.5, backoff_cap=0.2, jitter="equal")
    state = PolicyState(settings, "orders->payments", clock, on_transition=heard.append)
    config = state.breaker.config
    assert (config.failure_rate_threshold, config.slow_call_rate_threshold, config.slow_call_duration,
            config.window_type, config.window_size, config.minimum_calls, config.wait_in_open,
            config.permitted_in_half_open) == (40, 70, 0.3, "time", 7, 3, 2.5, 4)
    assert config.is_failure("UNAVAILABLE") and not config.is_failure("INVALID_ARGUMENT")
    assert state.breaker.name == "orders->payments"
    state.breaker.transition_to(State.OPEN)
    assert [t.target for t in heard] == [State.OPEN]
    assert isinstance(state.limiter, SlidingWindow)
    assert (state.limiter.limit, state.limiter.window) == (3, 1.0)
    assert (state.bulkhead.max_concurrent, state.bulkhead.max_wait) == (5, 0.2)
    assert (state.budget.max_tokens, state.budget.token_ratio) == (6, 0.3)
    outlier = state.outlier
    assert (outlier.consecutive_errors, outlier.base_ejection_time, outlier.max_ejection_time,
            outlier.max_ejection_percent) == (2, 400, 400, 30)
    retry = state.retry
    assert (retry.max_attempts, retry.retryable, retry.per_try_timeout) == (
        3, {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, 0.1)
    assert (retry.backoff_base, retry.backoff_cap, retry.jitter) == (0.5, 0.5, "equal")  # cap >= base
    assert retry.budget is state.budget
    assert not state.direct
    half = PolicyState(PolicySettings(rate_limit=0.4, rate_limiter="sliding_window"), "x", clock)
    assert half.limiter.limit == 1  # at least one call a second
    bucket = PolicyState(PolicySettings(rate_limit=2, rate_burst=0.5), "x", clock).limiter
    assert isinstance(bucket, TokenBucket) and (bucket.rate, bucket.burst) == (2, 1.0)
    assert PolicyState(PolicySettings(breaker_failure_rate=1), "x", clock).breaker is not None
    plain = PolicyState(PolicySettings(), "x", clock)
    assert (plain.breaker, plain.limiter, plain.bulkhead, plain.budget, plain.outlier) == (None,) * 5
    assert plain.direct and plain.retry.per_try_timeout is None


def test_a_settings_change_rebuilds_only_the_pieces_it_touches():
    clock = Clock()
    state = PolicyState(PolicySettings(breaker_failure_rate=50, rate_limit=5), "x", clock)
    breaker, limiter = state.breaker, state.limiter
    state.update(state.settings.replace(rate_limit=6))
    assert state.breaker is breaker and state.limiter is not limiter and state.limiter.rate == 6
    state.update(state.settings.replace(breaker_wait=9))
    assert state.breaker is not breaker and state.breaker.config.wait_in_open == 9
    assert state.settings.replace() == state.settings


def test_each_policy_gets_its_own_repeatable_random_stream():
    first = rng_for(7, "client", "greeter").random(3)
    assert (rng_for(7, "client", "greeter").random(3) == first).all()
    assert not (rng_for(7, "client", "orders").random(3) == first).any()
    assert not (rng_for(8, "client", "greeter").random(3) == first).any()
    assert rng_for(7, "client", "greeter").random() == pytest.approx(0.50224, abs=1e-5)  # pinned: runs repeat


@dataclass(frozen=True)
class Member:
    id: str
    weight: float = 1


def test_a_ring_gives_each_member_keys_in_proportion_to_its_weight():
    ring = BALANCERS["ring_hash"](None, None, 2)
    heavy, light, tiny = Member("heavy", 3), Member("light", 1), Member("tiny", 0.001)
    owners = [ring.pick([heavy, light, tiny], request=f"user-{n}").id for n in range(4000)]
    assert 2.4 < owners.count("heavy") / owners.count("light") < 3.6
    assert 0 < owners.count("tiny") < 100  # one point on the ring at least, but only one
    same_name = [Member("x"), Member("y")]  # members are told apart by their id
    assert {ring.pick(same_name, request=f"k{n}").id for n in range(50)} == {"x", "y"}


def test_a_call_that_ends_leaves_no_count_behind():
    p2c = PowerOfChoices(np.random.default_rng(0))
    node = Node("n")
    p2c.on_start(node)
    p2c.on_start(node)
    p2c.on_end(node, 0.1, True)
    assert p2c.active == {node: 1}
    p2c.on_end(node, 0.1, True)
    assert p2c.active == {}
    p2c.on_end(Node("stranger"), 0.1, False)  # an end never started changes nothing
    assert p2c.active == {}


def test_peak_ewma_jumps_to_a_slower_call_and_decays_towards_faster_ones():
    clock = Clock()
    ewma = BALANCERS["peak_ewma"](np.random.default_rng(0), clock, 2)
    node = Node("n")
    assert ewma.cost(node) == 0.01  # an unknown instance starts cheap, so that it is tried
    ewma.on_start(node)
    ewma.on_end(node, 0.2, True)
    assert ewma.ewma[node] == 0.2 and ewma.active == {}
    clock.now = 10.0  # one decay constant later a fast call pulls it down by 1 - 1/e
    ewma.on_end(node, 0.0, True)
    assert ewma.ewma[node] == pytest.approx(0.2 * np.exp(-1))
    ewma.on_start(node)
    ewma.on_start(node)
    assert ewma.cost(node) == pytest.approx(0.2 * np.exp(-1) * 3)  # EWMA x (in flight + 1)
    ewma.on_end(node, 0.5, True)  # slower than the average: taken at once
    assert ewma.ewma[node] == 0.5


def test_a_count_window_forgets_exactly_what_leaves_it():
    clock = Clock()
    breaker = _breaker(clock, slow_call_rate_threshold=100, failure_rate_threshold=100)
    for duration in (0.1, 0.6, 0.1, 0.1):  # the second call is slow
        breaker.on_success(duration)
    breaker.on_success(0.1)  # pushes out the first, fast call: the slow one stays
    assert breaker.metrics()["slow_call_rate"] == 25.0


def test_a_time_window_counts_every_slow_call_of_a_second():
    clock = Clock()
    config = BreakerConfig(window_type="time", window_size=5, minimum_calls=5, slow_call_duration=0.5)
    breaker = CircuitBreaker("t", config, clock)
    for duration in (0.6, 0.7, 0.1, 0.1):
        breaker.on_success(duration)
    assert breaker.metrics() == {"calls": 4, "failure_rate": -1.0, "slow_call_rate": -1.0, "rejected": 0}
    for _ in range(3):
        breaker.on_error(0.1)  # 3 failures: 3/7, but a time window needs minimum_calls, not the window size
    assert breaker.state == State.CLOSED
    breaker.on_success(0.8)
    assert breaker.metrics()["slow_call_rate"] == 37.5 and breaker.state == State.CLOSED


def test_a_breaker_stays_closed_just_below_its_threshold():
    clock = Clock()
    config = BreakerConfig(window_size=3, minimum_calls=3, failure_rate_threshold=33.5)
    breaker = CircuitBreaker("t", config, clock)
    for ok in (True, True, False):  # 33.3% failed
        breaker.on_success(0.1) if ok else breaker.on_error(0.1)
    assert breaker.state == State.CLOSED and breaker.metrics()["failure_rate"] == pytest.approx(100 / 3)


def test_a_bulkhead_counts_every_call_it_turns_away():
    bulkhead = Bulkhead(1, max_wait=1.0, max_queue=0)
    bulkhead.try_enter()
    assert bulkhead.enqueue() is None and bulkhead.enqueue() is None and bulkhead.rejected == 2


def test_a_sliding_window_admission_leaves_it_exactly_one_window_later():
    clock = Clock()
    window = SlidingWindow(limit=1, window=1.0, clock=clock)
    assert window.acquire(0) == 0.0
    clock.now = 1.0
    assert window.acquire(0) == 0.0  # the admission at 0 is exactly one window old: gone


def test_secrets_and_retry_settings_are_refused_with_their_words():
    with refused("an HS256 secret should be at least 32 characters"):
        Tokens("x" * 31)
    Tokens("x" * 32)
    with refused("max_attempts must be at least 1"):
        RetryPolicy(max_attempts=0)
    with refused("jitter must be one of ('none', 'full', 'equal', 'decorrelated')"):
        RetryPolicy(jitter="some")
    backoff = RetryPolicy(backoff_base=0.1, backoff_cap=5.0, jitter="none").backoff(np.random.default_rng(0))
    assert (backoff.base, backoff.cap, backoff.jitter) == (0.1, 5.0, "none")
    cache = Fallback(cache=True)  # keeps 1,000 answers by default
    for n in range(1001):
        cache.remember(n, n)
    with pytest.raises(NoFallback):
        cache.respond(0, "open")
    assert cache.respond(1, "open") == 1


def test_outlier_ejections_are_capped_at_five_minutes_unless_the_base_is_longer():
    clock = Clock()
    short = PolicyState(PolicySettings(outlier_errors=1, outlier_ejection=30), "x", clock).outlier
    assert (short.base_ejection_time, short.max_ejection_time) == (30, 300.0)
    none = PolicyState(PolicySettings(rate_limiter="sliding_window", rate_limit=0), "x", clock)
    assert none.limiter is None
