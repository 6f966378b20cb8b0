"""Reliability of the registry: churn under concurrent blocking watchers, and bad input of every kind."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent import futures

import pytest
import requests

from mesh.registry import Registry

from .conftest import eventually, thread_names

WRITERS, PER_WRITER, WATCHERS = 8, 25, 20  # 200 instances


class Watcher(threading.Thread):
    """Follow catalog/service/churn with blocking queries; keep every (index, ids) answer."""

    def __init__(self, registry: Registry, stop: threading.Event, number: int):
        super().__init__(name=f"churn-watcher-{number}")
        self.client = registry.client()
        self.stop = stop
        self.seen: list[tuple[int, frozenset[str]]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        index = None
        try:
            while not self.stop.is_set():
                new_index, rows = self.client.catalog.service("churn", index=index, wait="1s")
                self.seen.append((int(new_index), frozenset(r["ServiceID"] for r in rows)))
                index = new_index
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.client.http.session.close()


def _writer(registry: Registry, number: int, deadline: float) -> set[str]:
    """Register this writer's instances, deregister the odd ones; return the ids that stay."""
    c = registry.client()
    try:
        ids = [f"churn-{number}-{i}" for i in range(PER_WRITER)]
        for sid in ids:
            assert c.agent.service.register("churn", service_id=sid, port=10_000 + number * 100)
        for sid in ids[1::2]:
            assert time.monotonic() < deadline, "churn ran past its time bound"
            assert c.agent.service.deregister(sid)
        return set(ids[::2])
    finally:
        c.http.session.close()


@pytest.mark.slow
def test_churn_with_blocking_watchers_loses_and_duplicates_nothing():
    threads_before = thread_names()
    with Registry() as registry:
        stop = threading.Event()
        watchers = [Watcher(registry, stop, n) for n in range(WATCHERS)]
        for w in watchers:
            w.start()
        deadline = time.monotonic() + 60
        with futures.ThreadPoolExecutor(WRITERS, thread_name_prefix="churn-writer") as pool:
            kept = set().union(*pool.map(lambda n: _writer(registry, n, deadline), range(WRITERS)))
        assert len(kept) == WRITERS * ((PER_WRITER + 1) // 2)  # the even-numbered ones stay
        final = frozenset(kept)
        eventually(lambda: all(w.seen and w.seen[-1][1] == final for w in watchers), timeout=10)
        stop.set()
        for w in watchers:
            w.join(10)
        assert not any(w.is_alive() for w in watchers)
        assert [w.error for w in watchers if w.error] == []
        answers: dict[int, frozenset[str]] = {}
        for w in watchers:
            indexes = [i for i, _ in w.seen]
            assert indexes == sorted(indexes), "an index went backwards"
            for (i, ids), (j, later) in zip(w.seen, w.seen[1:], strict=False):
                assert j > i or later == ids, "the content changed without a new index"
            for index, ids in w.seen:
                # Every watcher that saw an index saw the same state at it: no torn or duplicate update.
                assert answers.setdefault(index, ids) == ids
        assert sum(len(w.seen) for w in watchers) > WATCHERS  # they really followed the churn
    eventually(lambda: thread_names() <= threads_before, timeout=5)


# -- bad input ------------------------------------------------------------------------------------
def _snapshot(registry: Registry) -> tuple:
    c = registry.client()
    try:
        return (c.agent.services(), c.agent.checks(), c.catalog.services(), c.kv.get("", recurse=True),
                c.session.list(), c.catalog.nodes())
    finally:
        c.http.session.close()


@pytest.fixture
def seeded(registry, client):
    client.agent.service.register("web", service_id="web-1", port=80, check={"ttl": "60s"})
    client.kv.put("cfg/a", "1")
    return registry


BAD_REQUESTS = [
    ("put", "/v1/agent/service/register", b"{not json", 400),
    ("put", "/v1/agent/service/register", json.dumps({"Name": "x", "Port": "eighty"}).encode(), 400),
    ("put", "/v1/agent/service/register", json.dumps({"Name": "x", "Check": {"TCP": "h:1"}}).encode(), 400),
    ("put", "/v1/agent/service/register", json.dumps(["Name", "x"]).encode(), 400),
    ("put", "/v1/agent/service/register", json.dumps({"Name": "x", "Port": 70000}).encode(), 400),
    ("put", "/v1/agent/service/register", json.dumps({"Tags": ["a"]}).encode(), 400),
    ("put", "/v1/agent/service/register", b'{"Name": "big", "Meta": {"k": "' + b"x" * (1 << 20) + b'"}}',
     413),
    ("put", "/v1/agent/check/register", b"[", 400),
    ("put", "/v1/agent/check/update/service:web-1", json.dumps({"Status": "purple"}).encode(), 400),
    ("put", "/v1/agent/check/deregister/ghost", b"", 404),
    ("put", "/v1/agent/service/deregister/ghost", b"", 404),
    ("put", "/v1/catalog/register", json.dumps({"Node": "n"}).encode(), 400),
    ("put", "/v1/catalog/register", json.dumps({"Address": "1.2.3.4"}).encode(), 400),
    ("put", "/v1/session/create", b"{", 400),
    ("put", "/v1/session/create", json.dumps({"TTL": 5}).encode(), 400),
    ("put", "/v1/kv/cfg/a?cas=-1", b"2", 400),
    ("put", "/v1/kv/huge", b"x" * (512 * 1024 + 1), 413),
    ("get", "/v1/health/service/web?index=abc", b"", 400),
    ("get", "/v1/health/service/web?filter=Service.Port%20%3D%3D", b"", 400),
    ("get", "/v1/no/such/endpoint", b"", 404),
    ("post", "/v1/agent/services", b"", 405),
    ("delete", "/v1/agent/service/register", b"", 405),
    ("get", "/v1/session/create", b"", 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS,
                         ids=[f"{m} {p[:40]} {s}" for m, p, _, s in BAD_REQUESTS])
def test_bad_requests_get_clear_errors_and_change_nothing(seeded, method, path, body, status):
    before = _snapshot(seeded)
    resp = requests.request(method, f"{seeded.url}{path}", data=body, timeout=10)
    assert resp.status_code == status, resp.text
    assert resp.text.strip(), "an error must say what was wrong"
    assert _snapshot(seeded) == before


def test_random_bodies_never_break_the_registry(seeded):
    rng = random.Random(1234)
    endpoints = ["/v1/agent/service/register", "/v1/agent/check/register", "/v1/catalog/register",
                 "/v1/catalog/deregister", "/v1/session/create", "/v1/agent/check/update/service:web-1"]
    before = _snapshot(seeded)
    statuses = set()
    for _ in range(150):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        resp = requests.put(f"{seeded.url}{rng.choice(endpoints)}", data=body, timeout=10)
        statuses.add(resp.status_code)
    assert statuses <= {400, 413}, statuses
    assert _snapshot(seeded) == before
    c = seeded.client()
    assert c.agent.service.register("still-serving", port=1)
    c.http.session.close()
