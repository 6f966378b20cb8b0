"""Unit tests of the load balancers (pure logic)."""

from __future__ import annotations

import pytest

from mesh.policies import RoundRobin


def test_round_robin_takes_instances_in_turn():
    rr = RoundRobin()
    assert [rr.pick("abc") for _ in range(7)] == list("abcabca")


def test_round_robin_continues_its_rotation_when_the_list_shrinks():
    rr = RoundRobin()
    assert [rr.pick("abc") for _ in range(2)] == ["a", "b"]
    assert [rr.pick("ac") for _ in range(3)] == ["a", "c", "a"]


def test_round_robin_with_no_instances_raises():
    with pytest.raises(LookupError):
        RoundRobin().pick([])
