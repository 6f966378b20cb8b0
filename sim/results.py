"""What a simulation returns: one flat record per request, time series, breaker transitions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

FIELDS = ("arrival", "finish", "status", "attempts", "path")


@dataclass
class Results:
    records: list[tuple]  # (arrival, finish, status, attempts, path: the instances tried, ">"-joined)
    series: list[tuple]  # (time, instance, queue length, busy workers)
    transitions: list[tuple]  # (time, caller, service, from, to)
    start: float
    end: float
    instances: list[str]

    def __len__(self) -> int:
        return len(self.records)

    def latencies(self, status: str | None = "OK") -> np.ndarray:
        """Latencies of the requests that ended with ``status`` (all of them for None)."""
        return np.array([r[1] - r[0] for r in self.records if status is None or r[2] == status])

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
        return len(self.records) / self.span

    def goodput(self) -> float:
        return sum(1 for r in self.records if r[2] == "OK") / self.span

    def by_status(self) -> dict[str, int]:
        return dict(Counter(r[2] for r in self.records))

    def share(self) -> dict[str, float]:
        """Fraction of the OK requests each instance served (the last attempt's instance)."""
        counts = Counter(r[4].rsplit(">", 1)[-1] for r in self.records if r[2] == "OK")
        total = sum(counts.values()) or 1
        return {i: counts.get(i, 0) / total for i in self.instances}

    def mean_attempts(self) -> float:
        return float(np.mean([r[3] for r in self.records])) if self.records else float("nan")

    def mean_in_system(self) -> float:
        """Time-average number of requests in the system over the measured span (for Little's law)."""
        busy = sum(min(r[1], self.end) - max(r[0], self.start) for r in self.records)
        return busy / self.span

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.records), "throughput": self.throughput(), "goodput": self.goodput(),
                "by_status": self.by_status(), "p50": self.percentile(50), "p99": self.percentile(99),
                "mean": self.mean_latency(), "attempts": self.mean_attempts()}

    def timeline(self, bucket: float = 1.0) -> dict[str, np.ndarray]:
        """Requests per second by arrival time: ``time``, ``sent``, ``goodput`` (OK), ``mean_latency``."""
        edges = np.arange(self.start, self.end + bucket, bucket)
        arrivals = np.array([r[0] for r in self.records])
        ok = np.array([r[2] == "OK" for r in self.records], dtype=bool)
        latency = np.array([r[1] - r[0] for r in self.records])
        sent, _ = np.histogram(arrivals, bins=edges)
        good, _ = np.histogram(arrivals[ok] if len(ok) else arrivals, bins=edges)
        total, _ = np.histogram(arrivals, bins=edges, weights=latency if len(latency) else None)
        mean = np.divide(total, sent, out=np.full(len(sent), np.nan), where=sent > 0)
        return {"time": edges[:-1], "sent": sent / bucket, "goodput": good / bucket, "mean_latency": mean}

    def to_frame(self):
        """Return the records as a pandas DataFrame (one row per request, with ``latency``)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.records, columns=list(FIELDS))
        frame["latency"] = frame["finish"] - frame["arrival"]
        return frame

    def series_frame(self):
        import pandas as pd

        return pd.DataFrame.from_records(self.series, columns=["time", "instance", "queue", "busy"])
