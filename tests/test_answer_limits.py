"""Runaway answers fail the check that runs them, and everything is as before afterwards."""

from __future__ import annotations

import contextlib
import resource
import signal
import threading
import time

import pytest

from lessons.answer_limits import MIB, within


def endless_loop():
    n = 0
    while True:
        n += 1


def test_a_good_answer_and_its_own_failures_pass_through_unchanged():
    with within(seconds=1):
        value = sum(range(1000))
    assert value == 499500
    with pytest.raises(AssertionError, match=r"^varint"), within(seconds=1):
        raise AssertionError("varint(0) should be b'\\x00'")


@pytest.mark.parametrize("answer", [endless_loop, lambda: time.sleep(3600), lambda: threading.Event().wait()],
                         ids=["loop", "sleep", "wait"])
def test_an_answer_that_never_finishes_fails_within_its_time(answer):
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"did not finish within 0\.3 s"), within(seconds=0.3):
        answer()
    assert time.monotonic() - started < 2


def test_an_outer_interval_timer_is_kept():
    """pytest-timeout (and others) time tests with the same SIGALRM timer."""
    def outer(_signum, _frame):
        raise TimeoutError("the outer timer")

    previous = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with pytest.raises(AssertionError, match="did not finish"), within(seconds=0.2):
            endless_loop()
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 29 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(TimeoutError, match="the outer timer"), within(seconds=5):
            endless_loop()
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_an_endless_loop_outside_the_main_thread_is_stopped_too():
    outcome = []

    def check():
        try:
            with within(seconds=0.3):
                endless_loop()
        except AssertionError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=check)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert outcome and "did not finish within 0.3 s" in outcome[0]


def test_an_answer_can_not_swallow_its_timeout():
    def stubborn():
        while True:
            with contextlib.suppress(Exception):
                endless_loop()

    with pytest.raises(AssertionError, match="did not finish"), within(seconds=0.2):
        stubborn()


def test_a_huge_allocation_fails_and_the_cap_is_lifted_after():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(AssertionError, match="more than 64 MiB"), within(seconds=5, memory=64 * MIB):
        bytearray(512 * MIB)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytearray(128 * MIB)) == 128 * MIB


def test_a_thread_left_running_fails_the_check_by_name():
    stop = threading.Event()
    try:
        left = r"left 1 thread\(s\) running \(spinner\)"
        with pytest.raises(AssertionError, match=left), within(seconds=1):
            threading.Thread(target=stop.wait, name="spinner", daemon=True).start()
    finally:
        stop.set()


def test_a_limit_must_be_positive():
    with pytest.raises(ValueError, match="positive"), within(seconds=0):
        pass


def test_running_out_of_memory_without_a_cap_still_reads_as_a_failed_check():
    def greedy():
        raise MemoryError

    with pytest.raises(AssertionError, match="more memory than there is"), within(seconds=1, memory=None):
        greedy()
