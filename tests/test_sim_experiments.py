"""The simulation experiments reach the conclusions the notebook teaches (seeded, bounded runs)."""

from __future__ import annotations

import pytest

from lessons.simulation import experiments
from sim import close_local_cluster


@pytest.fixture(autouse=True, scope="module")
def _local_cluster_closed_after():
    """The local Dask cluster these sweeps start is stopped when the module is done (its threads
    and worker processes would otherwise live until pytest exits)."""
    yield
    close_local_cluster()


@pytest.mark.slow
def test_a_parallel_sweep_equals_the_serial_one_and_load_aware_balancers_win():
    kwargs = {"balancers": ("round_robin", "p2c"), "loads": (0.5, 0.9), "duration": 15.0}
    serial = experiments.compare_balancers(parallel=False, **kwargs).rows
    parallel = experiments.compare_balancers(parallel=True, seeds=(0,), **kwargs).rows
    assert serial == parallel  # spawned processes, same seeds, same numbers
    p99 = {(r["balancer"], r["load"]): r["p99"] for r in serial}
    assert p99[("p2c", 0.9)] < p99[("round_robin", 0.9)] / 10


def test_a_retry_storm_multiplies_by_attempts_per_tier_and_a_budget_stops_it():
    rows = {(r["policy"], r["tier"]): r["calls_per_request"] for r in experiments.retry_storm().rows}
    assert rows[("3 attempts", "tier3")] == pytest.approx(27, rel=0.02)
    assert rows[("3 attempts", "tier2")] == pytest.approx(9, rel=0.02)
    assert rows[("3 attempts + budget", "tier3")] < 1.5
    assert rows[("no retries", "tier3")] == pytest.approx(1.0)


@pytest.mark.slow
def test_protections_contain_a_cascading_failure():
    rows = {r["policy"]: r for r in experiments.cascading_failure().rows}
    assert rows["no protection"]["useful_goodput_during"] < 10
    assert rows["no protection"]["p50_during_ms"] > 500
    for policy in ("timeouts", "timeouts + breaker", "bulkhead"):
        assert rows[policy]["useful_goodput_during"] > 150, policy


@pytest.mark.slow
def test_a_metastable_failure_persists_without_a_budget_and_heals_with_one():
    rows = {r["policy"]: r for r in experiments.metastable_failure().rows}
    offered = rows["retries"]["offered"]
    assert rows["retries"]["goodput_last_10s"] < 0.1 * offered
    assert rows["retries + budget"]["goodput_last_10s"] > 0.9 * offered
    assert rows["retries + deadline propagation"]["goodput_last_10s"] > 0.9 * offered


def test_limiting_at_the_service_wastes_the_callers_work():
    rows = {r["limit"]: r for r in experiments.rate_limiting().rows}
    edge, service = rows["at the edge"], rows["at the service"]
    assert edge["goodput"] == pytest.approx(service["goodput"], rel=0.1)
    assert edge["frontend_work_per_s"] == pytest.approx(edge["goodput"], rel=0.02)
    assert service["frontend_work_per_s"] > 1.4 * edge["frontend_work_per_s"]
    assert rows["no limit"]["p99"] > 5 * edge["p99"]


@pytest.mark.parametrize(("factor", "scale"), [(2.0, "linear"), (100.0, "log")])
def test_a_latency_timeline_is_log_only_when_it_spans_a_decade_and_always_has_labelled_ticks(factor, scale):
    import matplotlib.pyplot as plt

    from lessons.simulation.plots import plot_timelines

    exp = experiments.cascading_failure(policies=("no protection",), slow_from=2.0, slow_until=4.0,
                                        factor=factor, rate=100.0, duration=6.0)
    ax = plot_timelines(exp, "mean_latency", bucket=0.5)
    try:
        ax.figure.canvas.draw()
        assert ax.get_yscale() == scale
        low, high = ax.get_ylim()
        shown = [t.get_text() for t in ax.get_yticklabels()
                 if t.get_text() and low <= t.get_position()[1] <= high]
        assert len(shown) >= 3, shown
    finally:
        plt.close(ax.figure)


def test_a_cascade_whose_slowdown_is_out_of_order_or_outside_the_run_is_refused():
    for slow_from, slow_until in ((5.0, 5.0), (6.0, 4.0), (-1.0, 4.0), (2.0, 9.0)):
        with pytest.raises(ValueError, match="slow_from < slow_until <= duration"):
            experiments.cascading_failure(slow_from=slow_from, slow_until=slow_until, duration=8.0)
