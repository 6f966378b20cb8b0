"""Hosts on one machine: Linux network namespaces joined by a bridge, for a mesh whose instances
run as processes on different "machines" (root only).

``Hosts(3)`` makes three network namespaces, each with its own loopback and one interface (a veth
pair whose other end is on a bridge in the machine's own namespace), on a /24 of 10.213.0.0/16
that no interface here uses yet. The bridge's address is the gateway, where the notebook's side —
the registry, the OTLP receiver, the callers — listens and calls from. ``Mesh(..., mode="processes",
hosts=hosts)`` starts each instance inside a namespace (``ip netns exec``), round robin, listening
on that host's address; calls, health checks and registry traffic cross real network paths.

:meth:`Hosts.disconnect` takes a host's link down — a real partition: its instances can reach
nothing and nothing reaches them, the registry's checks included — and :meth:`Hosts.reconnect`
brings it back. Only the namespaces, links and addresses a ``Hosts`` made are ever touched; their
names carry the process id (``wb<pid, hex>x<n>h1``, ...), and :func:`sweep_leftovers` removes those of
processes that no longer exist (a test killed before it could clean up). ``tc netem`` (added
latency) is not used: the kernels this runs on lack the qdisc. Latency comes instead from a
delaying TCP proxy (:class:`mesh.processes.delay_proxy.DelayProxy`) on the gateway, in front of each
instance on a host named in ``Hosts(latency={"h2": 0.05})``: such an instance registers the
proxy's address, so every call to it — and the registry's checks — crosses the added delay,
which :meth:`Hosts.set_latency` changes at any time.

Written here, on the ``ip`` command, because no maintained Python library manages namespaces and
veth pairs without pulling in a daemon, and ``ip`` is what a learner would type.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

import psutil

__all__ = ["Host", "Hosts", "HostsUnavailable", "sweep_leftovers"]

POOL = ipaddress.ip_network("10.213.0.0/16")
_NAME = re.compile(r"wb([0-9a-f]+)x[0-9a-f]+(?:br|h\d+r?)$")
_made = itertools.count(1)


class HostsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no ``ip``, or the kernel refuses)."""


@dataclass(frozen=True)
class Host:
    name: str  # h1, h2, ...
    namespace: str
    address: str
    link: str  # the veth end on the bridge, in the machine's namespace


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def available() -> str:
    """Return "" if hosts can be made here, else why not."""
    if shutil.which("ip") is None:
        return "the `ip` command is missing (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return ""


def sweep_leftovers() -> list[str]:
    """Remove the namespaces and links left by ``Hosts`` of processes that have exited."""
    removed = []
    namespaces = [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line]
    links = re.findall(r"^\d+: ([^:@]+)", _ip("-o", "link", "show", check=False).stdout, re.M)
    for name in namespaces + links:
        found = _NAME.match(name)
        if found and not psutil.pid_exists(int(found.group(1), 16)):
            kind = "netns" if name in namespaces else "link"
            _ip(*(("netns", "delete", name) if kind == "netns" else ("link", "delete", name)), check=False)
            removed.append(name)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    used = [ipaddress.ip_interface(a).network for a in
            re.findall(r"inet (\S+)", _ip("-o", "-4", "addr", "show", check=False).stdout)]
    for subnet in POOL.subnets(new_prefix=24):
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise HostsUnavailable("no free /24 left in 10.213.0.0/16")


class Hosts:
    """``count`` hosts as network namespaces on one bridge; :meth:`close` (or ``with``) removes them."""

    def __init__(self, count: int = 2, latency: dict[str, float] | None = None):
        why = available()
        if why:
            raise HostsUnavailable(why)
        if not 1 <= count <= 50:
            raise ValueError(f"count must be between 1 and 50, got {count}")
        self._latency = dict(latency or {})
        unknown = set(self._latency) - {f"h{n}" for n in range(1, count + 1)}
        if unknown or any(not 0 <= v <= 10 for v in self._latency.values()):
            raise ValueError(f"latency must map hosts h1..h{count} to seconds in [0, 10], got {latency!r}")
        sweep_leftovers()
        # wb<pid in hex>x<which Hosts of this process>: unique while the process lives, and short
        # enough for Linux's 15-character interface names (wb400000x3h50r)
        self._tag = f"wb{os.getpid():x}x{next(_made) % 256:x}"
        self.bridge = f"{self._tag}br"
        self.subnet = _free_subnet()
        addresses = list(self.subnet.hosts())
        self.gateway = str(addresses[0])
        self.hosts: list[Host] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for n in range(1, count + 1):
                self.hosts.append(self._make(n, str(addresses[n])))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self.close()
            said = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
            raise HostsUnavailable(f"could not make the hosts: {said}") from None

    def _make(self, n: int, address: str) -> Host:
        namespace, link = f"{self._tag}h{n}", f"{self._tag}h{n}r"
        _ip("netns", "add", namespace)
        try:
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            for args in (("addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0"),
                         ("link", "set", "eth0", "up"), ("link", "set", "lo", "up")):
                _ip("-n", namespace, *args)
        except BaseException:
            _ip("netns", "delete", namespace, check=False)
            raise
        return Host(f"h{n}", namespace, address, link)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if name in (host.name, host.namespace, host.address):
                return host
        raise KeyError(f"no host {name!r}; there are {[h.name for h in self.hosts]}")

    def delayed(self, name: str) -> bool:
        """Whether calls to the instances on host ``name`` pass through a delaying proxy."""
        return self.host(name).name in self._latency

    def latency(self, name: str) -> float:
        """The latency added, each way, to every call to an instance on host ``name``."""
        return self._latency.get(self.host(name).name, 0.0)

    def set_latency(self, name: str, seconds: float) -> None:
        """Change the latency added to calls to host ``name`` (one named in ``latency=`` when the
        hosts were made: only its instances have the proxy on their path)."""
        host = self.host(name)
        if host.name not in self._latency:
            raise ValueError(f"{host.name} has no delaying proxy on its path: name it in Hosts(latency=...)")
        if not 0 <= seconds <= 10:
            raise ValueError(f"latency must be between 0 and 10 s, got {seconds}")
        self._latency[host.name] = float(seconds)

    def disconnect(self, name: str) -> None:
        """Take a host's link down: nothing reaches it, and it reaches nothing."""
        _ip("link", "set", self.host(name).link, "down")

    def reconnect(self, name: str) -> None:
        _ip("link", "set", self.host(name).link, "up")

    def run(self, name: str, command: list[str]) -> list[str]:
        """The command that runs ``command`` on host ``name``."""
        return ["ip", "netns", "exec", self.host(name).namespace, *command]

    def close(self) -> None:
        """Remove the namespaces, their links and the bridge (end the processes in them first)."""
        for host in self.hosts:
            _ip("netns", "delete", host.namespace, check=False)  # takes its veth pair with it
        _ip("link", "delete", self.bridge, check=False)
        self.hosts = []

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Hosts {[(h.name, h.address) for h in self.hosts]} via {self.bridge} {self.gateway}>"
