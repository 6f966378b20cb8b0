"""Graded exercises (otter-grader's test files), graded as a teacher grades them: for every exercise
the blank notebook a learner gets scores 0 (each failure saying what was wrong in the test's own
words), the reference solutions score full marks with the hidden tests too, every plausible wrong
answer listed in ``WRONG_ANSWERS`` loses points on its own question while the questions given no
wrong answer keep theirs (wrong answers to different questions of one exercise are graded in one
notebook), and the committed learner notebook is what ``make exercises`` (``tools.exercises build``)
makes of its master.

Runaway answers (an endless loop, a huge allocation, a thread left running, a failing import, an
endless cell, a kernel that exits) are failures reported in time, not a stuck grader.

Every notebook is graded in a sandbox of its own, its answers checked in a process it never ran in
(``tools.grading``, one at a time), once, by the module's fixture; the tests read its results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.wrong_answers import WRONG_ANSWERS, WrongAnswer
from tools.exercises import STUDENT_DIR, Assigned, Graded, assign_many, grade_many, masters

# The module's fixture grades every notebook (a few minutes) inside the first test that uses it.
pytestmark = pytest.mark.timeout(1200)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EX01 = "ex02-protobuf-encoding"
ZIGZAG = "return (n << 1) ^ (n >> 63)"


@dataclass(frozen=True)
class Runaway:
    """An answer to ex01's zigzag that never ends well; it must cost that question, or (for a
    whole cell that runs away) be reported as the notebook's error."""

    name: str
    answer: str
    message: str
    whole_notebook: bool = False


RUNAWAYS = [
    Runaway("endless loop", "while True:\n        pass", "did not finish within 5 s"),
    Runaway("huge allocation", f"bytes(1 << 36)\n    {ZIGZAG}", "needed more than 1024 MiB of memory"),
    Runaway("thread left running",
            "import threading\n    threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
            f"    {ZIGZAG}",
            "thread(s) running (Thread-"),
    Runaway("failing import", f"import no_such_module_anywhere\n    {ZIGZAG}",
            "No module named 'no_such_module_anywhere"),
    Runaway("endless cell", "pass\n\n\nwhile True:\n    pass", "stopped after 10 s", whole_notebook=True),
    Runaway("kernel exits", "pass\n\n\nimport os\nos._exit(3)", "kernel died", whole_notebook=True),
]


@dataclass
class Grading:
    assigned: dict[str, Assigned]
    results: dict[tuple[str, str], Graded]  # (exercise, variant) -> what the grader said
    unfit: dict[str, str]  # wrong answers that could not be planted: id -> why
    graded_in: dict[str, tuple[str, str]]  # a wrong answer's id -> the variant it was graded in
    planted: dict[tuple[str, str], set[str]]  # a variant -> the questions given a wrong answer


def _plant(reference: Path, swaps: list[tuple[str, str]], out: Path) -> str:
    """Write ``reference`` with each ``(right, wrong)`` of ``swaps`` replaced in its one answer
    cell to ``out``; return why it could not be done ("" when it was)."""
    nb = nbformat.read(reference, as_version=4)
    for right, wrong in swaps:
        cells = [c for c in nb.cells if c.cell_type == "code" and right in c.source]
        if len(cells) != 1:
            return f"{len(cells)} answer cells of {reference.name} contain {right!r}; one should"
        cells[0].source = cells[0].source.replace(right, wrong)
    nbformat.write(nb, out)
    return ""


def rounds(wrong_answers: list[WrongAnswer]) -> dict[tuple[str, str], list[WrongAnswer]]:
    """Group the wrong answers into the notebooks CI grades: for each exercise, round k holds the
    k-th wrong answer of each of its questions — answers to different questions graded together
    (each must still cost its own question, and only the planted questions may lose points)."""
    grouped: dict[tuple[str, str], list[WrongAnswer]] = {}
    seen: dict[tuple[str, str], int] = {}
    for wrong in wrong_answers:
        k = seen.get((wrong.exercise, wrong.question), 0)
        seen[(wrong.exercise, wrong.question)] = k + 1
        grouped.setdefault((wrong.exercise, f"wrong answers, round {k + 1}"), []).append(wrong)
    return grouped


@pytest.fixture(scope="module")
def grading(tmp_path_factory) -> Grading:
    root = tmp_path_factory.mktemp("exercises")
    sources = masters()
    assigned = dict(zip([m.stem for m in sources], assign_many(sources, root), strict=True))
    submissions: dict[tuple[str, str], Path] = {}
    limits: dict[tuple[str, str], float] = {}
    for stem, made in assigned.items():
        submissions[(stem, "blank")] = made.student
        submissions[(stem, "reference")] = made.reference
    unfit, graded_in, planted = {}, {}, {}
    variants = {key: [(w.right, w.wrong) for w in group] for key, group in rounds(WRONG_ANSWERS).items()}
    variants.update({(EX01, f"runaway: {r.name}"): [(ZIGZAG, r.answer)] for r in RUNAWAYS})
    for group_key, group in rounds(WRONG_ANSWERS).items():
        planted[group_key] = {w.question for w in group}
        graded_in.update({w.id: group_key for w in group})
    for number, ((exercise, variant), swaps) in enumerate(variants.items()):
        made = assigned[exercise]
        out = made.reference.parent / f"variant-{number}" / made.reference.name
        out.parent.mkdir()
        why = _plant(made.reference, swaps, out)
        if why:
            unfit[variant] = why
            continue
        submissions[(exercise, variant)] = out
        if variant.startswith("runaway: endless cell"):
            limits[(exercise, variant)] = 10.0
    keys = list(submissions)
    # Two at a time, at a low CPU priority: the suite's other worker runs timing tests, which two
    # sandboxes at the same priority starved; niced, the sandboxes take only the CPU those leave
    # (and the graded runs on a mesh count what happened rather than time it).
    graded = grade_many([(submissions[k], assigned[k[0]].autograder) for k in keys],
                        time_limits=[limits.get(k, 180.0) for k in keys], parallel=2, nice=10)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # where CI's grading time goes, slowest first
    (ARTIFACTS / "grading-times.txt").write_text("".join(
        f"{g.seconds:7.1f} s  {exercise}: {variant}\n"
        for (exercise, variant), g in sorted(zip(keys, graded, strict=True), key=lambda kg: -kg[1].seconds)))
    return Grading(assigned, dict(zip(keys, graded, strict=True)), unfit, graded_in, planted)


def _scores(graded: Graded) -> dict:
    assert not graded.error, graded.error
    return {s.question: s for s in graded.scores}


@pytest.mark.slow
@pytest.mark.parametrize("master", masters(), ids=lambda p: p.stem)
def test_blank_answers_fail_and_reference_answers_pass(master, grading):
    blank_graded, reference_graded = (grading.results[(master.stem, v)] for v in ("blank", "reference"))
    blank, reference = blank_graded.scores, reference_graded.scores
    # a notebook that could not be graded at all says why (its error), not only that it has no scores
    assert not blank_graded.error and not reference_graded.error, (blank_graded.error, reference_graded.error)
    assert blank and [s.question for s in blank] == [s.question for s in reference], (blank, reference)
    assert all(s.points == 0 for s in blank), blank
    for score in blank:  # a failure reads as the test's own message, not doctest's internals
        assert "Error at line" in score.output and "AssertionError: " in score.output, score.output
        assert "Trying:" not in score.output and "doctest" not in score.output, score.output
    assert all(s.points == s.possible > 0 for s in reference), reference
    committed = nbformat.read(STUDENT_DIR / master.name, as_version=4)
    fresh = nbformat.read(grading.assigned[master.stem].student, as_version=4)

    def cells(nb):
        return [(c.cell_type, c.source) for c in nb.cells]

    stale = "notebooks/exercises is stale: run `make exercises`"
    assert cells(committed) == cells(fresh), stale
    assert committed.metadata["otter"] == fresh.metadata["otter"]


def test_every_exercise_has_its_learner_notebook_and_its_wrong_answers():
    assert sorted(p.name for p in STUDENT_DIR.glob("*.ipynb")) == [m.name for m in masters()]
    assert len(masters()) >= 3
    without = {m.stem for m in masters()} - {w.exercise for w in WRONG_ANSWERS}
    assert not without, f"exercises with no wrong answer graded in CI: {sorted(without)}"


@pytest.mark.slow
@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.id)
def test_a_plausible_wrong_answer_scores_below_full_marks(wrong: WrongAnswer, grading):
    variant = grading.graded_in[wrong.id]
    assert variant[1] not in grading.unfit, grading.unfit[variant[1]]
    scores = _scores(grading.results[variant])
    lost = scores[wrong.question]
    assert lost.points < lost.possible, f"{wrong.mistake}: {lost}"
    others = [s for name, s in scores.items() if name not in grading.planted[variant]]
    assert all(s.points == s.possible for s in others), others  # only the wrong answers lose points


def test_wrong_answers_are_graded_one_per_question_per_notebook():
    grouped = rounds(WRONG_ANSWERS)
    assert sum(len(group) for group in grouped.values()) == len(WRONG_ANSWERS)
    for group in grouped.values():
        questions = [w.question for w in group]
        assert len(set(questions)) == len(questions) and len({w.exercise for w in group}) == 1, group


@pytest.mark.slow
@pytest.mark.parametrize("runaway", RUNAWAYS, ids=lambda r: r.name)
def test_a_runaway_answer_is_a_failure_reported_in_time(runaway: Runaway, grading):
    variant = f"runaway: {runaway.name}"
    assert variant not in grading.unfit, grading.unfit[variant]
    graded = grading.results[(EX01, variant)]
    if runaway.whole_notebook:
        assert not graded.scores and runaway.message in graded.error, graded
        return
    scores = _scores(graded)
    assert scores["zigzag"].points == 0 and runaway.message in scores["zigzag"].output, scores["zigzag"]
    assert scores["varint"].points == scores["varint"].possible, scores["varint"]


@pytest.mark.slow
def test_the_learners_kernel_survives_a_runaway_answer_in_a_check(grading, tmp_path):
    """In the learner's own notebook: the check of an endless answer fails in its time limit and
    the next cell still runs in the same kernel."""
    from nbclient import NotebookClient

    made = grading.assigned[EX01]
    reference = nbformat.read(made.reference, as_version=4)
    answers = {name: next(c.source for c in reference.cells if c.source.startswith(f"def {name}("))
               for name in ("varint", "zigzag")}
    nb = nbformat.read(made.student, as_version=4)
    for cell in nb.cells:
        for name, source in answers.items():
            if cell.cell_type == "code" and cell.source.startswith(f"def {name}("):
                cell.source = source.replace(ZIGZAG, RUNAWAYS[0].answer)
    nb.cells.append(nbformat.v4.new_code_cell('print("still here", varint(300))'))
    path = tmp_path / made.student.name
    nbformat.write(nb, path)
    NotebookClient(nb, timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = ["".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                    for o in c.get("outputs", [])) for c in code]
    zigzag_check = next(t for c, t in zip(code, text, strict=True) if 'grader.check("zigzag")' in c.source)
    assert "did not finish within 5 s" in zigzag_check, zigzag_check
    assert text[-1].strip() == "still here b'\\xac\\x02'", text[-1]


def test_every_lesson_links_its_graded_exercises_and_answers_each_question():
    """Each lesson's "Your turn" links at least one graded exercise (every exercise is linked from
    a lesson) and has a worked answer the learner can reveal for each of its questions."""
    import re

    linked = set()
    for lesson in sorted((STUDENT_DIR.parent).glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(lesson, as_version=4)
        (turn,) = [c.source for c in nb.cells if c.cell_type == "markdown" and "Your turn\n" in c.source]
        exercises = re.findall(r"\(exercises/(ex[\w-]+)\.ipynb\)", turn)
        assert exercises, f"{lesson.name}: its Your turn links no graded exercise"
        linked |= set(exercises)
        questions = [line for line in turn.split("\n") if line.startswith("- ")]
        answers = sum(c.source.count("<details>") for c in nb.cells if c.cell_type == "markdown")
        assert answers == len(questions) > 0, f"{lesson.name}: {len(questions)} questions, {answers} answers"
    assert linked == {m.stem for m in masters()}, linked ^ {m.stem for m in masters()}
