"""Traffic mirroring on a real mesh: callers get v1's answers, a share of their calls is copied to
v2, and v2's errors and slowness are recorded next to v1's without ever reaching a caller — with
the replicas in the kernel and as processes."""

from __future__ import annotations

import numpy as np
import pytest

from mesh import Mesh, Mirror
from mesh.pb.greeter_pb2 import HelloRequest

from .conftest import MODES

HELLO = HelloRequest(name="Ada")


@pytest.fixture(scope="module", params=MODES)
def mesh(request):
    with Mesh(name=f"mirror-test-{request.param}", seed=0, mode=request.param) as mesh:
        mesh.add_service("greeter", 2, version="v1")
        mesh.add_service("greeter", 1, version="v2")
        mesh.wait_until_passing()
        mesh.set_policy("greeter", release_version="v1")
        yield mesh


def served_by_version(mesh) -> dict[str, int]:
    mesh.settle_telemetry()
    counts: dict[str, int] = {}
    for row in mesh.metrics.server_rows:
        version = mesh.instance(row["instance"]).version
        counts[version] = counts.get(version, 0) + 1
    return counts


def test_a_share_is_copied_and_only_primaries_answer(mesh):
    mesh.clear_faults()
    mesh.inject("greeter-3", abort_code="INTERNAL", abort_percent=100)  # v2 has a bug
    mesh.settle_telemetry()  # no late row of an earlier test's calls
    mesh.metrics.clear()
    draws = np.random.default_rng(5).random(40) * 100 < 30  # the draws the mirror will make
    with Mirror(mesh.client("greeter").SayHello, "v2", percent=30, rng=np.random.default_rng(5)) as mirror:
        replies = [mirror(HELLO) for _ in range(40)]
    assert all(r.name == "Ada" for r in replies)  # every caller got an answer, none failed
    summary = mirror.summary()
    assert (summary["calls"], summary["mirrored"], summary["dropped"]) == (40, int(draws.sum()), 0)
    assert summary["compared"] == summary["mirrored"] == summary["differing"] > 0
    assert summary["primary"]["error_pct"] == 0.0 and summary["shadow"]["error_pct"] == 100.0
    assert {r.shadow_code for r in mirror.records()} == {"INTERNAL"}
    assert served_by_version(mesh) == {"v1": 40, "v2": int(draws.sum())}


def test_agreeing_versions_compare_equal_and_percent_bounds_hold(mesh):
    mesh.clear_faults()
    with Mirror(mesh.client("greeter").SayHello, "v2", percent=100, rng=np.random.default_rng(0)) as every:
        for _ in range(10):
            every(HELLO)
    assert every.summary()["mirrored"] == every.summary()["compared"] == 10
    assert every.summary()["differing"] == 0
    with Mirror(mesh.client("greeter").SayHello, "v2", percent=0, rng=np.random.default_rng(0)) as none:
        for _ in range(10):
            none(HELLO)
    assert none.summary()["mirrored"] == 0 and none.records() == []


def test_a_slow_new_version_never_slows_a_caller(mesh):
    mesh.clear_faults()
    mesh.inject("greeter-3", delay=1.0)
    try:
        with Mirror(mesh.client("greeter").SayHello, "v2", percent=100, rng=np.random.default_rng(0),
                    max_in_flight=2, timeout=3.0) as mirror:
            for _ in range(6):
                mirror(HELLO)
            assert mirror.summary()["compared"] == 0  # the callers are done; the shadows still wait for v2
        summary = mirror.summary()
    finally:
        mesh.clear_faults()
    assert summary["mirrored"] == 2 and summary["dropped"] == 4  # two slots, the rest dropped
    assert summary["compared"] == 2 and summary["shadow"]["p50_ms"] >= 1000
    assert summary["primary"]["p99_ms"] < 500  # the callers did not wait for v2


def test_bad_settings_and_a_closed_mirror_are_refused(mesh):
    method = mesh.client("greeter").SayHello
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="percent"):
        Mirror(method, "v2", percent=101, rng=rng)
    with pytest.raises(ValueError, match="max_in_flight"):
        Mirror(method, "v2", percent=10, rng=rng, max_in_flight=0)
    with pytest.raises(ValueError, match="version"):
        Mirror(method, "", percent=10, rng=rng)
    mirror = Mirror(method, "v2", percent=10, rng=rng)
    mirror.close()
    with pytest.raises(RuntimeError, match="closed"):
        mirror(HELLO)
