"""`make autograder` writes otter's autograder zip of each exercise, for courses that grade on
Gradescope or with `otter grade` in Docker: the zip grades with otter's own `otter run`, the
reference to full marks and the blank notebook to none."""

from __future__ import annotations

import zipfile

import pytest

from tools.exercises import SOURCES, STUDENT_DIR, assign_many, autograders, otter_run

EXERCISE = "ex05-rate-limits"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_autograder_zip_grades_a_reference_and_a_blank_notebook_with_otter_run(tmp_path):
    master = SOURCES / f"{EXERCISE}.ipynb"
    (zip_path,) = autograders(tmp_path / "zips", [master])
    assert zip_path.name == f"{EXERCISE}.zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert {"run_autograder", "otter_config.json", "tests/bucket.py", "tests/backoff.py"} <= names, names
    (assigned,) = assign_many([master], tmp_path / "assigned")
    reference, blank = otter_run([(assigned.reference, zip_path), (STUDENT_DIR / master.name, zip_path)])
    assert not reference.error and not blank.error, (reference.error, blank.error)
    assert {s.question: (s.points, s.possible) for s in reference.scores} == {"bucket": (3.0, 3.0),
                                                                              "backoff": (2.0, 2.0)}
    assert {s.question: s.points for s in blank.scores} == {"bucket": 0.0, "backoff": 0.0}
