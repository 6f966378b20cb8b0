"""What a live console costs the mesh it watches: goodput, latency and CPU at 200 calls/s, with and
without a :class:`lessons.console.MeshConsole` refreshing, and the refresh rate the console reaches.

    python bench/console_overhead.py --seconds 12 --rounds 3

It runs where a learner's console runs: in a real IPython kernel (started with jupyter_client), so
every refresh serialises its widget and chart updates and sends them on the kernel's channels as
it would to JupyterLab (no browser draws them here). In that kernel, the Greeter mesh (three
replicas, p2c, its servers and clients all in the kernel's process) takes 200 calls/s of open-loop
load, alternately bare (a :class:`mesh.SteadyLoad` alone) and with a console displayed whose own
load sends the same calls at the same rate, in the same order each round so drift on a shared
machine hits both alike. Goodput counts the calls answered OK in each phase after a one-second
warm-up; CPU is the kernel process's CPU time over the same span.
"""

from __future__ import annotations

import argparse
import json
import queue
import textwrap
from pathlib import Path

from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parent.parent

IN_KERNEL = """
import json, time
import numpy as np
from IPython.display import display
from mesh import Mesh, SteadyLoad
from lessons.console import MeshConsole, entry_call

RATE, SECONDS, WARM = 200, {seconds}, 1.0

def measure(load, seconds):
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    since = load.now - seconds + WARM
    done = [r for r in load.recent(seconds) if r.start >= since and r.start <= load.now - 2.0]
    ok = [r.latency for r in done if r.ok]
    span = seconds - WARM - 2.0
    return dict(goodput=len(ok) / span, sent=len(done) / span, ok_share=len(ok) / max(1, len(done)),
                p50=float(np.percentile(ok, 50)) * 1e3, p99=float(np.percentile(ok, 99)) * 1e3,
                cpu=cpu / wall)

results = []
with Mesh({{"greeter": 3}}, name="bench-console", seed=1) as mesh:
    mesh.wait_until_passing()
    mesh.set_policy("greeter", balancer="p2c")
    method, request, _ = entry_call(mesh)
    for round_ in range({rounds}):
        load = SteadyLoad(method, request, RATE, np.random.default_rng(round_))
        results.append(dict(phase="bare", **measure(load, SECONDS)))
        load.stop()
        console = MeshConsole(mesh, rate=RATE, seed=round_)
        display(console)
        before = console.refreshes
        row = measure(console.load, SECONDS)
        row["refresh_hz"] = (console.refreshes - before) / SECONDS
        start = time.perf_counter()
        for _ in range(20):  # what one refresh costs, load still running
            console.refresh_now()
        row["refresh_ms"] = (time.perf_counter() - start) / 20 * 1e3
        results.append(dict(phase="console", **row))
        console.close()
print("RESULTS " + json.dumps(results))
"""


def run_in_kernel(code: str, timeout: float) -> list[dict]:
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        message_id = client.execute(code)
        lines = []
        while True:
            try:
                message = client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise SystemExit("the kernel went quiet for too long") from None
            if message["parent_header"].get("msg_id") != message_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                lines.append(content["text"])
            elif kind == "error":
                raise SystemExit("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        for line in "".join(lines).splitlines():
            if line.startswith("RESULTS "):
                return json.loads(line[len("RESULTS "):])
        raise SystemExit("no results from the kernel:\n" + "".join(lines))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each phase (>= 5)")
    parser.add_argument("--rounds", type=int, default=3, help="bare/console pairs")
    args = parser.parse_args()
    if args.seconds < 5:
        parser.error("--seconds must be at least 5 (one second of warm-up and two of settling)")
    code = textwrap.dedent(IN_KERNEL).format(seconds=args.seconds, rounds=args.rounds)
    rows = run_in_kernel(code, timeout=args.seconds * 4 + 60)
    print(f"{'phase':8} {'sent/s':>7} {'goodput/s':>9} {'OK':>6} {'p50 ms':>7} {'p99 ms':>7} {'CPU':>5}"
          f" {'refresh Hz':>10}")
    for row in rows:
        hz = f"{row['refresh_hz']:10.2f}" if "refresh_hz" in row else ""
        print(f"{row['phase']:8} {row['sent']:7.1f} {row['goodput']:9.1f} {row['ok_share']:6.1%} "
              f"{row['p50']:7.2f} {row['p99']:7.2f} {row['cpu']:5.0%} {hz}")

    def total(phase: str, key: str) -> float:
        return sum(r[key] for r in rows if r["phase"] == phase)

    bare, watched = total("bare", "goodput"), total("console", "goodput")
    print(f"goodput with the console / without: {watched / bare:.3f} "
          f"(cost {1 - watched / bare:+.1%}; budget 10%)")
    cpu_bare, cpu_watched = total("bare", "cpu"), total("console", "cpu")
    print(f"kernel CPU with the console / without: {cpu_watched / cpu_bare:.2f}x")
    print(f"refresh rate while the load ran: {total('console', 'refresh_hz') / args.rounds:.2f} Hz "
          f"(asked: 2 Hz); one refresh takes {total('console', 'refresh_ms') / args.rounds:.1f} ms")


if __name__ == "__main__":
    main()
