"""What a simulation returns: one named record per request, time series, breaker changes.

A request still in flight when the run ends is kept, as :data:`UNFINISHED` with no ``finish``, so
that a short, heavily loaded run is not biased towards the requests that happened to end: the
summary says how many there were, and latencies are of the finished ones.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

UNFINISHED = "UNFINISHED"


class Record(NamedTuple):
    """One request: when it arrived, when its answer came (``nan`` if it had not by the end) and
    with which status, how many attempts the entry call made and on which instances (``path``,
    ``>``-joined), the reason a fallback answered ('' if none did), and when the request and the
    asynchronous work it handed off had all ended (``settled``; ``nan`` if some had not)."""

    arrival: float
    finish: float
    status: str
    attempts: int
    path: str
    fallback: str = ""
    settled: float = math.nan

    @property
    def latency(self) -> float:
        return self.finish - self.arrival


class Sample(NamedTuple):
    """One instance at one moment of a sampled time series."""

    time: float
    instance: str
    queue: int
    busy: int


class ServiceSample(NamedTuple):
    """One service over one sampling interval ending at ``time``: instances up (not crashed), jobs
    in flight (being served, queued, or waiting in its message queue) at that moment, and the jobs
    that ended in the interval — how many, how many failed, their p99 time (``nan`` if none)."""

    time: float
    service: str
    up: int
    instances: int
    in_flight: int
    ended: int
    failed: int
    p99: float


class EdgeSample(NamedTuple):
    """The calls from ``caller`` (a service, or ``client``) to ``callee`` started in one interval."""

    time: float
    caller: str
    callee: str
    calls: int


class BreakerChange(NamedTuple):
    """A caller's breaker towards a service changed state."""

    time: float
    caller: str
    service: str
    source: str
    target: str


FIELDS = Record._fields


@dataclass
class Results:
    records: list[Record]  # one per request that arrived after the warm-up, in arrival order
    series: list[Sample]
    transitions: list[BreakerChange]
    start: float
    end: float
    instances: list[str]
    services: list[ServiceSample] = field(default_factory=list)  # with ``sample_every``
    edges: list[EdgeSample] = field(default_factory=list)  # with ``sample_every``

    def __len__(self) -> int:
        return len(self.records)

    @property
    def finished(self) -> list[Record]:
        return [r for r in self.records if r.status != UNFINISHED]

    @property
    def unfinished(self) -> int:
        """How many requests were still waiting for their answer when the run ended."""
        return sum(1 for r in self.records if r.status == UNFINISHED)

    def latencies(self, status: str | None = "OK") -> np.ndarray:
        """Latencies of the requests that ended with ``status`` (every finished one for None)."""
        return np.array([r.finish - r.arrival for r in self.records
                         if (r.status == status if status is not None else r.status != UNFINISHED)])

    def sojourns(self) -> np.ndarray:
        """Time from arrival until the request and all the work it handed off had ended (the
        time in the network of a queueing-theory customer), for the requests that settled."""
        return np.array([r.settled - r.arrival for r in self.records if not math.isnan(r.settled)])

    def percentile(self, q: float, status: str | None = "OK") -> float:
        values = self.latencies(status)
        return float(np.percentile(values, q)) if len(values) else float("nan")

    def mean_latency(self, status: str | None = "OK") -> float:
        values = self.latencies(status)
        return float(values.mean()) if len(values) else float("nan")

    @property
    def span(self) -> float:
        return self.end - self.start

    def throughput(self) -> float:
        """Finished requests per second."""
        return (len(self.records) - self.unfinished) / self.span

    def goodput(self) -> float:
        return sum(1 for r in self.records if r.status == "OK") / self.span

    def by_status(self) -> dict[str, int]:
        return dict(Counter(r.status for r in self.records))

    def share(self) -> dict[str, float]:
        """Fraction of the OK requests each instance served (the last attempt's instance)."""
        counts = Counter(r.path.rsplit(">", 1)[-1] for r in self.records if r.status == "OK")
        total = sum(counts.values()) or 1
        return {i: counts.get(i, 0) / total for i in self.instances}

    def mean_attempts(self) -> float:
        finished = self.finished
        return float(np.mean([r.attempts for r in finished])) if finished else float("nan")

    def mean_in_system(self) -> float:
        """Time-average number of requests in the system over the measured span (for Little's law);
        an unfinished request counts until the end."""
        end, start = self.end, self.start
        busy = sum(min(end if r.status == UNFINISHED else r.finish, end) - max(r.arrival, start)
                   for r in self.records)
        return busy / self.span

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.records), "unfinished": self.unfinished, "throughput": self.throughput(),
                "goodput": self.goodput(), "by_status": self.by_status(), "p50": self.percentile(50),
                "p99": self.percentile(99), "mean": self.mean_latency(), "attempts": self.mean_attempts()}

    def timeline(self, bucket: float = 1.0) -> dict[str, np.ndarray]:
        """Requests per second by arrival time: ``time``, ``sent``, ``goodput`` (OK), ``mean_latency``
        (of the finished ones)."""
        edges = np.arange(self.start, self.end + bucket, bucket)
        finished = self.finished
        arrivals = np.array([r.arrival for r in self.records])
        ok = np.array([r.arrival for r in self.records if r.status == "OK"])
        done = np.array([r.arrival for r in finished])
        latency = np.array([r.finish - r.arrival for r in finished])
        sent, _ = np.histogram(arrivals, bins=edges)
        good, _ = np.histogram(ok, bins=edges)
        count, _ = np.histogram(done, bins=edges)
        total, _ = np.histogram(done, bins=edges, weights=latency if len(latency) else None)
        mean = np.divide(total, count, out=np.full(len(count), np.nan), where=count > 0)
        return {"time": edges[:-1], "sent": sent / bucket, "goodput": good / bucket, "mean_latency": mean}

    def to_frame(self):
        """Return the records as a pandas DataFrame (one row per request, with ``latency``)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.records, columns=list(FIELDS))
        frame["latency"] = frame["finish"] - frame["arrival"]
        return frame

    def series_frame(self):
        import pandas as pd

        return pd.DataFrame.from_records(self.series, columns=list(Sample._fields))
