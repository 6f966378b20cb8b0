"""The shop as a monolith and as microservices, measured the way lesson 6.6.1's notebook shows."""

from __future__ import annotations

import time

import grpc
import pytest

from lessons.architecture import CHAPTER_MAP, call_cost, crash, deploy, outcome_table
from lessons.experiment import CHECKOUT, HOME
from mesh.monolith import Monolith


def test_a_monolith_serves_every_feature_from_one_process_and_crashes_as_one():
    with Monolith() as monolith:
        client = monolith.client()
        assert client.Checkout(CHECKOUT, timeout=5).status == "confirmed"
        assert len(client.Home(HOME, timeout=5).products) == 2
        assert monolith.wire_calls == 2  # the inner calls (orders, payments, fraud, …) never left the process
        monolith.slow("fraud", 0.05)
        started = time.perf_counter()
        client.Checkout(CHECKOUT, timeout=5)
        assert time.perf_counter() - started >= 0.05  # fraud's delay, taken inside the same process
        monolith.slow("fraud", 0)
        monolith.kill()
        for method, request in ((client.Checkout, CHECKOUT), (client.Home, HOME)):
            with pytest.raises(grpc.RpcError) as failed:
                method(request, timeout=1)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(KeyError, match="no service 'ledger'"):
            monolith.slow("ledger", 1)


@pytest.mark.slow
def test_the_split_costs_each_checkout_four_more_grpc_calls():
    monolith, mesh = call_cost(calls=50)
    assert (monolith["gRPC calls per checkout"], mesh["gRPC calls per checkout"]) == (1, 5)
    assert monolith["failed"] == mesh["failed"] == 0
    assert mesh["p50_ms"] > monolith["p50_ms"]


@pytest.mark.slow
def test_a_crash_takes_the_whole_monolith_but_only_checkout_in_the_mesh():
    table = {(r["architecture"], r["calls"]): r["succeeded_pct"]
             for r in outcome_table(crash(duration=2.0, crash_at=0.7), since=0.9)}
    assert table == {("monolith", "checkout"): 0.0, ("monolith", "browse"): 0.0,
                     ("microservices", "checkout"): 0.0, ("microservices", "browse"): 100.0}


@pytest.mark.slow
def test_a_rolling_deployment_drops_no_call_a_restart_drops_both_kinds():
    table = {(r["architecture"], r["calls"]): r["succeeded_pct"]
             for r in outcome_table(deploy(duration=3.5, deploy_at=0.5), since=0.0)}
    assert table[("microservices", "checkout")] == table[("microservices", "browse")] == 100.0
    assert table[("monolith", "checkout")] < 100.0 and table[("monolith", "browse")] < 100.0


def test_every_advantage_and_cost_of_the_chapter_has_a_lesson():
    kinds = [row["kind"] for row in CHAPTER_MAP]
    assert kinds.count("advantage") == 11 and kinds.count("cost") == 3
    assert all(row["where"] for row in CHAPTER_MAP)
