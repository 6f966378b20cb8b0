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

__all__ = ["Assigned", "Score", "assign", "build", "grade", "masters"]


@dataclass(frozen=True)
class Assigned:
    """What ``otter assign`` made of one master: the learner's and the reference notebook, and
    the autograder configuration that grades a submission."""

    student: Path
    reference: Path
    autograder: Path


@dataclass(frozen=True)
class Score:
    question: str
    points: float
    possible: float
    output: str = ""  # what the tests said, as a learner's grader.check shows it


def masters(source_dir: Path = SOURCES) -> list[Path]:
    return sorted(source_dir.glob("*.ipynb"))


def assign(master: Path, out_dir: Path) -> Assigned:
    """Run ``otter assign`` on ``master`` into ``out_dir`` (which must not exist).

    Otter's own run of the tests on the reference is skipped: :func:`grade` does it, and
    ``tests/test_exercises.py`` checks the reference scores full marks.
    """
    _otter("assign", "--no-pdfs", "--no-run-tests", str(master), str(out_dir), cwd=master.parent)
    (autograder,) = (out_dir / "autograder").glob("*.zip")
    return Assigned(out_dir / "student" / master.name, out_dir / "autograder" / master.name, autograder)


def grade(notebook: Path, autograder: Path) -> list[Score]:
    """Grade ``notebook`` with every test of ``autograder`` (run in a fresh kernel)."""
    with tempfile.TemporaryDirectory() as out:
        _otter("run", "-a", str(autograder), "-o", out, str(notebook), cwd=notebook.parent)
        results = json.loads((Path(out) / "results.json").read_text())
    return [Score(test["name"], float(test["score"]), float(test["max_score"]), test.get("output", ""))
            for test in results["tests"] if "max_score" in test]


def build(source_dir: Path = SOURCES, student_dir: Path = STUDENT_DIR) -> list[Path]:
    """Write the learner's notebook of every master; return their paths."""
    student_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as work:
        for master in masters(source_dir):
            assigned = assign(master, Path(work) / master.stem)
            target = student_dir / master.name
            nb = nbformat.read(assigned.student, as_version=4)
            for number, cell in enumerate(nb.cells):  # random ids and outputs: every build a change
                cell.id = f"{master.stem}-{number}"
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, target)
            written.append(target)
    return written


def _otter(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "otter", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"otter {args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


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
