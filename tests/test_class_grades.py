"""An instructor grades a folder of submissions in one go: a row per student and question in a CSV,
a summary picture, and every file that cannot be graded reported with its reason, not fatal."""

from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from tools.class_grades import find_submissions, grade_class, plot_class
from tools.exercises import STUDENT_DIR, assign_many, masters

CANARY = "ex12-canary-decision"
WRR = "ex04-weighted-round-robin"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_class_folder_is_graded_into_a_table_and_a_picture(tmp_path):
    by_name = {m.stem: m for m in masters()}
    canary, wrr = assign_many([by_name[CANARY], by_name[WRR]], tmp_path / "assigned")
    folder = tmp_path / "class"
    for student in ("ada", "bob", "carol", "eve", "frank"):
        (folder / student).mkdir(parents=True)
    shutil.copy(canary.reference, folder / "ada" / f"{CANARY}.ipynb")
    shutil.copy(STUDENT_DIR / f"{CANARY}.ipynb", folder / "bob" / f"{CANARY}.ipynb")  # handed in blank
    wrong = nbformat.read(canary.reference, as_version=4)
    for cell in wrong.cells:
        cell.source = cell.source.replace("canary_rate - stable_rate > max_increase",
                                          "canary_errors - stable_errors > max_increase")
    nbformat.write(wrong, folder / "carol" / f"{CANARY}.ipynb")
    shutil.copy(canary.reference, folder / "eve" / "my answers (final).ipynb")  # renamed
    endless = nbformat.read(canary.reference, as_version=4)
    # endless but idle, so that grading it beside the others (two at a time) takes no CPU from them
    endless.cells.append(nbformat.v4.new_code_cell("import time\nwhile True:\n    time.sleep(1)"))
    nbformat.write(endless, folder / "frank" / f"{CANARY}.ipynb")
    shutil.copy(wrr.reference, folder / f"{WRR}-dan.ipynb")
    (folder / "broken.ipynb").write_text('{"cells": [')
    foreign = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(foreign, folder / "foreign.ipynb")
    (folder / "ada" / ".ipynb_checkpoints").mkdir()
    shutil.copy(canary.reference, folder / "ada" / ".ipynb_checkpoints" / f"{CANARY}-checkpoint.ipynb")

    found = {(s.student, s.exercise) for s in find_submissions(folder, list(by_name))}
    assert found == {("ada", CANARY), ("bob", CANARY), ("carol", CANARY), ("eve", CANARY), ("frank", CANARY),
                     ("dan", WRR), ("broken", ""), ("foreign", "")}

    # a solved notebook takes a few seconds; 15 s was too tight when both test workers graded
    rows = grade_class(folder, time_limit=20, parallel=2, nice=10)
    with (folder / "grades.csv").open() as f:
        assert list(csv.DictReader(f)) == [{k: str(v) for k, v in r.items()} for r in rows]
    table = {(r["student"], r["question"]): r for r in rows}
    assert table[("ada", "decide")]["points"] == table[("ada", "decide")]["possible"] == 3.0
    assert table[("eve", "decide")]["points"] == 3.0
    assert table[("dan", "smooth_wrr")]["points"] == 3.0
    assert table[("bob", "decide")]["points"] == 0.0
    assert 0 <= table[("carol", "decide")]["points"] < 3.0
    frank = table[("frank", "decide")]
    assert frank["points"] == 0 and "stopped after 20 s" in frank["note"], frank
    assert "not a readable notebook" in table[("broken", "")]["note"]
    assert "not one of this workbench's exercises" in table[("foreign", "")]["note"]
    assert len(rows) == 8  # one row each: 5 students' question, dan's, and the two bad files

    png = plot_class(rows, folder / "grades.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
