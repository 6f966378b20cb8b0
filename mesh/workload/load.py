"""Load generators: open loop (Poisson arrivals at a rate) and closed loop (N users), in the background.

Both run for a bounded ``duration`` and stop by themselves (or at :meth:`LoadRun.stop`), and keep
one :class:`CallRecord` per request: when it started, how long it took, how it ended, which
instance answered, whether a fallback answered.

- **Open loop** — arrivals do not wait for answers, as real users do not: the gaps between them are
  exponential (a Poisson process) from a seeded ``numpy.random.Generator``. At most
  ``max_in_flight`` calls run at once; an arrival beyond that is recorded as ``SHED`` (not sent),
  so an overloaded system shows up instead of silently slowing the generator down.
- **Closed loop** — ``users`` each send a request, wait for the answer, think (exponential with mean
  ``think_time``), and send the next: the offered load falls as latency rises.
- **Steady** (:class:`SteadyLoad`) — open loop with no set end and a rate that can change while it
  runs, keeping only its recent records: what a console's "load" controls drive.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from .traffic import CallRecord, observe

Request = Any | Callable[[int], Any]


class LoadRun:
    """A running (or finished) load run; :meth:`wait` returns its records."""

    def __init__(self, kind: str, duration: float, progress: bool):
        self.kind = kind
        self.duration = duration
        self.records: list[CallRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._progress = progress
        self.started = time.perf_counter()
        self.started_monotonic = time.monotonic()  # the clock breakers and faults record on

    def _add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def _call(self, method, request, timeout: float) -> None:
        self._add(observe(method, request, timeout, time.perf_counter() - self.started))

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> list[CallRecord]:
        """Wait for the run to end (it ends by itself after its duration); return the records."""
        if self._progress:
            self._show_progress()
        self._done.wait(timeout)
        for thread in self._threads:
            thread.join()
        return sorted(self.records, key=lambda r: r.start)

    def _show_progress(self) -> None:
        from tqdm.auto import tqdm

        with tqdm(total=round(self.duration), desc=f"{self.kind} load", unit="s") as bar:
            while not self._done.wait(1.0):
                bar.update(min(1, bar.total - bar.n))
            bar.update(bar.total - bar.n)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def summary(self) -> dict[str, Any]:
        """Requests, throughput, goodput, status counts and latency percentiles of the run."""
        records = list(self.records)
        sent = [r for r in records if r.code != "SHED"]
        ok = [r.latency for r in sent if r.ok]
        elapsed = max((r.start + r.latency for r in sent), default=0.0) or 1e-9
        return {
            "requests": len(records), "sent": len(sent), "ok": len(ok),
            "throughput": len(sent) / elapsed, "goodput": len(ok) / elapsed,
            "by_status": dict(Counter(r.code for r in records)),
            "fallbacks": sum(1 for r in records if r.fallback),
            "p50": float(np.percentile(ok, 50)) if ok else float("nan"),
            "p99": float(np.percentile(ok, 99)) if ok else float("nan"),
        }

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.records]


def _request(request: Request, n: int):
    return request(n) if callable(request) else request


def open_loop(method, request: Request, rate: float, duration: float, rng: np.random.Generator,
              timeout: float = 2.0, max_in_flight: int = 64, progress: bool = False) -> LoadRun:
    """Send Poisson arrivals at ``rate``/s for ``duration`` s; return the run at once."""
    if rate <= 0 or duration <= 0 or max_in_flight < 1:
        raise ValueError("rate and duration must be > 0 and max_in_flight >= 1")
    run = LoadRun("open-loop", duration, progress)
    slots = threading.Semaphore(max_in_flight)
    pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load-open")

    def send(n: int) -> None:
        try:
            run._call(method, _request(request, n), timeout)
        finally:
            slots.release()

    def schedule() -> None:
        n, due = 0, 0.0
        try:
            while True:
                due += float(rng.exponential(1.0 / rate))
                if due >= duration or run._stop.wait(max(0.0, run.started + due - time.perf_counter())):
                    break
                if slots.acquire(blocking=False):
                    pool.submit(send, n)
                else:
                    run._add(CallRecord(due, 0.0, "SHED", ""))
                n += 1
        finally:
            pool.shutdown(wait=True)
            run._done.set()

    thread = threading.Thread(target=schedule, name="load-open-scheduler", daemon=True)
    run._threads.append(thread)
    thread.start()
    return run


def closed_loop(method, request: Request, users: int, duration: float, rng: np.random.Generator,
                think_time: float = 0.0, timeout: float = 2.0, progress: bool = False) -> LoadRun:
    """Run ``users`` that each call, wait, think and call again for ``duration`` s."""
    if users < 1 or duration <= 0 or think_time < 0:
        raise ValueError("users must be >= 1, duration > 0 and think_time >= 0")
    run = LoadRun("closed-loop", duration, progress)
    # Think times are drawn up front from the seeded generator (it is not shared across threads).
    thinking = [float(x) for x in rng.exponential(think_time, size=100_000)] if think_time else None
    lock = threading.Lock()
    state = {"sent": 0, "finished": 0}

    def user(index: int) -> None:
        try:
            while not run._stop.is_set() and time.perf_counter() - run.started < duration:
                with lock:
                    n = state["sent"]
                    state["sent"] += 1
                run._call(method, _request(request, n), timeout)
                if thinking is not None and run._stop.wait(thinking[n % len(thinking)]):
                    break
        finally:
            with lock:
                state["finished"] += 1
                if state["finished"] == users:
                    run._done.set()

    for index in range(users):
        thread = threading.Thread(target=user, args=(index,), name=f"load-user-{index}", daemon=True)
        run._threads.append(thread)
    for thread in run._threads:
        thread.start()
    return run


class SteadyLoad:
    """Open-loop load with no set end, whose rate can change while it runs (what a console drives).

    Poisson arrivals at :attr:`rate` per second (0 pauses them), at most ``max_in_flight`` calls at
    once (an arrival beyond that is recorded as ``SHED``). The last ``keep`` records are kept, each
    ``start`` in seconds since :attr:`started_monotonic`, so memory stays bounded however long it
    runs. It runs until :meth:`stop`; a call already sent then ends within its ``timeout``.
    """

    def __init__(self, method, request: Request, rate: float, rng: np.random.Generator, timeout: float = 2.0,
                 max_in_flight: int = 64, keep: int = 20_000):
        if max_in_flight < 1 or keep < 1 or timeout <= 0:
            raise ValueError("max_in_flight and keep must be >= 1 and timeout > 0")
        self._rate = 0.0
        self.rate = rate
        self.records: deque[CallRecord] = deque(maxlen=keep)
        self.started_monotonic = time.monotonic()
        self._records_lock = threading.Lock()
        self._method, self._request, self._rng, self._timeout = method, request, rng, timeout
        self._stop = threading.Event()
        self._slots = threading.Semaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load-steady")
        self._thread = threading.Thread(target=self._schedule, name="load-steady-scheduler", daemon=True)
        self._thread.start()

    @property
    def rate(self) -> float:
        """Arrivals per second now (0: paused)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not value >= 0:  # also refuses nan
            raise ValueError(f"rate must be >= 0, got {value!r}")
        self._rate = float(value)

    @property
    def running(self) -> bool:
        """Whether it still sends (or, told to stop, still waits for its calls in flight)."""
        return self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        """Whether it has been told to stop."""
        return self._stop.is_set()

    @property
    def now(self) -> float:
        """Seconds since the load began (the clock its records' ``start`` is on)."""
        return time.monotonic() - self.started_monotonic

    def recent(self, seconds: float) -> list[CallRecord]:
        """Return the records of the calls that started in the last ``seconds``, oldest first."""
        since = self.now - seconds
        found = []
        with self._records_lock:
            for record in reversed(self.records):
                if record.start < since:
                    break
                found.append(record)
        return found[::-1]

    def _record(self, record: CallRecord) -> None:
        with self._records_lock:
            self.records.append(record)

    def stop(self, wait: bool = False) -> None:
        """Stop sending; with ``wait``, also wait for the calls in flight to end."""
        self._stop.set()
        if wait:
            self._thread.join()

    def _schedule(self) -> None:
        n = 0
        due = time.monotonic()
        try:
            while not self._stop.is_set():
                rate = self._rate
                if rate <= 0:
                    self._stop.wait(0.05)
                    due = time.monotonic()
                    continue
                due = max(due, time.monotonic() - 1.0) + float(self._rng.exponential(1.0 / rate))
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                start = time.monotonic() - self.started_monotonic
                if self._slots.acquire(blocking=False):
                    try:
                        self._pool.submit(self._send, n, start)
                    except RuntimeError:  # the interpreter is exiting: no new threads
                        self._slots.release()
                        break
                else:
                    self._record(CallRecord(start, 0.0, "SHED", ""))
                n += 1
        finally:
            self._pool.shutdown(wait=True)

    def _send(self, n: int, start: float) -> None:
        try:
            self._record(observe(self._method, _request(self._request, n), self._timeout, start))
        finally:
            self._slots.release()
