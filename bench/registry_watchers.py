"""Measure the registry under many watchers of one big KV prefix, and after many deletes.

    python bench/registry_watchers.py --keys 5000 --watchers 1000 --deletes 100000

The registry runs as its own process (``python -m mesh.registry``), so its memory is its own.

1. Watchers: ``--keys`` keys under ``fleet/``; ``--watchers`` blocking ``GET /v1/kv/fleet/?recurse``
   queries held at once (aiohttp, one connection each); one PUT wakes them all. We time until every
   watcher has its answer, time a ``GET /v1/status/leader`` sent right after the PUT (a health
   check due then waits as long: checks share the registry's event loop), and read the registry's
   RSS before the watchers and after they were answered.
2. Tombstones: ``--deletes`` keys are written and deleted; we time GETs of an unrelated key
   before and after (the median of 200).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import aiohttp
import psutil
import requests
from tqdm.auto import tqdm

sys.path.insert(0, ".")  # run from the repository's root, as the README says


def start_registry(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "mesh.registry", "--http-port", str(port),
                                "--dns-port", "-1"], stdout=subprocess.PIPE, text=True)
    process.stdout.readline()  # "registry: HTTP API on ..." once it listens
    return process


def rss_mb(process: subprocess.Popen) -> float:
    return psutil.Process(process.pid).memory_info().rss / 2**20


async def watchers(url: str, count: int, keys: int) -> tuple[float, float, int]:
    index = int(requests.get(f"{url}/v1/kv/fleet/", params={"recurse": ""}, timeout=60)
                .headers["X-Consul-Index"])
    connector = aiohttp.TCPConnector(limit=count + 10)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def watch() -> int:
            async with session.get(f"{url}/v1/kv/fleet/",
                                   params={"recurse": "", "index": str(index), "wait": "120s"}) as answer:
                return len(await answer.json())

        tasks = [asyncio.ensure_future(watch()) for _ in range(count)]
        await asyncio.sleep(2 + count / 500)  # let every query reach the registry and block
        start = time.perf_counter()
        async with session.put(f"{url}/v1/kv/fleet/00007", data=b"changed"):
            pass
        async with session.get(f"{url}/v1/status/leader"):
            leader = time.perf_counter() - start
        sizes = await asyncio.gather(*tasks)
        everyone = time.perf_counter() - start
    assert set(sizes) == {keys}, set(sizes)
    return everyone, leader, len(sizes)


def median_get(url: str, key: str, n: int = 200) -> float:
    session = requests.Session()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.get(f"{url}/v1/kv/{key}", timeout=30)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--deletes", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=18599)
    args = parser.parse_args()
    registry = start_registry(args.port)
    url = f"http://127.0.0.1:{args.port}"
    try:
        session = requests.Session()
        for n in tqdm(range(args.keys), desc="keys"):
            session.put(f"{url}/v1/kv/fleet/{n:05}", data=f"v{n}", timeout=30)
        before = rss_mb(registry)
        everyone, leader, answered = asyncio.run(watchers(url, args.watchers, args.keys))
        after = rss_mb(registry)
        print(f"{answered} watchers of {args.keys} keys: all answered {everyone:.2f} s after the PUT; "
              f"/v1/status/leader took {leader * 1e3:.0f} ms; registry RSS {before:.0f} -> {after:.0f} MB "
              f"(+{after - before:.0f})")
        session.put(f"{url}/v1/kv/config/a", data="1", timeout=30)
        clean = median_get(url, "config/a")
        for n in tqdm(range(args.deletes), desc="put+delete"):
            session.put(f"{url}/v1/kv/gone/{n}", data="x", timeout=30)
            session.delete(f"{url}/v1/kv/gone/{n}", timeout=30)
        buried = median_get(url, "config/a")
        print(f"GET of an unrelated key: {clean * 1e3:.2f} ms before, {buried * 1e3:.2f} ms after "
              f"{args.deletes:,} deletes ({buried / clean:.2f}x)")
    finally:
        registry.terminate()
        registry.wait(10)


if __name__ == "__main__":
    main()
