"""Print the mutation score of each module mutmut mutated (``make mutations`` runs it last).

Reads mutmut's own records in ``mutants/<path>.meta``. A mutant is *killed* when a test failed
(or timed out) with it in place, *survived* when every test passed, and *not reached* when no
selected test runs the changed function. The score is killed / (killed + survived + not reached):
a mutant no test reaches counts against the module, as a plausible bug nothing would notice.
Exits with status 1 when the total is under ``--minimum`` percent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, -24, 152, -9, -11}  # a test failed, or the run timed out or crashed
SURVIVED = {0}
NOT_REACHED = {33}


def scores(root: Path) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        tally: Counter = Counter()
        for code in codes.values():
            kind = ("killed" if code in KILLED else "survived" if code in SURVIVED
                    else "not reached" if code in NOT_REACHED else "not run")
            tally[kind] += 1
        out[str(meta.relative_to(root))[: -len(".meta")]] = tally
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--minimum", type=float, default=0.0)
    args = parser.parse_args(argv)
    table = scores(args.mutants)
    if not table:
        print("no mutmut results: run `make mutations` first", file=sys.stderr)
        return 2
    total: Counter = Counter()
    print(f"{'module':38} {'killed':>7} {'survived':>9} {'not reached':>12} {'score':>7}")
    for path, tally in table.items():
        total.update(tally)
        print(f"{path:38} {tally['killed']:7} {tally['survived']:9} {tally['not reached']:12} "
              f"{_score(tally):6.1f}%")
    print(f"{'all':38} {total['killed']:7} {total['survived']:9} {total['not reached']:12} "
          f"{_score(total):6.1f}%")
    if total["not run"]:
        print(f"({total['not run']} mutants not run yet)")
    return 1 if _score(total) < args.minimum else 0


def _score(tally: Counter) -> float:
    counted = tally["killed"] + tally["survived"] + tally["not reached"]
    return 100.0 * tally["killed"] / counted if counted else 0.0


if __name__ == "__main__":
    sys.exit(main())
