"""Grade a whole class: every submitted exercise notebook in a folder, one table and one picture.

``python -m tools.class_grades DIR`` (``make grade-class DIR=...``) finds every ``.ipynb`` under
``DIR``, works out whose it is and which exercise it answers, grades them all with every test,
hidden ones included (``tools.exercises.grade_many``: each notebook in a sandbox of its own that
cannot see ``DIR``, its answers checked in a process it never ran in, a time limit each, two at
a time), and then, after every sandbox has ended, writes

- ``DIR/grades.csv``: a row per student, exercise and question — ``points``, ``possible``, the
  ``sha256`` of the notebook's bytes as graded, and a ``note``: why a notebook could not be graded
  (too slow, its kernel died), what the sandbox stopped it doing (writing outside its scratch
  space, a network connection, too many processes), and, on every row, that grading ran
  UNSANDBOXED when it had to — and a row per file that is not a gradable exercise (not a
  notebook, another course's), with the reason. Written to a temporary file and renamed, so the
  file is whole or absent;
- ``DIR/grades.png``: the share of points per question over the class, and each student's total.

Whose: the first folder under ``DIR`` (``DIR/ada/ex01-....ipynb``), or for a file directly in
``DIR`` its name without the exercise's (``ex02-protobuf-encoding-ada.ipynb`` -> ``ada``).
Which exercise: the notebook's own ``otter.Notebook("<exercise>.ipynb")`` line, so a renamed file
is still found; else an exercise's name in the file's name. A bad file is reported, never fatal.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .exercises import TIME_LIMIT, assign_many, grade_many, masters

__all__ = ["Submission", "find_submissions", "grade_class", "plot_class"]

COLUMNS = ["student", "exercise", "question", "points", "possible", "sha256", "note"]
INIT = re.compile(r"""otter\.Notebook\(\s*["']([^"']+)\.ipynb["']""")


@dataclass(frozen=True)
class Submission:
    path: Path
    student: str
    exercise: str = ""  # "" when the file is not a gradable exercise
    problem: str = ""  # why not


def find_submissions(folder: Path, exercises: list[str]) -> list[Submission]:
    """Return every ``.ipynb`` under ``folder`` (checkpoints aside) with its student and exercise."""
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(folder)
        exercise, problem = _exercise_of(path, exercises)
        if len(relative.parts) > 1:
            student = relative.parts[0]
        else:
            student = path.stem.replace(exercise, "").strip("-_ ") if exercise else path.stem
        found.append(Submission(path, student or path.stem, exercise, problem))
    return found


def _exercise_of(path: Path, exercises: list[str]) -> tuple[str, str]:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # any unreadable file is reported, whatever broke
        return "", f"not a readable notebook: {type(error).__name__}: {str(error)[:200]}"
    for cell in nb.cells:
        match = INIT.search(cell.source) if cell.cell_type == "code" else None
        if match:
            name = match.group(1)
            return (name, "") if name in exercises else ("", f"an otter notebook for {name!r}, not one "
                                                             "of this workbench's exercises")
    named = [e for e in exercises if e in path.name]
    if named:
        return max(named, key=len), ""
    return "", "not one of this workbench's exercises (no otter.Notebook line, no exercise in its name)"


def grade_class(folder: Path, out_csv: Path | None = None, time_limit: float = TIME_LIMIT,
                parallel: int = 2, nice: int = 0) -> list[dict]:
    """Grade every submission under ``folder``, ``parallel`` at a time (at CPU priority ``nice``);
    write and return the rows of ``grades.csv``."""
    by_name = {m.stem: m for m in masters()}
    submissions = find_submissions(folder, list(by_name))
    rows = [{"student": s.student, "exercise": "", "question": "", "points": "", "possible": "", "sha256": "",
             "note": f"{s.path.relative_to(folder)}: {s.problem}"} for s in submissions if s.problem]
    gradable = [s for s in submissions if not s.problem]
    needed = sorted({s.exercise for s in gradable})
    out_csv = out_csv or folder / "grades.csv"
    unsandboxed = ""
    with tempfile.TemporaryDirectory() as work:
        assigned = dict(zip(needed, assign_many([by_name[e] for e in needed], Path(work)), strict=True))
        questions = {}
        graded = grade_many([(s.path, assigned[s.exercise].autograder) for s in gradable], time_limit,
                            parallel=parallel, hidden=(folder, out_csv.parent), nice=nice)
        for submission, result in zip(gradable, graded, strict=True):
            if result.scores:
                questions[submission.exercise] = [(q.question, q.possible) for q in result.scores]
        for submission, result in zip(gradable, graded, strict=True):
            unsandboxed = unsandboxed or result.unsandboxed
            base = {"student": submission.student, "exercise": submission.exercise, "sha256": result.checksum}
            notes = "; ".join(result.notes)
            if result.error:
                known = questions.get(submission.exercise) or [("", "")]
                rows += [{**base, "question": q, "points": 0 if q else "", "possible": possible,
                          "note": "; ".join(filter(None, [result.error, notes]))} for q, possible in known]
                continue
            rows += [{**base, "question": s.question, "points": s.points, "possible": s.possible,
                      "note": notes} for s in result.scores]
    if unsandboxed:
        for row in rows:
            row["note"] = "; ".join(filter(None, [f"UNSANDBOXED ({unsandboxed})", row["note"]]))
    rows.sort(key=lambda r: (r["student"], r["exercise"], r["question"]))
    _write_atomically(out_csv, rows)
    return rows


def _write_atomically(path: Path, rows: list[dict]) -> None:
    """Write the CSV to a temporary file beside ``path`` and rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def plot_class(rows: list[dict], out_png: Path):
    """Draw the class's share of points per question and each student's total; save to ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scored = [r for r in rows if r["question"] != "" and r["possible"] not in ("", 0)]
    per_question: dict[str, list[float]] = defaultdict(list)
    per_student: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in scored:
        per_question[f"{r['exercise'][:4]} {r['question']}"].append(float(r["points"]) / float(r["possible"]))
        per_student[r["student"]][0] += float(r["points"])
        per_student[r["student"]][1] += float(r["possible"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.35 * len(per_question) + 1)),
                                      gridspec_kw={"width_ratios": [2, 1]})
    names = sorted(per_question)
    left.barh(names, [100 * sum(per_question[n]) / len(per_question[n]) for n in names], color="tab:blue")
    left.set_xlim(0, 100)
    left.invert_yaxis()
    left.set_xlabel("share of points over the class (%)")
    left.set_title(f"per question ({len(per_student)} students)")
    totals = [100 * got / possible for got, possible in per_student.values() if possible]
    right.hist(totals, bins=range(0, 101, 10), color="tab:green", edgecolor="white")
    right.set_xlabel("total (% of the points of the exercises handed in)")
    right.set_ylabel("students")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title("per student")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.class_grades",
        description="Grade a folder of submitted exercise notebooks into grades.csv and grades.png.")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="grade one notebook at a time (default: two)")
    parser.add_argument("--nice", type=int, default=0, choices=range(20), metavar="N",
                        help="grade at a lower CPU priority, nice(1)'s 0-19 (default: 0), so that other "
                             "work on the machine keeps its pace")
    parser.add_argument("folder", type=Path, help="the class folder")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    folder = args.folder.resolve()
    rows = grade_class(folder, parallel=1 if args.one_at_a_time else 2, nice=args.nice)
    plot_class(rows, folder / "grades.png")
    problems = sorted({(r["student"], r["exercise"] or "-", r["note"]) for r in rows if r["note"]})
    students = sorted({r["student"] for r in rows})
    print(f"{len(students)} students, {sum(1 for r in rows if r['question'])} graded questions; "
          f"wrote {folder / 'grades.csv'} and {folder / 'grades.png'}")
    if any(r["note"].startswith("UNSANDBOXED") for r in rows):
        print("WARNING: graded WITHOUT a sandbox: the notebooks' code ran with your powers "
              "(see the note on every row of grades.csv)", file=sys.stderr)
    for student, exercise, note in problems:
        print(f"  {student}: {exercise}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
