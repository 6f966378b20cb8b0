"""Releases: version routing as pure logic, then on the real mesh — a blue-green switch with no
failed call, a canary share that holds, and an automated canary that promotes a good release and
rolls back a bad one."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lessons.releases import blue_green, canary_analysis, canary_rollout
from mesh import Mesh, burst
from mesh.control.config import ConfigError
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.policies import PolicySettings, Release, key_bucket, route, version_share
from mesh.policies.release import describe

from .conftest import BOTH_MODES

HELLO = HelloRequest(name="Jason")


class Replica:
    def __init__(self, id: str, version: str):
        self.id, self.version = id, version


FLEET = [Replica("a", "v1"), Replica("b", "v1"), Replica("c", "v2")]


def ids(instances) -> list[str]:
    return [i.id for i in instances]


def test_without_a_release_every_version_serves():
    assert ids(route(FLEET, Release(), draw=0.3)) == ["a", "b", "c"]


def test_a_pinned_version_takes_everything_and_overrides_a_canary():
    assert ids(route(FLEET, Release(version="v2"), draw=0.3)) == ["c"]
    assert ids(route(FLEET, Release(version="v2", canary="v1", canary_percent=90), draw=0.0)) == ["c"]
    assert route(FLEET, Release(version="v3"), draw=0.3) == []  # nothing to serve: the caller says so


def test_a_canary_gets_its_share_of_draws():
    release = Release(canary="v2", canary_percent=20)
    draws = np.random.default_rng(4).random(20_000)
    to_canary = sum(ids(route(FLEET, release, draw=d)) == ["c"] for d in draws)
    assert abs(to_canary / len(draws) - 0.20) < 0.01  # ~7 standard errors of a binomial share
    assert ids(route(FLEET, Release(canary="v2", canary_percent=0), draw=0.0)) == ["a", "b"]


def test_a_canary_without_replicas_or_without_others_falls_back_to_what_exists():
    assert ids(route(FLEET, Release(canary="v9", canary_percent=50), draw=0.1)) == ["a", "b", "c"]
    only_canary = [Replica("c", "v2")]
    assert ids(route(only_canary, Release(canary="v2", canary_percent=1), draw=0.99)) == ["c"]


def test_a_sticky_canary_keeps_each_key_on_one_version_and_grows_by_adding_keys():
    users = [f"user-{n}" for n in range(4000)]
    at_10 = {u for u in users if ids(route(FLEET, Release(canary="v2", canary_percent=10, sticky=True),
                                           draw=0.0, key=u)) == ["c"]}
    at_30 = {u for u in users if ids(route(FLEET, Release(canary="v2", canary_percent=30, sticky=True),
                                           draw=0.99, key=u)) == ["c"]}
    assert at_10 < at_30  # growing the share only adds users: nobody flips back
    assert abs(len(at_10) / len(users) - 0.10) < 0.02 and abs(len(at_30) / len(users) - 0.30) < 0.03
    assert key_bucket("user-7") == key_bucket("user-7")


def test_a_call_that_asks_for_a_version_gets_it_if_it_exists():
    assert ids(route(FLEET, Release(version="v1"), draw=0.5, asked="v2")) == ["c"]
    assert ids(route(FLEET, Release(version="v1"), draw=0.5, asked="v7")) == ["a", "b"]


def test_bad_release_settings_are_refused():
    with pytest.raises(ValueError, match="canary_percent"):
        Release(canary="v2", canary_percent=101)
    with pytest.raises(ValueError, match="canary_percent"):
        PolicySettings(canary_version="v2", canary_percent=-5)


def test_describe_and_version_share():
    assert describe(Release(canary="v2", canary_percent=5, sticky=True)) == (
        "5% of request keys to v2, the rest to the other versions")
    assert describe(Release(version="v2")) == "all calls to v2"
    assert version_share(["v1", "v2", "v1", "v1"]) == {"v1": 0.75, "v2": 0.25}


def test_canary_analysis_decides_from_error_rates():
    versions = {"s": "v1", "c": "v2"}
    rows = [{"instance": "s", "code": "OK"}] * 100 + [{"instance": "c", "code": "OK"}] * 27 + [
        {"instance": "c", "code": "INTERNAL"}] * 3
    verdict = canary_analysis(rows, versions, "v1", "v2", max_increase=5.0)
    assert (verdict["canary_calls"], verdict["canary_error_pct"]) == (30, 10.0)
    assert verdict["decision"] == "rollback"
    assert canary_analysis(rows, versions, "v1", "v2", max_increase=15.0)["decision"] == "promote"
    assert canary_analysis(rows, versions, "v1", "v2", min_calls=31)["decision"] == "wait"


@pytest.fixture
def two_versions(mode):
    with Mesh(name=f"release-tests-{mode}", seed=9, mode=mode) as mesh:
        mesh.add_service("greeter", 2, version="v1")
        mesh.add_service("greeter", 2, version="v2")
        mesh.wait_until_passing()
        yield mesh


def _versions(mesh, records) -> Counter:
    return Counter(mesh.instance(r.served_by).version for r in records)


@pytest.mark.slow
@BOTH_MODES
def test_versions_are_registered_and_routing_follows_the_config_center(two_versions):
    mesh = two_versions
    assert mesh.versions("greeter") == {"v1": ["greeter-1", "greeter-2"], "v2": ["greeter-3", "greeter-4"]}
    _, entries = mesh.consul.health.service("greeter", tag="v2", passing=True)
    assert sorted((e["Service"]["ID"], e["Service"]["Meta"]["version"]) for e in entries) == [
        ("greeter-3", "v2"), ("greeter-4", "v2")]
    greeter = mesh.client("greeter")
    assert _versions(mesh, burst(greeter.SayHello, HELLO, calls=20)) == {"v1": 10, "v2": 10}
    mesh.set_policy("greeter", canary_version="v2", canary_percent=25)
    share = _versions(mesh, burst(greeter.SayHello, HELLO, calls=400))
    assert abs(share["v2"] / 400 - 0.25) < 0.08
    mesh.set_policy("greeter", release_version="v1")
    assert _versions(mesh, burst(greeter.SayHello, HELLO, calls=20)) == {"v1": 20}
    _, call = greeter.SayHello.with_call(HELLO, timeout=2, metadata=[("x-version", "v2")])
    assert mesh.instance(dict(call.initial_metadata())["x-served-by"]).version == "v2"
    mesh.set_policy("greeter", release_version="v3")
    (record,) = burst(greeter.SayHello, HELLO, calls=1)
    assert record.code == "UNAVAILABLE"


@pytest.mark.slow
def test_a_bad_release_setting_changes_nothing(two_versions):
    mesh = two_versions
    with pytest.raises(ConfigError, match="canary_percent"):
        mesh.set_policy("greeter", canary_version="v2", canary_percent=150)
    assert mesh.policy("greeter").explicit == frozenset()  # not even the valid canary_version
    with pytest.raises(ValueError, match="version"):
        mesh.add_service("greeter", 1, version="v 2")


@pytest.mark.slow
@BOTH_MODES
def test_a_blue_green_switch_and_rollback_lose_no_call(mode):
    experiment = blue_green(duration=1.5, switch_at=0.5, rollback_at=1.0, users=3, seed=2, mode=mode)
    records = experiment.runs["blue-green"]
    assert records and all(r.ok for r in records)
    version = experiment.versions
    # when the config center's change was in force in every caller (it is pushed: within a moment
    # of the switch, later on a busy machine); every call started after that went where it said
    applied = experiment.notes["blue-green"]
    green, blue = applied["green in force at s"], applied["blue back in force at s"]
    assert 0.5 < green < 1.0 < blue
    assert {version[r.served_by] for r in records if r.start < 0.5} == {"v1"}
    assert {version[r.served_by] for r in records if green < r.start < 1.0} == {"v2"}
    assert {version[r.served_by] for r in records if r.start > blue} == {"v1"}


@pytest.mark.slow
@BOTH_MODES
def test_an_automated_canary_rolls_back_a_bad_release_and_promotes_a_good_one(mode):
    bad = canary_rollout(steps=(10, 50, 100), step_duration=0.8, seed=3, mode=mode,
                         canary_faults={"abort_code": "INTERNAL", "abort_percent": 40})
    assert list(bad.runs) == ["10%", "after rollback"]
    assert bad.notes["10%"]["decision"] == "rollback" and bad.notes["10%"]["canary_error_pct"] > 20
    failed = [r for r in bad.runs["10%"] if not r.ok]
    assert failed and {bad.versions[r.served_by] for r in failed} == {"v2"}  # only the canary failed
    after = bad.runs["after rollback"]
    assert after and all(r.ok and bad.versions[r.served_by] == "v1" for r in after)
    good = canary_rollout(steps=(20, 100), step_duration=0.6, seed=3, mode=mode)
    assert [n["decision"] for n in good.notes.values()] == ["promote", "promote: v2 pinned"]
    assert {good.versions[r.served_by] for r in good.runs["100%"]} == {"v2"}


@pytest.mark.slow
def test_a_canary_step_too_small_to_judge_promotes_nothing():
    rollout = canary_rollout(steps=(5, 100), step_duration=0.4, min_calls=100_000, seed=3)
    assert list(rollout.runs) == ["5%", "after rollback"]
    assert rollout.notes["5%"]["decision"] == "wait"
    assert {rollout.versions[r.served_by] for r in rollout.runs["after rollback"]} == {"v1"}
