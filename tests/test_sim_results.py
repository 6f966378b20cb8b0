"""The simulator's results, computed by hand for a small run: every statistic the lessons and the
validation tests read (latency percentiles, throughput and goodput, shares, attempts, the time in
system for Little's law, the per-second timeline, the frames)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import UNFINISHED, Record, Results, Sample


@pytest.fixture
def results() -> Results:
    records = [
        Record(0.5, 0.7, "OK", 1, "a", settled=0.9),
        Record(1.0, 1.5, "OK", 2, "a>b"),
        Record(1.2, 1.3, "UNAVAILABLE", 3, "b>a>b"),
        Record(2.5, 3.5, "OK", 1, "b", fallback="", settled=3.5),
        Record(3.5, math.nan, UNFINISHED, 1, "a"),
    ]
    series = [Sample(1.0, "a", 2, 1), Sample(1.0, "b", 0, 1)]
    return Results(records, series, [], start=0.0, end=4.0, instances=["a", "b", "c"])


def test_counts_and_rates(results):
    assert len(results) == 5 and results.unfinished == 1 and len(results.finished) == 4
    assert results.span == 4.0
    assert results.throughput() == 4 / 4.0 and results.goodput() == 3 / 4.0
    assert results.by_status() == {"OK": 3, "UNAVAILABLE": 1, UNFINISHED: 1}
    assert results.share() == {"a": 1 / 3, "b": 2 / 3, "c": 0.0}  # by the last attempt's instance
    assert results.mean_attempts() == (1 + 2 + 3 + 1) / 4


def test_latencies_by_status(results):
    assert results.latencies().tolist() == pytest.approx([0.2, 0.5, 1.0])
    assert results.latencies(None).tolist() == pytest.approx([0.2, 0.5, 0.1, 1.0])
    assert results.latencies("UNAVAILABLE").tolist() == pytest.approx([0.1])
    assert results.percentile(50) == pytest.approx(0.5) and results.percentile(100) == pytest.approx(1.0)
    assert results.mean_latency() == pytest.approx(1.7 / 3)
    assert math.isnan(results.percentile(50, "DEADLINE_EXCEEDED"))
    assert math.isnan(results.mean_latency("DEADLINE_EXCEEDED"))
    assert results.sojourns().tolist() == pytest.approx([0.4, 1.0])  # only the settled ones
    assert results.records[0].latency == pytest.approx(0.2)


def test_time_in_system_counts_an_unfinished_request_until_the_end(results):
    # 0.2 + 0.5 + 0.1 + 1.0 + (4.0 - 3.5) = 2.3 request-seconds over 4 s
    assert results.mean_in_system() == pytest.approx(2.3 / 4.0)
    clipped = Results([Record(-1.0, 0.5, "OK", 1, "a")], [], [], start=0.0, end=1.0, instances=["a"])
    assert clipped.mean_in_system() == pytest.approx(0.5)  # counted from the start of the span
    late = Results([Record(0.5, 3.0, "OK", 1, "a")], [], [], start=0.0, end=1.0, instances=["a"])
    assert late.mean_in_system() == pytest.approx(0.5)  # and to its end


def test_summary_and_timeline(results):
    summary = results.summary()
    assert summary["requests"] == 5 and summary["unfinished"] == 1 and summary["attempts"] == 1.75
    assert summary["p50"] == pytest.approx(0.5) and summary["p99"] == pytest.approx(0.99, abs=0.01)
    assert (summary["throughput"], summary["goodput"]) == (1.0, 0.75) and summary["by_status"]["OK"] == 3
    assert summary["mean"] == pytest.approx(1.7 / 3)
    line = results.timeline(bucket=1.0)
    assert line["time"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert line["sent"].tolist() == [1, 2, 1, 1] and line["goodput"].tolist() == [1, 1, 1, 0]
    assert line["mean_latency"][:3].tolist() == pytest.approx([0.2, 0.3, 1.0])
    assert np.isnan(line["mean_latency"][3])  # only an unfinished request arrived then
    halves = results.timeline(bucket=2.0)
    assert halves["sent"].tolist() == [1.5, 1.0]  # per second


def test_frames(results):
    frame = results.to_frame()
    assert list(frame.columns) == [*Record._fields, "latency"] and len(frame) == 5
    assert frame["latency"].iloc[1] == pytest.approx(0.5)
    first = results.series_frame().to_dict("records")[0]
    assert first == {"time": 1.0, "instance": "a", "queue": 2, "busy": 1}


def test_an_empty_run_has_no_rates_but_does_not_fail():
    empty = Results([], [], [], start=0.0, end=2.0, instances=["a"])
    assert empty.share() == {"a": 0.0} and math.isnan(empty.mean_attempts())
    assert empty.throughput() == 0.0 and empty.summary()["by_status"] == {}
    assert empty.timeline()["sent"].tolist() == [0, 0]
