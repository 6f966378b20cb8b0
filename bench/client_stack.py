"""Per-call latency of the mesh's full client stack against a raw grpcio stub, same server, one run.

    python bench/client_stack.py --calls 3000

The full stack is ``mesh.client("greeter")`` with discovery (a blocking-query watch), a P2C
balancer, a circuit breaker, retries (3 attempts) with a budget, a per-try timeout, OpenTelemetry
tracing and metrics. The raw stub is ``GreeterStub(grpc.insecure_channel(address))`` to the same
instance. Both make sequential calls, interleaved in short blocks (in a shuffled order each
round) so that drift on a shared machine hits both alike; the ratio is that of the medians, and
the spread of the per-round ratios (25th-75th percentile) shows how far one run can be trusted.
Also measured: calls/s of the closed-loop load generator at saturation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import grpc
import numpy as np

from mesh import Mesh
from mesh.pb import greeter_pb2, greeter_pb2_grpc
from mesh.workload.load import closed_loop

HELLO = greeter_pb2.HelloRequest(name="Jason")


def timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call(HELLO, timeout=5)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per path")
    parser.add_argument("--block", type=int, default=50, help="calls per path per round")
    args = parser.parse_args()
    with Mesh({"greeter": 1}, name="bench", seed=1) as mesh:
        mesh.wait_until_passing()
        mesh.set_policy("greeter", balancer="p2c", max_attempts=3, per_try_timeout=1.0, budget_tokens=10,
                        breaker_failure_rate=50, outlier_errors=5)
        full = mesh.client("greeter").SayHello
        channel = grpc.insecure_channel(mesh.instance("greeter-1").address)
        raw = greeter_pb2_grpc.GreeterStub(channel).SayHello
        raw_with_call = raw.with_call  # what gRPC's interceptor API always uses underneath
        timed(full, 200), timed(raw, 200), timed(raw_with_call, 200)  # warm up every path
        paths = {"stack": full, "plain": raw, "with_call": raw_with_call}
        times: dict[str, list[float]] = {name: [] for name in paths}
        round_ratios = []
        order = np.random.default_rng(0)
        for _ in range(max(1, args.calls // args.block)):
            this_round = {}
            for name in order.permutation(list(paths)):
                this_round[name] = timed(paths[name], args.block)
                times[name] += this_round[name]
            medians = {name: statistics.median(values) for name, values in this_round.items()}
            round_ratios.append(medians["stack"] / medians["plain"])
        stack, plain, plain_with_call = times["stack"], times["plain"], times["with_call"]
        channel.close()
        mesh.tracing.clear()
        users = closed_loop(full, HELLO, users=16, duration=3.0, rng=np.random.default_rng(0))
        users.wait()
        summary = users.summary()
    s, p = statistics.median(stack), statistics.median(plain)
    w = statistics.median(plain_with_call)
    print(f"raw grpcio stub       median {p * 1e6:7.0f} us   p90 {np.percentile(plain, 90) * 1e6:7.0f} us")
    print(f"raw stub .with_call   median {w * 1e6:7.0f} us   (ratio to the plain call {w / p:.2f}x)")
    print(f"full client stack     median {s * 1e6:7.0f} us   p90 {np.percentile(stack, 90) * 1e6:7.0f} us")
    q1, q3 = np.percentile(round_ratios, [25, 75])
    print(f"ratio (median)        {s / p:.2f}x   (n={len(stack)} each; per-round ratios, 25-75%: "
          f"{q1:.2f}-{q3:.2f}x over {len(round_ratios)} rounds)")
    print(f"load generator at saturation (closed loop, 16 users, full stack): "
          f"{summary['throughput']:.0f} calls/s, {summary['ok']} OK of {summary['sent']}")


if __name__ == "__main__":
    main()
