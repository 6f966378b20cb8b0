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
