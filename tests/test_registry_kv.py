"""The KV store, sessions, locks and events through py-consul and raw HTTP."""

from __future__ import annotations

import base64
import contextlib
import re
from concurrent import futures

import consul
import pytest
import requests

from mesh.registry import MAX_VALUE, Indexes, KVError, KVStore


def test_put_get_with_flags_and_indexes(client):
    assert client.kv.put("config/web/timeout", "250ms", flags=42) is True
    index, entry = client.kv.get("config/web/timeout")
    assert entry["Value"] == b"250ms" and entry["Flags"] == 42 and entry["LockIndex"] == 0
    assert entry["CreateIndex"] == entry["ModifyIndex"] == int(index)
    client.kv.put("config/web/timeout", "500ms")
    _, updated = client.kv.get("config/web/timeout")
    assert updated["ModifyIndex"] > entry["ModifyIndex"] and updated["CreateIndex"] == entry["CreateIndex"]
    assert updated["Flags"] == 42  # a put without flags keeps them


def test_value_is_base64_on_the_wire_and_raw_gives_bytes(registry, client):
    client.kv.put("blob", b"\x00\x01binary")
    resp = requests.get(f"{registry.url}/v1/kv/blob", timeout=5)
    assert base64.b64decode(resp.json()[0]["Value"]) == b"\x00\x01binary"
    raw = requests.get(f"{registry.url}/v1/kv/blob?raw", timeout=5)
    assert raw.content == b"\x00\x01binary" and int(raw.headers["X-Consul-Index"]) >= 1


def test_missing_key_is_404_with_an_index(registry, client):
    assert client.kv.get("nope") == (client.kv.get("nope")[0], None)
    resp = requests.get(f"{registry.url}/v1/kv/nope", timeout=5)
    assert resp.status_code == 404 and resp.headers["X-Consul-Index"]


def test_recurse_keys_and_separator(client):
    for key in ("app/a", "app/b/x", "app/b/y", "other"):
        client.kv.put(key, "1")
    _, entries = client.kv.get("app/", recurse=True)
    assert [e["Key"] for e in entries] == ["app/a", "app/b/x", "app/b/y"]
    assert client.kv.get("app/", keys=True)[1] == ["app/a", "app/b/x", "app/b/y"]
    assert client.kv.get("app/", keys=True, separator="/")[1] == ["app/a", "app/b/"]


def test_cas_writes_and_deletes(client):
    assert client.kv.put("k", "v1", cas=0) is True
    assert client.kv.put("k", "v2", cas=0) is False  # 0 means "only if absent"
    _, entry = client.kv.get("k")
    assert client.kv.put("k", "v2", cas=entry["ModifyIndex"] + 99) is False
    assert client.kv.put("k", "v2", cas=entry["ModifyIndex"]) is True
    _, entry = client.kv.get("k")
    assert client.kv.delete("k", cas=entry["ModifyIndex"] - 1) is False
    assert client.kv.get("k")[1]["Value"] == b"v2"
    assert client.kv.delete("k", cas=entry["ModifyIndex"]) is True
    assert client.kv.get("k")[1] is None


def test_recursive_delete(client):
    for key in ("app/a", "app/b", "keep"):
        client.kv.put(key, "1")
    assert client.kv.delete("app/", recurse=True)
    assert client.kv.get("", keys=True)[1] == ["keep"]


def test_blocking_get_wakes_on_put_and_on_prefix_delete(client):
    client.kv.put("cfg/a", "1")
    index, _ = client.kv.get("cfg/a")
    with futures.ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(client.kv.get, "cfg/a", index=index, wait="10s")
        client.kv.put("unrelated", "x")  # must not wake the watch on cfg/a
        client.kv.put("cfg/a", "2")
        new_index, entry = waiting.result(timeout=5)
        assert int(new_index) > int(index) and entry["Value"] == b"2"
        index, _ = client.kv.get("cfg/", recurse=True)
        waiting = pool.submit(client.kv.get, "cfg/", index=index, wait="10s", recurse=True)
        client.kv.delete("cfg/a")
        new_index, entries = waiting.result(timeout=5)
        assert int(new_index) > int(index) and entries is None


def test_bad_kv_requests(registry):
    assert requests.put(f"{registry.url}/v1/kv/", data=b"x", timeout=5).status_code == 400
    assert requests.put(f"{registry.url}/v1/kv/k?cas=abc", data=b"x", timeout=5).status_code == 400
    huge = requests.put(f"{registry.url}/v1/kv/big", data=b"x" * (512 * 1024 + 1), timeout=5)
    assert huge.status_code == 413
    assert requests.get(f"{registry.url}/v1/kv/big", timeout=5).status_code == 404


def test_session_lifecycle(client):
    session = client.session.create(name="leader-election", ttl=30)
    _, info = client.session.info(session)
    assert info["Name"] == "leader-election" and info["TTL"] == "30s" and info["Behavior"] == "release"
    assert info["NodeChecks"] == ["serfHealth"] and info["Node"] == "workbench"
    assert [s["ID"] for s in client.session.list()[1]] == [session]
    assert [s["ID"] for s in client.session.node("workbench")[1]] == [session]
    assert client.session.renew(session)["ID"] == session
    assert client.session.destroy(session) is True
    assert client.session.info(session)[1] is None
    with pytest.raises(consul.NotFound, match="not found"):
        client.session.renew(session)


def test_locks_acquire_release_and_contend(client):
    a = client.session.create(name="a", lock_delay=0)
    b = client.session.create(name="b", lock_delay=0)
    assert client.kv.put("service/leader", "a", acquire=a) is True
    assert client.kv.put("service/leader", "b", acquire=b) is False
    _, entry = client.kv.get("service/leader")
    assert entry["Session"] == a and entry["LockIndex"] == 1 and entry["Value"] == b"a"
    assert client.kv.put("service/leader", "b", release=b) is False
    assert client.kv.put("service/leader", "a", release=a) is True
    assert "Session" not in client.kv.get("service/leader")[1]
    assert client.kv.put("service/leader", "b", acquire=b) is True
    assert client.kv.get("service/leader")[1]["LockIndex"] == 2


def test_destroying_a_session_releases_or_deletes_its_keys(client):
    releaser = client.session.create(lock_delay=0)
    deleter = client.session.create(behavior="delete", lock_delay=0)
    client.kv.put("held/r", "1", acquire=releaser)
    client.kv.put("held/d", "1", acquire=deleter)
    client.session.destroy(releaser)
    client.session.destroy(deleter)
    assert "Session" not in client.kv.get("held/r")[1]
    assert client.kv.get("held/d")[1] is None


def test_a_critical_check_invalidates_its_sessions(client):
    client.agent.check.register("alive", check={"ttl": "60s", "status": "passing"}, check_id="alive")
    session = client.session.create(checks=["serfHealth", "alive"], lock_delay=0)
    client.kv.put("lock", "x", acquire=session)
    client.agent.check.ttl_fail("alive")
    assert client.session.info(session)[1] is None
    assert "Session" not in client.kv.get("lock")[1]


def test_session_refuses_critical_or_unknown_checks_and_bad_ttl(registry, client):
    client.agent.check.register("down", check={"ttl": "60s"}, check_id="down")
    for body, status in (({"Checks": ["down"]}, 500), ({"Checks": ["ghost"]}, 500),
                         ({"TTL": "1s"}, 400), ({"Behavior": "explode"}, 400), ({"TTL": "soon"}, 400)):
        resp = requests.put(f"{registry.url}/v1/session/create", json=body, timeout=5)
        assert resp.status_code == status, (body, resp.text)
    assert client.session.list()[1] == []


def test_events_fire_and_list(client):
    index, _ = client.event.list()
    event = client.event.fire("deploy", "v2")
    assert event["Name"] == "deploy" and base64.b64decode(event["Payload"]) == b"v2"
    client.event.fire("rollback")
    _, events = client.event.list(name="deploy")
    assert [e["ID"] for e in events] == [event["ID"]]
    new_index, everything = client.event.list(index=index, wait="1s")
    assert int(new_index) > int(index) and [e["Name"] for e in everything] == ["deploy", "rollback"]


# -- pure logic on a fake clock -----------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_session_ttl_expires_after_twice_the_ttl_and_renew_extends_it():
    clock = FakeClock()
    kv = KVStore(Indexes(), clock)
    session = kv.create_session("n", ttl=10.0, lock_delay=0)
    kv.put("k", b"v", acquire=session.id)
    clock.now = 15.0
    kv.renew_session(session.id)
    clock.now = 34.0
    assert kv.expire_sessions(clock.now) == []
    clock.now = 35.0
    assert kv.expire_sessions(clock.now) == [session.id]
    assert kv.entries["k"].session is None


def test_lock_delay_blocks_reacquisition_after_invalidation_only():
    clock = FakeClock()
    kv = KVStore(Indexes(), clock)
    first = kv.create_session("n", lock_delay=15.0)
    kv.put("k", b"", acquire=first.id)
    kv.destroy_session(first.id)
    second = kv.create_session("n", lock_delay=15.0)
    clock.now = 14.9
    assert kv.put("k", b"", acquire=second.id) is False
    clock.now = 15.0
    assert kv.put("k", b"", acquire=second.id) is True
    assert kv.put("k", b"", release=second.id) is True  # an explicit release starts no delay
    third = kv.create_session("n", lock_delay=15.0)
    assert kv.put("k", b"", acquire=third.id) is True


def test_kv_store_rejections_change_nothing():
    kv = KVStore(Indexes(), FakeClock())
    before = kv.indexes.index
    with pytest.raises(KVError):
        kv.put("", b"x")
    with pytest.raises(KVError) as err:
        kv.put("k", b"x" * (512 * 1024 + 1))
    assert err.value.status == 413
    with pytest.raises(KVError):
        kv.put("k", b"x", acquire="no-such-session")
    assert kv.entries == {} and kv.indexes.index == before


@contextlib.contextmanager
def _refused(message: str, status: int = 400):
    """Expect a KVError with exactly ``message`` and HTTP ``status``."""
    with pytest.raises(KVError, match=f"^{re.escape(message)}$") as refused:
        yield
    assert refused.value.status == status


def test_kv_refusals_have_consuls_words_and_statuses():
    kv = KVStore(Indexes(), FakeClock())
    kv.put("k", b"x" * MAX_VALUE)  # exactly the limit is accepted
    with _refused(f"Value exceeds {MAX_VALUE} byte limit", 413):
        kv.put("k", b"x" * (MAX_VALUE + 1))
    with _refused("Missing key name"):
        kv.put("", b"x")
    session = kv.create_session("n")
    with _refused("Conflicting flags: acquire=true&release=true"):
        kv.put("k", b"x", acquire=session.id, release=session.id)
    with _refused("Conflicting flags: cas=3&recurse=true"):
        kv.delete("k", recurse=True, cas=3)
    with _refused("Invalid Behavior setting 'keep'"):
        kv.create_session("n", behavior="keep")
    with _refused("Invalid Session TTL '24h0m0.001s', must be between [10s=24h0m0s]"):
        kv.create_session("n", ttl=86400.001)
    kv.create_session("n", ttl=86400.0)  # the upper bound itself is accepted
    with _refused("Session id 'nope' not found", 404):
        kv.renew_session("nope")


def test_keys_stop_at_the_first_separator_after_the_prefix():
    kv = KVStore(Indexes(), FakeClock())
    for key in ("a/b/c/d", "a/b/e", "a/f", "b"):
        kv.put(key, b"")
    assert kv.keys("a/", "/") == ["a/b/", "a/f"]
    assert kv.keys("a/", None) == ["a/b/c/d", "a/b/e", "a/f"]
    kv.delete("a")  # not recursive by default: nothing under a/ goes
    assert kv.keys("", "/") == ["a/", "b"]


def test_a_put_over_a_tombstone_forgets_it_and_a_release_clears_the_holder():
    kv = KVStore(Indexes(), FakeClock())
    kv.put("k", b"1")
    kv.delete("k")
    assert "k" in kv.tombstones
    kv.put("k", b"2")
    assert kv.tombstones == {}
    session = kv.create_session("n", lock_delay=0)
    kv.put("k", b"3", acquire=session.id)
    kv.put("k", b"4", release=session.id)
    assert kv.entries["k"].session is None and kv.entries["k"].lock_index == 1


def test_a_session_is_shown_as_consul_shows_it():
    clock = FakeClock()
    clock.now = 5.0
    kv = KVStore(Indexes(), clock)
    plain = kv.create_session("n")
    assert plain.to_json() == {
        "ID": plain.id, "Name": "", "Node": "n", "LockDelay": 15_000_000_000, "Behavior": "release",
        "TTL": "", "NodeChecks": ["serfHealth"], "ServiceChecks": None, "CreateIndex": 1, "ModifyIndex": 1}
    timed = kv.create_session("n", name="leader", lock_delay=0.5, behavior="delete", ttl=30.0,
                              node_checks=[], service_checks=[{"ID": "web-check"}])
    assert timed.to_json() == {
        "ID": timed.id, "Name": "leader", "Node": "n", "LockDelay": 500_000_000, "Behavior": "delete",
        "TTL": "30s", "NodeChecks": [], "ServiceChecks": [{"ID": "web-check"}], "CreateIndex": 2,
        "ModifyIndex": 2}
    assert timed.expires_at == 65.0 and plain.expires_at is None  # twice the TTL from now


def test_destroying_a_session_stamps_what_it_held_with_its_own_index():
    kv = KVStore(Indexes(), FakeClock())
    releasing, deleting = kv.create_session("n", lock_delay=0), kv.create_session("n", behavior="delete")
    kv.put("kept", b"", acquire=releasing.id)
    kv.put("gone", b"", acquire=deleting.id)
    assert kv.destroy_session("nope") is False
    assert kv.destroy_session(releasing.id) is True
    assert kv.entries["kept"].modify_index == kv.indexes.index == kv.indexes.table("kvs", "sessions")
    assert kv.destroy_session(deleting.id) is True
    assert kv.tombstones == {"gone": kv.indexes.index} and kv.indexes.table("kvs") == kv.indexes.index
    lone = kv.create_session("n")
    kvs_before = kv.indexes.table("kvs")
    kv.destroy_session(lone.id)  # it held nothing: the KV table is untouched
    assert kv.indexes.table("kvs") == kvs_before < kv.indexes.table("sessions")


def test_the_sessions_on_a_check_are_found_on_every_node_they_are_on():
    kv = KVStore(Indexes(), FakeClock())
    elsewhere = kv.create_session("other")
    by_node = kv.create_session("n")
    by_service = kv.create_session("n", node_checks=[], service_checks=[{"ID": "web"}])
    assert elsewhere.id not in kv.sessions_on_check("n", "serfHealth")
    assert kv.sessions_on_check("n", "serfHealth") == [by_node.id]
    assert kv.sessions_on_check("n", "web") == [by_service.id]
