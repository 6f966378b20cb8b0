"""Unit tests of the pure policies on a fake clock and seeded generators: nothing sleeps."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from mesh.policies import (
    Backoff,
    Bulkhead,
    Deadline,
    DeadlineExceeded,
    Fallback,
    LeastOutstanding,
    NoFallback,
    OutlierDetector,
    PeakEwma,
    PowerOfChoices,
    Random,
    RetryBudget,
    RetryPolicy,
    RingHash,
    RoundRobin,
    SlidingWindow,
    TokenBucket,
    WeightedRoundRobin,
    make_balancer,
)

from .policy_helpers import FakeClock, Node

A, B, C = Node("a", 5), Node("b", 1), Node("c", 1)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- balancers ------------------------------------------------------------------------------------
def test_round_robin_takes_instances_in_turn():
    rr = RoundRobin()
    assert [rr.pick("abc") for _ in range(7)] == list("abcabca")
    with pytest.raises(LookupError):
        rr.pick([])


def test_random_is_uniform_and_seeded():
    balancer = Random(rng(1))
    picks = Counter(balancer.pick([A, B, C]).id for _ in range(3000))
    assert all(900 < n < 1100 for n in picks.values())
    first, second = Random(rng(5)), Random(rng(5))
    assert [first.pick("abcdef") for _ in range(20)] == [second.pick("abcdef") for _ in range(20)]


def test_smooth_weighted_round_robin_interleaves_as_nginx():
    wrr = WeightedRoundRobin()
    assert "".join(wrr.pick([A, B, C]).id for _ in range(7)) == "aabacaa"


def test_least_outstanding_avoids_busy_instances():
    lo = LeastOutstanding(rng())
    lo.on_start(A)
    lo.on_start(A)
    lo.on_start(B)
    assert lo.pick([A, B, C]) == C
    lo.on_end(A, 0.1, True)
    lo.on_end(A, 0.1, True)
    assert lo.pick([A, B]) == A


def test_p2c_never_picks_the_most_loaded_of_two_and_honours_choice_count():
    p2c = PowerOfChoices(rng(2), choices=2)
    for _ in range(5):
        p2c.on_start(B)
    assert all(p2c.pick([A, B]) == A for _ in range(50))
    everyone = PowerOfChoices(rng(3), choices=3)
    for node in (A, B):
        everyone.on_start(node)
    assert all(everyone.pick([A, B, C]) == C for _ in range(20))


def test_p2c_breaks_ties_at_random_even_between_two():
    for choices in (2, 3):
        p2c = PowerOfChoices(rng(4), choices=choices)
        picks = Counter(p2c.pick([A, B]).id for _ in range(2000))
        assert abs(picks["a"] - 1000) <= 4 * math.sqrt(500), (choices, picks)  # binomial, four sigmas


def test_p2c_samples_distinct_instances():
    """Of four instances, one idle: three distinct samples miss it a quarter of the time (JSQ(3));
    three draws with replacement would miss it (3/4)^3 = 42% of the time."""
    p2c = PowerOfChoices(rng(5), choices=3)
    for node in (A, B, C):
        p2c.on_start(node)
    idle = Node("d")
    share = sum(p2c.pick([A, B, C, idle]) == idle for _ in range(4000)) / 4000
    assert share == pytest.approx(0.75, abs=4 * math.sqrt(0.75 * 0.25 / 4000))


def test_the_number_of_choices_comes_from_the_policy():
    from mesh.policies import PolicySettings

    assert make_balancer("p2c", rng(), FakeClock(), PolicySettings(choice_count=3).choice_count).choices == 3
    with pytest.raises(ValueError, match="choice_count"):
        PolicySettings(choice_count=0)


def test_ring_hash_is_sticky_and_moves_only_the_keys_of_a_leaving_instance():
    ring = RingHash(key=lambda request: request, replicas=50)
    nodes = [Node(f"n{i}") for i in range(4)]
    before = {k: ring.pick(nodes, f"user-{k}") for k in range(400)}
    assert before == {k: ring.pick(nodes, f"user-{k}") for k in range(400)}
    remaining = [n for n in nodes if n.id != "n2"]
    after = {k: ring.pick(remaining, f"user-{k}") for k in range(400)}
    moved = [k for k in before if before[k] != after[k]]
    assert moved and all(before[k].id == "n2" for k in moved)
    assert 50 < sum(1 for v in before.values() if v.id == "n2") < 150


def test_peak_ewma_jumps_to_peaks_and_decays_towards_faster_calls():
    clock = FakeClock()
    ewma = PeakEwma(rng(), clock, decay=10.0)
    ewma.on_start(A)
    ewma.on_end(A, 0.100, True)
    ewma.on_start(A)
    ewma.on_end(A, 0.500, True)  # a slower call: jump to it
    assert ewma.ewma[A] == 0.5
    clock.advance(10.0)
    ewma.on_start(A)
    ewma.on_end(A, 0.100, True)  # one time constant later, weight e^-1 on the old value
    assert ewma.ewma[A] == pytest.approx(0.5 * np.exp(-1) + 0.1 * (1 - np.exp(-1)))
    ewma.on_start(B)
    ewma.on_end(B, 0.010, True)
    assert all(ewma.pick([A, B]) == B for _ in range(20))


def test_make_balancer_by_name():
    assert isinstance(make_balancer("p2c", rng(), FakeClock()), PowerOfChoices)
    with pytest.raises(ValueError, match="unknown balancer"):
        make_balancer("fastest", rng(), FakeClock())


# -- rate limiters --------------------------------------------------------------------------------
def test_token_bucket_allows_a_burst_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, None]
    clock.advance(0.1)
    assert bucket.acquire() == 0.0 and bucket.acquire() is None
    assert (bucket.admitted, bucket.rejected) == (4, 2)


def test_token_bucket_can_wait_up_to_a_timeout_in_order():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    assert bucket.acquire(timeout=1.0) == 0.0
    assert bucket.acquire(timeout=1.0) == pytest.approx(0.1)
    assert bucket.acquire(timeout=1.0) == pytest.approx(0.2)  # behind the one already waiting
    assert bucket.acquire(timeout=0.25) is None  # would need 0.3 s


def test_sliding_window_limits_any_window():
    clock = FakeClock()
    window = SlidingWindow(limit=3, window=1.0, clock=clock)
    assert [window.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(0.5)
    assert window.acquire() is None
    assert window.acquire(timeout=0.5) == pytest.approx(0.5)  # reserved for t = 1.0
    clock.advance(0.5)  # the three from t = 0 leave; the waiter holds one of the slots
    assert [window.acquire(), window.acquire(), window.acquire()] == [0.0, 0.0, None]


# -- retry, backoff and budget --------------------------------------------------------------------
def test_exponential_backoff_without_jitter():
    backoff = Backoff(rng(), base=0.1, cap=1.0, multiplier=2.0, jitter="none")
    assert [backoff.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]


@pytest.mark.parametrize(("jitter", "low", "high"), [("full", 0.0, 1.0), ("equal", 0.5, 1.0)])
def test_full_and_equal_jitter_stay_in_their_ranges(jitter, low, high):
    backoff = Backoff(rng(4), base=0.1, cap=10.0, jitter=jitter)
    ceilings = [0.1 * 2 ** (n - 1) for n in range(1, 8)]
    for n, ceiling in enumerate(ceilings, start=1):
        delays = [backoff.delay(n) for _ in range(200)]
        assert low * ceiling <= min(delays) and max(delays) <= high * ceiling
        assert np.mean(delays) == pytest.approx((low + high) / 2 * ceiling, rel=0.15)


def test_decorrelated_jitter_follows_its_recurrence():
    backoff = Backoff(rng(6), base=0.1, cap=2.0, jitter="decorrelated")
    previous = 0.1
    for n in range(1, 50):
        delay = backoff.delay(n)
        assert 0.1 <= delay <= min(2.0, 3 * previous)
        previous = delay


def test_retry_budget_stops_retries_when_failures_dominate():
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    assert budget.allow_retry()
    for _ in range(5):
        budget.on_failure()
    assert budget.tokens == 5 and not budget.allow_retry()  # must be above half
    for _ in range(10):
        budget.on_success()
    assert budget.tokens == pytest.approx(6.0) and budget.allow_retry()
    assert budget.denied == 1


def test_retry_policy_decides_on_code_attempts_time_and_budget():
    policy = RetryPolicy(max_attempts=3, retryable={"UNAVAILABLE"})
    assert policy.should_retry("UNAVAILABLE", 1, 1.0)
    assert not policy.should_retry("INVALID_ARGUMENT", 1, 1.0)
    assert not policy.should_retry("UNAVAILABLE", 3, 1.0)
    assert not policy.should_retry("UNAVAILABLE", 1, 0.0)
    broke = RetryPolicy(budget=RetryBudget(max_tokens=2, token_ratio=0.1))
    broke.budget.on_failure()
    assert not broke.should_retry("UNAVAILABLE", 1, None)


# -- deadlines ------------------------------------------------------------------------------------
def test_deadline_limits_per_try_timeouts_and_expires():
    clock = FakeClock(10.0)
    deadline = Deadline.after(1.0, clock)
    assert deadline.limit(0.3) == 0.3
    clock.advance(0.8)
    assert deadline.limit(0.3) == pytest.approx(0.2)
    clock.advance(0.3)
    assert deadline.expired and deadline.timeout() == 0.0
    with pytest.raises(DeadlineExceeded):
        deadline.check()
    assert Deadline.after(None, clock).timeout() is None


# -- bulkhead -------------------------------------------------------------------------------------
def test_bulkhead_admits_up_to_its_limit_then_queues_in_order():
    bulkhead = Bulkhead(max_concurrent=2, max_wait=1.0)
    assert bulkhead.try_enter() and bulkhead.try_enter()
    assert not bulkhead.try_enter()
    first, second = bulkhead.enqueue("first"), bulkhead.enqueue("second")
    assert bulkhead.leave() is first and first.admitted
    bulkhead.cancel(second)  # it gave up waiting
    assert bulkhead.leave() is None and bulkhead.active == 1
    assert bulkhead.rejected == 1


def test_bulkhead_without_waiting_rejects_at_once():
    bulkhead = Bulkhead(max_concurrent=1)
    assert bulkhead.try_enter()
    assert bulkhead.enqueue() is None and bulkhead.rejected == 1


# -- outlier detection ----------------------------------------------------------------------------
def test_outlier_ejection_grows_with_repeats_and_is_capped():
    clock = FakeClock()
    detector = OutlierDetector(clock, consecutive_errors=3, base_ejection_time=10, max_ejection_time=25,
                               max_ejection_percent=50)
    pool = [A, B, C, Node("d")]
    for _ in range(2):
        assert not detector.on_result(A, False, len(pool))
    assert detector.on_result(A, False, len(pool))
    assert detector.available(pool) == [B, C, Node("d")]
    clock.advance(10)
    assert not detector.is_ejected(A)
    for _ in range(3):
        detector.on_result(A, False, len(pool))
    assert [seconds for _, _, seconds in detector.ejections] == [10, 20]
    clock.advance(20)
    for _ in range(3):
        detector.on_result(A, False, len(pool))
    assert detector.ejections[-1][2] == 25  # 30 capped at 25


def test_outlier_detection_respects_the_max_ejection_percent_but_ejects_at_least_one():
    clock = FakeClock()
    detector = OutlierDetector(clock, consecutive_errors=1, max_ejection_percent=10)
    pool = [A, B, C]
    assert detector.on_result(A, False, 3)  # 10 % of 3 rounds down to 0, but one is allowed
    assert not detector.on_result(B, False, 3)
    assert detector.available(pool) == [B, C]
    detector.on_result(B, True, 3)


def test_a_success_resets_the_error_streak():
    detector = OutlierDetector(FakeClock(), consecutive_errors=2)
    detector.on_result(A, False, 1)
    detector.on_result(A, True, 1)
    assert not detector.on_result(A, False, 1)


# -- fallback -------------------------------------------------------------------------------------
def test_fallback_prefers_the_cached_answer_then_the_static_one():
    fallback = Fallback(static="static", cache=True)
    fallback.remember("q1", "fresh answer")
    assert fallback.respond("q1", "breaker_open") == "fresh answer"
    assert fallback.respond("q2", "rate_limited") == "static"
    assert fallback.used == {"breaker_open": 1, "rate_limited": 1}
    with pytest.raises(NoFallback):
        Fallback().respond("q", "deadline")
