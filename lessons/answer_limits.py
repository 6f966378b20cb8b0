"""Run a learner's answer inside a graded check with limits, so a runaway answer fails the check
instead of taking the kernel with it.

``with within(seconds=2):`` around a test's body turns, for the code inside it:

- an endless loop or a wait that never ends into a failed check ("did not finish within 2 s");
  in the kernel's main thread an interval timer's signal interrupts even a blocking ``sleep`` or
  ``Event.wait``; in any other thread the timeout is raised asynchronously, at the answer's next
  Python instruction;
- a huge allocation into a failed check ("needed more than 1024 MiB of memory"): the process's
  address space is capped at what it uses now plus ``memory`` for the duration of the block;
- a thread the answer started and left running into a failed check naming the thread.

Why by hand: the grading libraries (otter, nbgrader) limit only a whole notebook's run, from
outside; a limit per check keeps the other questions' points and the learner's kernel alive.
What it cannot stop: one C call that never returns to Python (``sum(range(10**15))``) runs to its
end; the class grader's time limit per notebook (``tools.class_grades``) is the backstop there.
The memory cap is process-wide: keep it off (``memory=None``) around code that runs a live mesh.
"""

from __future__ import annotations

import ctypes
import resource
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["CHECK_MEMORY", "AnswerTookTooLong", "address_space", "threads_left", "within"]

MIB = 1 << 20
#: The memory a check gives an answer beyond what the process holds when it starts.
CHECK_MEMORY = 1024 * MIB


class AnswerTookTooLong(BaseException):
    """Raised inside the answer when its time is up (a BaseException, so that an answer's own
    ``except Exception`` cannot swallow it)."""


@contextmanager
def within(seconds: float = 2.0, memory: int | None = CHECK_MEMORY) -> Iterator[None]:
    """Fail the enclosing check, with a message a learner can act on, if the block runs longer
    than ``seconds``, allocates more than ``memory`` bytes, or leaves a thread running."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    before = set(threading.enumerate())
    try:
        with _memory_cap(memory), _time_limit(seconds):
            yield
    except AnswerTookTooLong:
        raise AssertionError(f"the answer did not finish within {seconds:g} s: an endless loop, or a "
                             "wait for something that never happens?") from None
    except MemoryError:
        limit = (f"more than {memory // MIB} MiB of memory (the limit of a check)" if memory
                 else "more memory than there is")
        raise AssertionError(f"the answer needed {limit}: is something growing without end?") from None
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    if left:
        raise AssertionError(threads_left(left))


def threads_left(names: list[str]) -> str:
    """What a check says of an answer that returned with threads of its own still running."""
    return (f"the answer left {len(names)} thread(s) running ({', '.join(names)}); "
            "an answer must finish its work before it returns")


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is threading.main_thread():
        yield from _interval_timer(seconds)
        return
    target = ctypes.c_ulong(threading.get_ident())
    timer = threading.Timer(seconds, ctypes.pythonapi.PyThreadState_SetAsyncExc,
                            (target, ctypes.py_object(AnswerTookTooLong)))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        # The timer may have fired just as the block ended: take back an exception not yet raised.
        ctypes.pythonapi.PyThreadState_SetAsyncExc(target, None)


def _interval_timer(seconds: float) -> Iterator[None]:
    """Raise :class:`AnswerTookTooLong` in the main thread after ``seconds``, by SIGALRM.

    Someone else's timer already running (pytest-timeout's, say) is kept: if it is due first, its
    handler runs when it is due; after the block it is set again to what is left of it.
    """
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    outer_first = 0 < outer_delay < seconds
    fired = []

    def expire(signum, frame):
        fired.append(signum)
        if outer_first and callable(outer_handler):
            outer_handler(signum, frame)
        raise AnswerTookTooLong

    started = time.monotonic()
    outer_handler = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, outer_delay if outer_first else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_delay > 0 and not (outer_first and fired):
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


@contextmanager
def _memory_cap(memory: int | None) -> Iterator[None]:
    if memory is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = address_space() + memory
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def address_space() -> int:
    """Return the bytes of address space this process holds now (``VmSize``)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * resource.getpagesize()
