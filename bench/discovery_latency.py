"""Measure how fast the mesh comes up and how fast discovery drops a killed instance.

    python bench/discovery_latency.py --trials 10

For each trial: time from ``Mesh({"greeter": 3})`` to all three instances listed by
``/v1/health/service/greeter?passing``; then time from ``mesh.kill`` to the killed instance leaving
that list. The checks run every 1 s with a 1 s timeout and Consul's random first-run stagger, so
the expected figures are about 0.5 s (start) and 0.5 s (drop) on average, at most about 1 s each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tqdm.auto import tqdm

from mesh import Mesh


def passing_ids(mesh: Mesh) -> set[str]:
    _, entries = mesh.consul.health.service("greeter", passing=True)
    return {e["Service"]["ID"] for e in entries}


def trial() -> tuple[float, float]:
    start = time.monotonic()
    with Mesh({"greeter": 3}, name="bench") as mesh:
        mesh.wait_until(lambda: len(passing_ids(mesh)) == 3, poll=0.005)
        up = time.monotonic() - start
        killed = time.monotonic()
        mesh.kill("greeter-2")
        mesh.wait_until(lambda: "greeter-2" not in passing_ids(mesh), poll=0.005)
        down = time.monotonic() - killed
    return up, down


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    return (f"{name:<34} median {statistics.median(values):.3f} s   "
            f"min {values[0]:.3f} s   max {values[-1]:.3f} s   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    ups, downs = [], []
    for _ in tqdm(range(args.trials), desc="trials"):
        up, down = trial()
        ups.append(up)
        downs.append(down)
    print(summary("Mesh(...) to 3 instances passing", ups))
    print(summary("kill to leaving ?passing", downs))


if __name__ == "__main__":
    main()
