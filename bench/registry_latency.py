"""Measure how quickly the registry tells watchers about a change, over HTTP and over DNS.

    python bench/registry_latency.py --wakeups 100 --kills 20

1. Blocking-query wake-up: a thread holds ``GET /v1/health/service/bench?index=N&wait=30s``; the
   main thread registers an instance; we time from just before the write to the watcher's answer.
2. Killed instance leaving DNS: an instance with a TCP check (interval 1 s, timeout 1 s) is
   passing; its listener closes; we time until ``bench.service.consul`` answers NXDOMAIN.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time

import consul
import dns.resolver
from tqdm.auto import tqdm

from mesh.registry import Registry


def wakeup(c: consul.Consul, n: int) -> float:
    index, _ = c.health.service("bench")
    answered = threading.Event()
    times: dict[str, float] = {}

    def watch() -> None:
        c2 = consul.Consul(host=c.http.host, port=c.http.port)
        c2.health.service("bench", index=index, wait="30s")
        times["answer"] = time.perf_counter()
        answered.set()
        c2.http.session.close()

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.05)  # let the query reach the registry and block
    times["write"] = time.perf_counter()
    c.agent.service.register("bench", service_id=f"bench-{n}", port=1)
    answered.wait(10)
    thread.join()
    c.agent.service.deregister(f"bench-{n}")
    return times["answer"] - times["write"]


def dns_drop(c: consul.Consul, resolver: dns.resolver.Resolver, n: int) -> float:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    c.agent.service.register("bench", service_id=f"dns-{n}", address="127.0.0.1", port=port,
                             check=consul.Check.tcp("127.0.0.1", port, "1s", timeout="1s"))

    def answers() -> bool:
        try:
            resolver.resolve("bench.service.consul", "A")
            return True
        except dns.resolver.NXDOMAIN:
            return False

    while not answers():
        time.sleep(0.01)
    killed = time.perf_counter()
    listener.close()
    while answers():
        time.sleep(0.005)
    elapsed = time.perf_counter() - killed
    c.agent.service.deregister(f"dns-{n}")
    return elapsed


def summary(name: str, values: list[float], unit: float = 1.0, label: str = "s") -> str:
    values = sorted(v * unit for v in values)
    return (f"{name:<40} median {statistics.median(values):.3f} {label}   "
            f"p90 {values[int(0.9 * (len(values) - 1))]:.3f} {label}   max {values[-1]:.3f} {label}"
            f"   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wakeups", type=int, default=100)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    with Registry(dns_port=0) as registry:
        c = registry.client()
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], registry.dns_port, 2.0
        wakes = [wakeup(c, n) for n in tqdm(range(args.wakeups), desc="blocking-query wake-ups")]
        drops = [dns_drop(c, resolver, n) for n in tqdm(range(args.kills), desc="killed instances")]
    print(summary("blocking-query wake-up after a change", wakes, 1e3, "ms"))
    print(summary("killed instance leaving DNS answers", drops))


if __name__ == "__main__":
    main()
