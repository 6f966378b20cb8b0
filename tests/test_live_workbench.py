"""The live workbench without a browser: controls fired from Python change the real mesh, the views
follow changes made in code, errors show in the widget, and nothing is left running afterwards."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lessons.console import MeshConsole
from lessons.discovery import config_slider
from lessons.replay import Recorder, Replay, from_simulation
from lessons.service_map import BREAKER, HEALTH, ServiceMap
from lessons.tour import TourPanel
from lessons.traces import TraceExplorer, path, pick
from mesh import Mesh
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.services import shop_topology
from sim import Exponential, Fault, Poisson, ServiceSpec, Simulation, Topology

from .conftest import BOTH_MODES, MODES, eventually


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(("live-", "load-steady", "recorder-"))}


@pytest.fixture
def greeters(mode):
    with Mesh({"greeter": 3}, name=f"live-greeters-{mode}", seed=3, mode=mode) as mesh:
        mesh.wait_until_passing()
        yield mesh
    eventually(lambda: not live_threads(), timeout=10)


@pytest.fixture(scope="module", params=MODES)
def shop(request):
    """The shop, in the kernel and as processes: the map must look the same (breakers kept in
    callers' processes are read through their admin interfaces)."""
    with Mesh(shop_topology(2), name=f"live-shop-{request.param}", seed=4, mode=request.param) as mesh:
        mesh.wait_until_passing()
        yield mesh


@BOTH_MODES
def test_console_controls_write_through_the_meshs_api(greeters):
    console = MeshConsole(greeters, period=0.2)
    row = console._rows["greeter-2"]
    row.latency.value, row.jitter.value, row.hang.value = 120, 30, 10
    row.code.value = "INTERNAL"
    row.abort.value = 25
    faults = greeters.faults("greeter-2")
    assert (faults.delay, faults.delay_jitter, faults.hang_percent) == pytest.approx((0.12, 0.03, 10))
    assert (faults.abort_percent, faults.abort_code) == (25, "INTERNAL")
    console.policy.attempts.value = 3
    console.policy.per_try_ms.value = 150
    console.policy.breaker_pct.value = 50
    console.policy.outlier.value = True
    console.policy.balancer.value = "p2c"
    settings = greeters.policy("greeter").current
    assert (settings.max_attempts, settings.per_try_timeout, settings.breaker_failure_rate) == (3, 0.15, 50)
    assert (settings.outlier_errors, settings.balancer) == (3, "p2c")
    row.kill.value = True
    assert not greeters.instance("greeter-2").running
    row.kill.value = False
    assert greeters.instance("greeter-2").running
    console.close()


@BOTH_MODES
def test_console_shows_changes_made_in_code(greeters):
    console = MeshConsole(greeters, period=0.1)
    greeters.inject("greeter-1", delay=0.25, abort_percent=40, abort_code="UNAVAILABLE")
    greeters.set_policy("greeter", max_attempts=2, rate_limit=120)
    greeters.kill("greeter-3")
    row1, row3 = console._rows["greeter-1"], console._rows["greeter-3"]
    # one refresh shows the rows, then the policy (after asking processes for their breakers)
    eventually(lambda: (row1.latency.value, row1.abort.value) == (250, 40) and row3.kill.value
               and (console.policy.attempts.value, console.policy.rate_limit.value) == (2, 120), timeout=5)
    assert row3.kill.description == "revive" and "killed" in row3.label.value
    console.close()


@BOTH_MODES
def test_console_load_and_charts_follow_a_slowed_replica(greeters):
    console = MeshConsole(greeters, rate=80, period=0.25)
    assert console.load is not None and console.load.running
    time.sleep(2.0)
    before = np.median(console.latency_chart.series("p99")[-6:])  # the median: a busy moment aside
    for row in console._rows.values():
        row.latency.value = 150
    eventually(lambda: np.max(console.latency_chart.series("p99")[-4:]) > 140, timeout=6)
    assert before < 100, f"p99 before the slowdown: {before:.0f} ms"
    assert sum(console.instance_chart.bars.y) > 30  # calls per second over the three replicas
    console.rate.value = 20
    assert console.load.rate == 20
    console.running.value = False
    eventually(lambda: not console.load.running, timeout=5)
    assert console.load_status.value.startswith("stopped")
    console.close()


def test_a_refresh_that_read_the_mesh_just_before_a_change_does_not_undo_it(greeters, monkeypatch):
    """A refresh read the policy; a learner then moved a slider, which wrote the new value; the
    refresh then showed what it had read, moving the slider back, and the slider's callback wrote
    that stale value, undoing the learner's change (seen with processes, whose breakers take a
    round trip to read). A refresh now only shows."""
    console = MeshConsole(greeters, period=60)  # refreshed here only
    states = greeters.breaker_states
    learner = threading.Thread(target=lambda: setattr(console.policy.attempts, "value", 4))

    def moved_meanwhile():  # the refresh calls this after reading the policy
        learner.start()  # the learner's change arrives on another thread, as a widget message does
        eventually(lambda: greeters.policy("greeter").current.max_attempts == 4, timeout=15)
        return states()

    monkeypatch.setattr(greeters, "breaker_states", moved_meanwhile)
    console.refresh_now()
    monkeypatch.setattr(greeters, "breaker_states", states)
    learner.join(5)
    assert greeters.policy("greeter").current.max_attempts == 4
    console.refresh_now()
    assert console.policy.attempts.value == 4
    console.close()


def test_an_exception_in_a_callback_shows_in_the_widget(greeters, monkeypatch):
    console = MeshConsole(greeters, period=0.2)

    def broken(*args, **kwargs):
        raise RuntimeError("injector out of order")

    monkeypatch.setattr(greeters, "inject", broken)
    console._rows["greeter-1"].latency.value = 50
    assert "injector out of order" in console.notice.value and "RuntimeError" in console.notice.value
    console.close()


def test_panels_say_when_their_mesh_has_stopped_and_leave_nothing_running():
    with Mesh({"greeter": 2}, name="live-stopping") as mesh:
        mesh.wait_until_passing()
        console = MeshConsole(mesh, rate=30, period=0.1)
        panel = TourPanel(mesh, "greeter", HelloRequest(name="Ada"), period=0.1)
        slider = config_slider(mesh, "greeter", "age", 18, 99)
        assert live_threads()
    eventually(lambda: not (console.alive or panel.alive or slider.alive), timeout=5)
    for widget in (console, panel, slider):
        assert "has stopped" in widget.notice.value
        assert all(control.disabled for control in widget.controls())
    console._rows["greeter-1"].latency.value = 300  # a control moved anyway (from code) changes nothing
    assert "stopped" in console.notice.value
    eventually(lambda: not live_threads(), timeout=10)


def test_a_newer_panel_of_the_same_mesh_replaces_the_old_one(greeters):
    first = MeshConsole(greeters, rate=20, period=0.1)
    second = MeshConsole(greeters, period=0.1)
    assert not first.alive and second.alive
    assert not first.load.running or first.load._stop.is_set()
    assert "newer panel" in first.notice.value
    second.close()


def test_tour_panel_and_config_slider_follow_the_mesh(greeters):
    panel = TourPanel(greeters, "greeter", HelloRequest(name="Ada"), period=0.1)
    greeters.kill("greeter-1")
    button = panel._buttons["greeter-1"]
    eventually(lambda: button.value and button.description == "revive greeter-1", timeout=5)
    button.value = False
    assert greeters.instance("greeter-1").running
    slider = config_slider(greeters, "greeter", "age", 18, 99)
    greeters.config("greeter").set("age", 42)
    eventually(lambda: slider.slider.value == 42 and "age = 42" in slider.applied.value, timeout=5)
    slider.slider.value = 30
    assert greeters.config("greeter").wait_for(lambda s: s.age == 30).age == 30
    assert "…" not in panel._table.value or "title=" in panel._table.value
    panel.close()
    slider.close()


def test_service_map_shows_health_breakers_and_traffic(shop):
    shop.set_policy("payments", breaker_failure_rate=50, breaker_minimum_calls=5, breaker_window=10,
                    breaker_wait=30)
    console = MeshConsole(shop, rate=30, period=0.2)
    service_map = ServiceMap(shop, period=0.2)
    eventually(lambda: service_map.edge_colours.get(("orders", "payments")) == BREAKER["closed"], timeout=8)
    services = ("frontend", "orders", "payments", "fraud")
    assert all(service_map.node_colours[s] == HEALTH["up"] for s in services)
    for instance in shop.instances("payments"):
        shop.inject(instance, abort_code="UNAVAILABLE", abort_percent=100)
    eventually(lambda: service_map.edge_colours.get(("orders", "payments")) == BREAKER["open"], timeout=10)
    shop.kill("fraud-1")
    eventually(lambda: service_map.node_colours["fraud"] == HEALTH["degraded"], timeout=10)
    labels = dict(zip(service_map.view.graph.edges(), service_map.view.edge_labels.text, strict=True))
    assert labels[("client", "frontend")].endswith("err") and labels[("client", "frontend")].startswith(
        tuple("123456789"))
    service_map.view._clicked(None, {"data": {"index": list(service_map.view.graph).index("fraud")}})
    assert "fraud-1" in service_map.details.value and "killed" in service_map.details.value
    explorer = TraceExplorer(shop, service_map, period=0.2)
    explorer.kind.value = "refused"
    eventually(lambda: len(explorer.choice.options) > 0, timeout=15)
    assert explorer._shown and ("orders", "payments") in service_map.highlighted
    shop.revive("fraud-1")
    for instance in shop.instances("payments"):
        shop.clear_faults(instance)
    for panel in (console, service_map, explorer):
        panel.close()


@BOTH_MODES
def test_trace_explorer_picks_failed_and_retried_requests(greeters):
    greeters.set_policy("greeter", max_attempts=3)
    greeters.inject("greeter-2", abort_code="UNAVAILABLE", abort_percent=100)
    client = greeters.client("greeter")
    for _ in range(12):
        client.SayHello(HelloRequest(name="Ada"))
    requests = greeters.tracing.requests()
    retried = pick(requests, "retried")
    assert retried and all(len(r) >= 2 for r in retried)  # a root call's attempts share one trace
    assert path(retried[0]) == {("client", "greeter")}
    explorer = TraceExplorer(greeters, period=0.2)
    explorer.kind.value = "retried"
    assert explorer._shown == retried[0][0].trace_id
    explorer.kind.value = "failed"
    assert "no failed request" in explorer.summary.value
    explorer.close()


def test_a_recording_of_the_mesh_replays_on_the_map(greeters):
    with Recorder(greeters, every=0.2) as recorder:
        client = greeters.client("greeter")
        for _ in range(20):
            client.SayHello(HelloRequest(name="Ada"))
        time.sleep(0.5)
        greeters.kill("greeter-1")
        greeters.kill("greeter-2")
        greeters.kill("greeter-3")
        recorder.mark("all killed")
        eventually(lambda: not greeters.passing("greeter"), timeout=10)
        time.sleep(0.3)
    recording = recorder.recording
    replay = Replay(recording)
    replay.slider.value = 0
    first = replay.view.node_colours["greeter"]
    replay.slider.value = len(recording.snapshots) - 1
    assert first != replay.view.node_colours["greeter"] == "#212121"  # down
    assert replay.cursor.x[0] == pytest.approx(recording.snapshots[-1].time)
    assert "all killed" in replay.clock.value


def test_a_simulation_replays_with_the_same_widget():
    topology = Topology({"front": ServiceSpec(workers=4, calls=(("back",),)),
                         "back": ServiceSpec(workers=2, service_time=Exponential(0.005))}, "front")
    results = Simulation(topology, np.random.default_rng(0), Poisson(200),
                         faults=[Fault(at=5.0, target="back", slow=20)], timeout=1.0,
                         sample_every=0.5).run(10)
    recording = from_simulation(results, topology)
    assert len(recording.snapshots) == 20 and set(recording.services) == {"front", "back"}
    replay = Replay(recording)
    replay.slider.value = 4  # 2 s in
    calm = replay.view.node_colours["back"]
    replay.slider.value = 16
    assert calm == "#2e7d32" and replay.view.node_colours["back"] != calm
    with pytest.raises(ValueError, match="sample_every"):
        from_simulation(Simulation(topology, np.random.default_rng(0)).run(1), topology)


def test_a_config_slider_holds_its_new_value_while_the_config_center_catches_up(greeters, monkeypatch):
    """The config center's echo of a write can come late (a busy machine): until it does, a refresh
    must not move the slider back — which would write the old value again."""
    config = greeters.config("greeter")
    slider = config_slider(greeters, "greeter", "age", 18, 99)
    apply = type(config)._apply

    def late(self, entries):
        time.sleep(0.3)
        apply(self, entries)

    monkeypatch.setattr(type(config), "_apply", late)
    try:
        slider.slider.value = 77
        assert slider.slider.value == 77 and config.current.age == 77
        time.sleep(0.8)  # refreshes came and went
        assert slider.slider.value == 77 and config.current.age == 77
        assert "age = 77" in slider.applied.value
    finally:
        slider.close()
