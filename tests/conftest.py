"""Shared fixtures: a running embedded registry, its py-consul client, the mesh's modes, and leak probes."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import consul
import psutil
import pytest

from mesh.registry import Registry

#: The mesh's two modes. A test that asks for ``mode`` runs in the kernel; marked with
#: ``@BOTH_MODES`` it runs once with instances in the kernel and once with them as OS processes
#: (``Mesh(mode="processes")``), and every fixture that asks for ``mode`` follows it.
MODES = ("kernel", "processes")
BOTH_MODES = pytest.mark.parametrize("mode", MODES)


#: The order the long files are handed out in. Under two workers, pytest-xdist hands out whole
#: files in collection order (the Makefile turns its reordering by test count off), one at a
#: time to whichever worker runs short. The two longest (grading every exercise notebook, about
#: 340 s; the lessons in Chromium, about 380 s) would start together and each starve the other's
#: timing bounds (a graded shop's latency, a replay's colours): so the grading starts first, the
#: other worker runs about as long a run of mesh files meanwhile, and takes the browser when it is
#: done — by which time the grading is nearly over. The short files fill in around them.
SLOWEST_FIRST = ("test_exercises.py", "test_resilience_mesh.py", "test_process_mode.py",
                 "test_live_workbench.py", "test_sim_validation.py", "test_architecture.py",
                 "test_releases.py", "test_mesh.py", "test_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture
def mode() -> str:
    return "kernel"


def instance_processes() -> list[psutil.Process]:
    """This session's instance processes (``python -m mesh.serve ...``) still running."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "mesh.serve" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="module", autouse=True)
def no_instance_process_left_behind(request) -> Iterator[None]:
    """After each module's tests — passed or failed — and its fixtures, no instance process of
    ``Mesh(mode="processes")`` may be left running; any found is killed and the module errs."""
    yield
    left = {}
    for process in instance_processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            left[process.pid] = " ".join(process.cmdline()[3:5])  # the service and its number
            process.kill()
    if left:
        pytest.fail(f"{request.module.__name__} left {len(left)} instance process(es) running: "
                    + ", ".join(f"{what} (pid {pid})" for pid, what in left.items()), pytrace=False)


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    """Close the figures a test drew: pyplot keeps every figure until closed, and warns (an error
    here) past twenty, whichever test happens to draw the twenty-first."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@pytest.fixture
def registry() -> Iterator[Registry]:
    with Registry(seed=7) as reg:
        yield reg


@pytest.fixture
def client(registry: Registry) -> Iterator[consul.Consul]:
    c = registry.client()
    yield c
    c.http.session.close()


def eventually(condition: Callable[[], bool], timeout: float = 10.0, poll: float = 0.02) -> float:
    """Wait for ``condition()``; return the seconds it took, or fail the test."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(poll)
    return time.monotonic() - start


def listening_ports() -> set[int]:
    """Return the TCP ports this process listens on."""
    return {c.laddr.port for c in psutil.Process().net_connections("tcp") if c.status == "LISTEN"}


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpListener:
    """A real TCP server socket that accepts and drops connections, for TCP checks."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tcp_listener() -> Iterator[TcpListener]:
    listener = TcpListener()
    yield listener
    listener.close()
