"""Graded exercises, with otter-grader: build the learners' notebooks, grade a notebook.

Each exercise is written once, as an Otter Assign master notebook in ``exercises/`` (questions,
reference solutions, public and hidden tests). ``python -m tools.exercises build`` runs
``otter assign`` on each and writes the learner's notebook to ``notebooks/exercises/`` (solutions
replaced by ``...``; ``grader.check("q")`` cells run the public tests in the notebook).
``python -m tools.exercises grade notebooks/exercises/<name>.ipynb`` grades a filled-in notebook
with every test, hidden ones included, and prints the score: the notebook runs in a sandbox and
its answers are checked in a process it never touched (``tools.grading``), with the test files
of otter's autograder zip, scored as ``otter run`` scores them.
Test cells are otter's exception-based tests (``tests: ok_format: false``: each cell is one function
whose parameters name what it checks), so a failing check shows the assertion's message — "varint(0)
should be b'\\x00', got None" — instead of doctest's transcript.
``tests/test_exercises.py`` proves for each exercise that the blank notebook scores 0 and the
reference solutions score full marks, and that the committed learner notebooks are current.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "exercises"
STUDENT_DIR = ROOT / "notebooks" / "exercises"

__all__ = ["Assigned", "Graded", "Score", "assign", "assign_many", "autograders", "build", "grade",
           "grade_many", "masters", "otter_run", "tests_of"]

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
    checksum: str = ""  # SHA-256 of the notebook's bytes as graded
    notes: list[str] = field(default_factory=list)  # what the sandbox stopped it doing
    unsandboxed: str = ""  # why it was graded without a sandbox ("" when it was in one)


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


def grade(notebook: Path, autograder: Path, time_limit: float = TIME_LIMIT) -> Graded:
    """Grade ``notebook`` with every test of ``autograder`` (in a sandbox, when there can be one)."""
    graded = grade_many([(notebook, autograder)], time_limit)[0]
    if graded.error:
        raise RuntimeError(f"{notebook.name} could not be graded: {graded.error}")
    return graded


def grade_many(submissions: list[tuple[Path, Path]], time_limit: float = TIME_LIMIT,
               parallel: int = 2, time_limits: list[float] | None = None,
               hidden: tuple[Path, ...] = (), nice: int = 0) -> list[Graded]:
    """Grade each ``(notebook, autograder zip)`` pair, each in a sandbox of its own,
    ``time_limit`` seconds at most each (or its own of ``time_limits``); a notebook that cannot be
    graded (too slow, kernel died, not this exercise) comes back with its ``error`` and no scores,
    and the others are graded all the same. ``hidden`` are folders the notebooks must not see;
    ``nice`` lowers the grading's CPU priority (see :func:`tools.grading.grade_many`)."""
    from tools.grading import grade_many as grade_in_sandboxes

    tests = {zip_path: tests_of(zip_path) for zip_path in {ag for _, ag in submissions}}
    results = grade_in_sandboxes([(nb, tests[ag]) for nb, ag in submissions], time_limit, parallel,
                                 time_limits, hidden, nice)
    graded = []
    for result in results:
        common = {"seconds": result.seconds, "checksum": result.checksum, "notes": result.notes,
                  "unsandboxed": result.why_unsandboxed}
        if result.error:
            graded.append(Graded(result.notebook, [], result.error, **common))
            continue
        graded.append(Graded(result.notebook, [Score(t["name"], float(t["score"]), float(t["max_score"]),
                                                     t.get("output", "")) for t in result.tests], **common))
    return graded


def tests_of(autograder: Path) -> dict[str, str]:
    """The test files in otter's autograder zip: ``{file name: source}``."""
    with zipfile.ZipFile(autograder) as archive:
        return {Path(name).name: archive.read(name).decode()
                for name in archive.namelist() if name.startswith("tests/") and name.endswith(".py")}


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


def autograders(out_dir: Path, sources: list[Path] | None = None) -> list[Path]:
    """Write otter's autograder zip of every master (or of ``sources``) to ``out_dir/<exercise>.zip``:
    the format ``otter run``, ``otter grade`` (in Docker) and Gradescope take. Return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    sources = sources or masters()
    with tempfile.TemporaryDirectory() as work:
        for master, assigned in zip(sources, assign_many(sources, Path(work)), strict=True):
            target = out_dir / f"{master.stem}.zip"
            shutil.copyfile(assigned.autograder, target)
            written.append(target)
    return written


def otter_run(submissions: list[tuple[Path, Path]], time_limit: float = TIME_LIMIT) -> list[Graded]:
    """Grade each ``(notebook, autograder zip)`` with otter's own ``otter run`` (no sandbox: the
    notebook runs where the tests do). For checking the zips a course takes elsewhere."""
    jobs = [{"grade": [str(nb.resolve()), str(ag.resolve())]} for nb, ag in submissions]
    graded = []
    for (notebook, _), result in zip(submissions, _run(jobs, time_limit), strict=True):
        if not result["ok"]:
            graded.append(Graded(notebook, [], result["error"], result.get("seconds", 0.0)))
            continue
        scores = [Score(t["name"], float(t["score"]), float(t["max_score"]), t.get("output", ""))
                  for t in result["tests"] if "max_score" in t]
        graded.append(Graded(notebook, scores, seconds=result.get("seconds", 0.0)))
    return graded


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
    if len(argv) == 2 and argv[0] == "autograder":
        for path in autograders(Path(argv[1])):
            print(path)
        return 0
    if len(argv) == 2 and argv[0] == "grade":
        notebook = Path(argv[1]).resolve()
        master = SOURCES / notebook.name
        if not master.exists():
            print(f"no exercise {notebook.name}; exercises: {[m.name for m in masters()]}")
            return 2
        with tempfile.TemporaryDirectory() as work:
            graded = grade(notebook, assign(master, Path(work) / "assigned").autograder)
        if graded.unsandboxed:
            print(f"WARNING: graded WITHOUT a sandbox ({graded.unsandboxed}): the notebook's code ran "
                  "with your powers", file=sys.stderr)
        scores = graded.scores
        for score in scores:
            print(f"{score.question:30s} {score.points:g} / {score.possible:g}")
        total, possible = sum(s.points for s in scores), sum(s.possible for s in scores)
        print(f"{'total':30s} {total:g} / {possible:g}")
        return 0
    print("usage: python -m tools.exercises build | autograder <folder> | grade <notebook>")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
