"""Grading time per notebook: the sandboxed grader against otter's own run, same notebooks, one run.

    python bench/grading.py --exercises ex02-protobuf-encoding ex05-rate-limits ex12-canary-decision

For each exercise, its blank and its reference notebook are graded twice, two at a time as
``make grade-class`` grades: by ``tools.grading`` (each notebook in a bubblewrap sandbox, its answers
checked in a process it never ran in; the grader ``make grade-class`` uses) and by otter's own
``otter run`` in one worker that imports otter once and forks a child per notebook (the grader
before the sandbox). Both read the same autograder zips, built first and not timed. The two are
run in alternating rounds so that drift on a shared machine hits both alike; reported: wall-clock
seconds per notebook of each, their ratio, and whether the two agreed on every score.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.exercises import SOURCES, assign_many, grade_many, otter_run
from tools.grading import probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercises", nargs="+",
                        default=["ex02-protobuf-encoding", "ex05-rate-limits", "ex12-canary-decision"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"sandbox: {probe() or 'bubblewrap'}")
    with tempfile.TemporaryDirectory() as work:
        made = assign_many([SOURCES / f"{name}.ipynb" for name in args.exercises], Path(work))
        notebooks = [(nb, a.autograder) for a in made for nb in (a.student, a.reference)]
        per_notebook: dict[str, list[float]] = {"sandboxed": [], "otter run": []}
        agree = True
        for round_number in range(args.rounds):
            order = ["sandboxed", "otter run"] if round_number % 2 == 0 else ["otter run", "sandboxed"]
            scores = {}
            for name in order:
                started = time.perf_counter()
                graded = (grade_many(notebooks, parallel=2) if name == "sandboxed"
                          else otter_run(notebooks))
                per_notebook[name].append((time.perf_counter() - started) / len(notebooks))
                scores[name] = [sorted((s.question, s.points) for s in g.scores) for g in graded]
            agree = agree and scores["sandboxed"] == scores["otter run"]
    sandboxed, otter = (statistics.median(per_notebook[n]) for n in ("sandboxed", "otter run"))
    print(f"{len(notebooks)} notebooks x {args.rounds} rounds")
    print(f"sandboxed grader: {sandboxed:5.2f} s a notebook")
    print(f"otter run:        {otter:5.2f} s a notebook")
    print(f"ratio (otter run / sandboxed): {otter / sandboxed:.2f}; same scores: {agree}")


if __name__ == "__main__":
    main()
