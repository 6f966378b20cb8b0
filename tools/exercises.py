"""Graded exercises, with otter-grader: build the learners' notebooks, grade a notebook.

Each exercise is written once, as an Otter Assign master notebook in ``exercises/`` (questions,
reference solutions, public and hidden tests). ``python -m tools.exercises build`` runs
``otter assign`` on each and writes the learner's notebook to ``notebooks/exercises/`` (solutions
replaced by ``...``; ``grader.check("q")`` cells run the public tests in the notebook).
``python -m tools.exercises grade notebooks/exercises/<name>.ipynb`` grades a filled-in notebook
with every test, hidden ones included, as ``otter run`` does, and prints the score.
Test cells are otter's exception-based tests (``tests: ok_format: false``: each cell is one function
whose parameters name what it checks), so a failing check shows the assertion's message — "varint(0)
should be b'\\x00', got None" — instead of doctest's transcript.
``tests/test_exercises.py`` proves for each exercise that the blank notebook scores 0 and the
reference solutions score full marks, and that the committed learner notebooks are current.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "exercises"
STUDENT_DIR = ROOT / "notebooks" / "exercises"

__all__ = ["Assigned", "Graded", "Score", "assign", "assign_many", "build", "grade", "grade_many", "masters"]

#: Seconds a notebook may take to be graded (run, then tested) before it is stopped and failed.
TIME_LIMIT = 120.0


@dataclass(frozen=True)
class Assigned:
    """What ``otter assign`` made of one master: the learner's and the reference notebook, and
    the autograder configuration that grades a submission."""

    student: Path
    reference: Path
    autograder: Path


@dataclass(frozen=True)
class Graded:
    """A graded notebook: its scores, or why it could not be graded (then no scores)."""

    notebook: Path
    scores: list[Score]
    error: str = ""
    seconds: float = 0.0  # how long grading it took


@dataclass(frozen=True)
class Score:
    question: str
    points: float
    possible: float
    output: str = ""  # what the tests said, as a learner's grader.check shows it


def masters(source_dir: Path = SOURCES) -> list[Path]:
    return sorted(source_dir.glob("*.ipynb"))


def assign(master: Path, out_dir: Path) -> Assigned:
    """Run ``otter assign`` on ``master`` into ``out_dir`` (which must not exist)."""
    return assign_many([master], out_dir.parent, names=[out_dir.name])[0]


def assign_many(sources: list[Path], out_root: Path, names: list[str] | None = None) -> list[Assigned]:
    """Run ``otter assign`` on each master, into ``out_root/<name>`` (the master's stem by default).

    Otter's own run of the tests on the reference is skipped: :func:`grade_many` does it, and
    ``tests/test_exercises.py`` checks the reference scores full marks.
    """
    names = names or [master.stem for master in sources]
    outs = [out_root / name for name in names]
    jobs = [{"assign": [str(master.resolve()), str(out.resolve())]}
            for master, out in zip(sources, outs, strict=True)]
    for master, result in zip(sources, _run(jobs, time_limit=120), strict=True):
        if not result["ok"]:
            raise RuntimeError(f"otter assign failed on {master.name}: {result['error']}\n"
                               f"{result.get('log', '')}")
    assigned = []
    for master, out in zip(sources, outs, strict=True):
        (autograder,) = (out / "autograder").glob("*.zip")
        assigned.append(Assigned(out / "student" / master.name, out / "autograder" / master.name, autograder))
    return assigned


def grade(notebook: Path, autograder: Path, time_limit: float = TIME_LIMIT) -> list[Score]:
    """Grade ``notebook`` with every test of ``autograder`` (run in a fresh kernel)."""
    graded = grade_many([(notebook, autograder)], time_limit)[0]
    if graded.error:
        raise RuntimeError(f"{notebook.name} could not be graded: {graded.error}")
    return graded.scores


def grade_many(submissions: list[tuple[Path, Path]], time_limit: float = TIME_LIMIT,
               parallel: int = 2, time_limits: list[float] | None = None) -> list[Graded]:
    """Grade each ``(notebook, autograder)`` pair in a fresh kernel, ``time_limit`` seconds at most
    each (or its own of ``time_limits``); a notebook that cannot be graded (too slow, kernel died,
    not this exercise) comes back with its ``error`` and no scores, and the others are graded all
    the same."""
    limits = time_limits or [time_limit] * len(submissions)
    jobs = [{"grade": [str(nb.resolve()), str(ag.resolve())], "time_limit": limit}
            for (nb, ag), limit in zip(submissions, limits, strict=True)]
    graded = []
    results = _run(jobs, max(limits, default=time_limit), parallel)
    for (notebook, _), result in zip(submissions, results, strict=True):
        seconds = result.get("seconds", 0.0)
        if not result["ok"]:
            graded.append(Graded(notebook, [], result["error"], seconds))
            continue
        graded.append(Graded(notebook, [Score(t["name"], float(t["score"]), float(t["max_score"]),
                                              t.get("output", ""))
                                        for t in result["tests"] if "max_score" in t], seconds=seconds))
    return graded


def build(source_dir: Path = SOURCES, student_dir: Path = STUDENT_DIR) -> list[Path]:
    """Write the learner's notebook of every master; return their paths."""
    student_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as work:
        sources = masters(source_dir)
        for master, assigned in zip(sources, assign_many(sources, Path(work)), strict=True):
            target = student_dir / master.name
            nb = nbformat.read(assigned.student, as_version=4)
            for number, cell in enumerate(nb.cells):  # random ids and outputs: every build a change
                cell.id = f"{master.stem}-{number}"
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, target)
            written.append(target)
    return written


def _run(jobs: list[dict], time_limit: float, parallel: int = 2) -> list[dict]:
    """Run otter jobs in one worker process (``tools.otter_worker``), which imports otter once."""
    request = json.dumps({"jobs": jobs, "time_limit": time_limit, "parallel": parallel})
    done = subprocess.run([sys.executable, "-m", "tools.otter_worker"], input=request, cwd=ROOT,
                          capture_output=True, text=True, timeout=60 + len(jobs) * (time_limit + 5))
    if done.returncode != 0:
        raise RuntimeError(f"the otter worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        for path in build():
            print(path.relative_to(ROOT))
        return 0
    if len(argv) == 2 and argv[0] == "grade":
        notebook = Path(argv[1]).resolve()
        master = SOURCES / notebook.name
        if not master.exists():
            print(f"no exercise {notebook.name}; exercises: {[m.name for m in masters()]}")
            return 2
        with tempfile.TemporaryDirectory() as work:
            scores = grade(notebook, assign(master, Path(work) / "assigned").autograder)
        for score in scores:
            print(f"{score.question:30s} {score.points:g} / {score.possible:g}")
        total, possible = sum(s.points for s in scores), sum(s.possible for s in scores)
        print(f"{'total':30s} {total:g} / {possible:g}")
        return 0
    print("usage: python -m tools.exercises build | grade <notebook>")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
