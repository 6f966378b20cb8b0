"""The delaying TCP proxy that stands in for netem: latency added each way, order and bytes kept,
the delay changed on open connections, and connections cut when it closes."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from mesh.processes.delay_proxy import DelayProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def _round_trip(conn: socket.socket, payload: bytes) -> tuple[bytes, float]:
    started = time.monotonic()
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += conn.recv(65536)
    return got, time.monotonic() - started


def test_latency_is_added_each_way_and_a_change_acts_on_open_connections(echo):
    delay = [0.15]
    proxy = DelayProxy("127.0.0.1", echo, lambda: delay[0])
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            got, took = _round_trip(conn, b"ping")
            assert got == b"ping" and took >= 0.3  # 0.15 s there and 0.15 s back
            delay[0] = 0.4
            assert _round_trip(conn, b"again")[1] >= 0.8
            # many chunks in a row: all bytes, in order, and the delays overlap (a latency, not a
            # bandwidth limit): 20 chunks take about one round trip, not twenty
            delay[0] = 0.1
            payload = b"".join(f"{n:06d}".encode() * 5000 for n in range(20))
            got, took = _round_trip(conn, payload)
            assert got == payload and took >= 0.2
    finally:
        proxy.close()


def test_a_proxy_without_a_target_yet_closes_and_a_closed_proxy_cuts_its_connections(echo):
    proxy = DelayProxy("127.0.0.1", None, lambda: 0.0)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as early:
        assert early.recv(16) == b""  # closed at once: nothing to forward to
    proxy.target = echo
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    try:
        assert _round_trip(conn, b"up")[0] == b"up"
        proxy.close()
        assert conn.recv(16) == b""  # cut
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    finally:
        conn.close()


def test_a_far_side_that_hangs_up_does_not_stall_the_proxy(echo):
    rude = socket.create_server(("127.0.0.1", 0))

    def hang_up():
        for _ in range(2):
            conn, _ = rude.accept()
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    proxy = DelayProxy("127.0.0.1", rude.getsockname(), lambda: 0.01)
    polite = DelayProxy("127.0.0.1", echo, lambda: 0.0)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as conn:
            try:  # far more than the proxy queues: it must keep reading, not stop and let us hang
                for _ in range(200):
                    conn.sendall(b"x" * 65536)
            except TimeoutError:
                pytest.fail("the proxy stopped reading once the far side had hung up")
            except OSError:
                pass  # the proxy hung up too: as good
        with socket.create_connection(("127.0.0.1", polite.port), timeout=5) as conn:
            assert _round_trip(conn, b"still here")[0] == b"still here"  # the shared loop is alive
    finally:
        proxy.close()
        polite.close()
        rude.close()
