"""Lesson 02 (RPC and protobuf): plain RPC and REST side by side, outside the mesh (section 6.6.2).

- :class:`LocalServer`: one real ``grpc.server`` for a servicer on ``127.0.0.1`` (ephemeral port,
  ``SO_REUSEPORT`` off), started at once, stopped by :meth:`LocalServer.stop` or its ``with``
  block. Making another of the same name — re-running a notebook cell — stops the previous one.
- :class:`RestGreeter`: the Greeter as a REST resource, ``GET /hello?name=...`` answering JSON,
  on the standard library's HTTP/1.1 server; each answer says which client port asked, so a
  learner can count the connections REST calls open.
- :func:`call_rest`: call such a resource ``n`` times, each on a new connection or all on one
  kept alive.
- :func:`converse`: drive a bidirectional stream with requests sent at a pace, and record when
  each request left and each answer arrived.
- :func:`connections_to`: this process's established TCP connections to a port (how one sees that
  every call of a gRPC channel, concurrent or not, shares one HTTP/2 connection).
- :func:`proto_source`: the text of one of the workbench's ``.proto`` files, wherever the notebook runs.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import grpc
import matplotlib.pyplot as plt
import psutil

from mesh.client.servers import listen, new_server
from mesh.core.lifetime import ByName

__all__ = ["LocalServer", "RestGreeter", "call_rest", "connections_to", "converse", "plot_conversation",
           "proto_source"]

PROTOS = Path(__file__).resolve().parent.parent / "protos"


def proto_source(name: str) -> str:
    """Return the text of ``protos/<name>.proto`` (found from this package, not from the notebook's
    working directory)."""
    path = PROTOS / f"{name}.proto"
    if not path.is_file():
        known = sorted(p.stem for p in PROTOS.glob("*.proto"))
        raise ValueError(f"no protos/{name}.proto; the workbench has {known}")
    return path.read_text(encoding="utf-8")

_running = ByName()


class LocalServer:
    """A gRPC server for one servicer on loopback: ``LocalServer(add_XServicer_to_server, XServicer())``."""

    def __init__(self, add_servicer: Callable[[object, grpc.Server], None], servicer: object,
                 name: str = "local", max_workers: int = 8):
        _running.replace(name)
        self.name = name
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{name}-rpc")
        self._server = new_server(self._pool)
        add_servicer(servicer, self._server)
        try:
            self.port = listen(self._server, who=name)
        except OSError:
            self._pool.shutdown(wait=False)
            raise
        self._server.start()
        _running.claim(name, self)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (calls in flight get ``grace`` seconds) and end the server's threads."""
        self.stopping.set()
        self._server.stop(grace).wait()
        self._pool.shutdown(wait=True)
        _running.release(self.name, self)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalServer({self.name!r} on {self.address})"


def connections_to(port: int) -> int:
    """Return how many established TCP connections this process has open to ``127.0.0.1:port``."""
    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


class _HelloHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/hello":
            self._answer(404, {"error": f"no resource {url.path}"})
            return
        name = parse_qs(url.query).get("name", ["Jason"])[0]
        self._answer(200, {"id": 1234, "name": name, "age": 24, "title": ["apple", "purple"],
                           "client_port": self.client_address[1]})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # keep the notebook quiet
        pass


class RestGreeter:
    """The Greeter as ``GET http://127.0.0.1:<port>/hello?name=...`` returning JSON."""

    def __init__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _HelloHandler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest-greeter", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hello"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RestGreeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def call_rest(url: str, calls: int, name: str = "Jason", keep_alive: bool = False) -> list[dict]:
    """GET ``url?name=...`` ``calls`` times; return the JSON answers.

    Without ``keep_alive`` every call opens its own connection (as a client that sends
    ``Connection: close`` does); with it, all calls share one HTTP/1.1 connection, one at a time.
    """
    target = urlparse(url)
    answers = []
    connection = None
    try:
        for _ in range(calls):
            if connection is None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            headers = {} if keep_alive else {"Connection": "close"}
            connection.request("GET", f"{target.path}?name={name}", headers=headers)
            response = connection.getresponse()
            answers.append(json.loads(response.read()))
            if not keep_alive:
                connection.close()
                connection = None
    finally:
        if connection is not None:
            connection.close()
    return answers


def converse(method: Callable[..., Iterable], requests: Iterable, gap: float, timeout: float = 10.0,
             clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Call a stream-stream ``method`` sending ``requests`` ``gap`` seconds apart; return one row
    per message, in time order: ``{"t": seconds since the start, "direction": "sent"|"received",
    "message": ...}``."""
    start = clock()
    rows: list[dict] = []
    lock = threading.Lock()

    def paced() -> Iterator:
        for n, request in enumerate(requests):
            if n:
                time.sleep(gap)
            with lock:
                rows.append({"t": clock() - start, "direction": "sent", "message": request})
            yield request

    for answer in method(paced(), timeout=timeout):
        with lock:
            rows.append({"t": clock() - start, "direction": "received", "message": answer})
    return sorted(rows, key=lambda row: row["t"])


def plot_conversation(rows: Sequence[dict[str, Any]], ax=None):
    """Draw a bidirectional stream as a timeline: requests sent above, answers received below
    (rows from :func:`converse`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.4))
    ax.set_title("a bidirectional stream: each answer comes while the client is still sending", fontsize=10)
    for row in rows:
        up = row["direction"] == "sent"
        seq = getattr(row["message"], "seq", "")
        ax.plot([row["t"] * 1e3] * 2, [0, 1 if up else -1], color="#1565c0" if up else "#2e7d32")
        label = f"{'sent' if up else 'got'} {seq}"
        ax.text(row["t"] * 1e3, 1.08 if up else -1.25, label, ha="center", fontsize=8)
    ax.axhline(0, color="#9e9e9e", linewidth=0.8)
    ax.set_ylim(-1.6, 1.5)
    ax.set_yticks([])
    ax.set_xlabel("ms since the call started")
    return ax

