"""Graded exercises (otter-grader): for each one, the blank notebook a learner gets scores 0 (and
each failure says what was wrong in the test's own words), the reference solutions score full
marks with the hidden tests too, and the committed learner notebook is what ``make exercises``
(``tools.exercises build``) makes of its master."""

from __future__ import annotations

import nbformat
import pytest

from tools.exercises import STUDENT_DIR, assign, grade, masters


@pytest.mark.slow
@pytest.mark.parametrize("master", masters(), ids=lambda p: p.stem)
def test_blank_answers_fail_and_reference_answers_pass(master, tmp_path):
    assigned = assign(master, tmp_path / "assigned")
    blank = grade(assigned.student, assigned.autograder)
    reference = grade(assigned.reference, assigned.autograder)
    assert blank and [s.question for s in blank] == [s.question for s in reference]
    assert all(s.points == 0 for s in blank), blank
    for score in blank:  # a failure reads as the test's own message, not doctest's internals
        assert "Error at line" in score.output and "AssertionError: " in score.output, score.output
        assert "Trying:" not in score.output and "doctest" not in score.output, score.output
    assert all(s.points == s.possible > 0 for s in reference), reference
    committed = nbformat.read(STUDENT_DIR / master.name, as_version=4)
    fresh = nbformat.read(assigned.student, as_version=4)
    def cells(nb):
        return [(c.cell_type, c.source) for c in nb.cells]

    stale = "notebooks/exercises is stale: run `make exercises`"
    assert cells(committed) == cells(fresh), stale
    assert committed.metadata["otter"] == fresh.metadata["otter"]


def test_every_exercise_has_its_learner_notebook():
    assert sorted(p.name for p in STUDENT_DIR.glob("*.ipynb")) == [m.name for m in masters()]
    assert len(masters()) >= 3


REFERENCE_08 = 'order = attrs["order"]\n    if charges[order] == 0:\n        charges[order] += 1'
PAYLOAD_KEYED = """seen = handler.__dict__.setdefault("seen", set())
    if not charges:
        seen.clear()
    if data not in seen:
        seen.add(data)
        charges[attrs["order"]] += 1"""

#: Plausible wrong answers each exercise's hidden tests must catch: (exercise, question, a piece of
#: the reference answer, what a learner might write instead, the kind of mistake).
WRONG_ANSWERS = [
    ("ex04-resilience", "policy",
     '"outlier_errors": 1, "outlier_max_percent": 50,', "",
     "retries alone: they hide the outage but keep sending to the dead replica"),
    ("ex08-idempotency", "bus", REFERENCE_08, PAYLOAD_KEYED,
     "deduplicated on the payload: two real orders that look alike are charged once between them"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "question", "right", "wrong", "mistake"), WRONG_ANSWERS,
                         ids=[f"{w[0]}-{w[1]}" for w in WRONG_ANSWERS])
def test_a_plausible_wrong_answer_scores_below_full_marks(exercise, question, right, wrong, mistake,
                                                          tmp_path):
    (master,) = [m for m in masters() if m.stem == exercise]
    assigned = assign(master, tmp_path / "assigned")
    nb = nbformat.read(assigned.reference, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and right in c.source]
    assert len(cells) == 1, f"the reference answer of {exercise} no longer contains {right!r}"
    cells[0].source = cells[0].source.replace(right, wrong)
    answered = tmp_path / "assigned" / "autograder" / f"wrong-{master.name}"
    nbformat.write(nb, answered)
    scores = {s.question: s for s in grade(answered, assigned.autograder)}
    assert scores[question].points < scores[question].possible, f"{mistake}: {scores[question]}"
    others = [s for name, s in scores.items() if name != question]
    assert all(s.points == s.possible for s in others), others  # only the wrong answer loses points
