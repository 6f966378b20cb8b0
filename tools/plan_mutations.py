"""Break the call plan on purpose, one plausible bug at a time, and check that the parity test
catches each in both drivers (``make mutations``).

Each mutation replaces one piece of ``mesh/policies/plan.py``; the test
``tests/test_call_plan.py`` then runs in a subprocess, and the rows that fail are counted per
driver. The file is restored afterwards, whatever happens. A mutation that no row catches is a
gap in the test: the tool exits with status 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "mesh" / "policies" / "plan.py"

MUTATIONS = {
    "the failed instance is not avoided": ("            if avoid:\n", "            if False:\n"),
    "no back-off between attempts": ("                yield Wait(delay)\n",
                                     "                yield Wait(0.0)\n"),
    "the breaker is not told of failures": ("                breaker.on_error(duration, status)",
                                            "                pass"),
    "the per-try timeout ignores the deadline": (
        "    return left if per_try is None or per_try > left else per_try",
        "    return per_try if per_try is not None else left"),
    "a retry past the deadline": ("            if delay < left:", "            if True:"),
    "rejections get no fallback": ("    return _fall_back(done, _FALLBACK_REASONS[cause], fallback, request)",
                                   "    return done"),
    "outlier detection counts the candidates, not all instances": (
        "status not in SERVER_ERRORS, len(found))", "status not in SERVER_ERRORS, len(candidates))"),
    "release routing ignored": (
        "versions_for(found, release, route.draw(), key, asked) if routed and found else found", "found"),
    "the budget is not charged": ("                budget.on_failure()", "                pass"),
    "the limiter's wait is skipped": ("        if wait > 0:\n            yield Wait(wait)",
                                      "        if wait > 0:\n            pass"),
    "a call at its deadline still starts": ("    if deadline <= now:", "    if deadline < now:"),
    "a one-attempt call does not report to the balancer": (
        "        route.balancer.on_end(self.instance, route.clock() - self.start, status == OK)\n"
        "        return Done(status, 1, self.instance)",
        "        return Done(status, 1, self.instance)"),
}


def run_parity() -> str:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_call_plan.py"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT).stdout


def main() -> int:
    original = PLAN.read_text()
    missed = []
    try:
        for name, (before, after) in MUTATIONS.items():
            if before not in original:
                raise SystemExit(f"the plan no longer contains the code {name!r} mutates: update {__file__}")
            PLAN.write_text(original.replace(before, after, 1))
            out = run_parity()
            mesh = len(re.findall(r"FAILED \S+\[mesh-", out))
            simulator = len(re.findall(r"FAILED \S+\[simulator-", out))
            print(f"{name:62} rows failing: mesh {mesh:2}, simulator {simulator:2}")
            if not mesh or not simulator:
                missed.append(name)
    finally:
        PLAN.write_text(original)
    if missed:
        print(f"not caught in both drivers: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
