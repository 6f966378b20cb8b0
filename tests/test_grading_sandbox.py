"""The sandbox a notebook is graded in (tools.grading), seen from inside: a notebook reports what it
could reach as a plain dict, and a test file of our own checks the report. Without bubblewrap,
grading still runs and says so."""

from __future__ import annotations

import json
import os
import shutil

import nbformat
import psutil
import pytest

from tools.grading import grade_many, probe
from tools.grading import grader as grader_module

LOOK_AROUND = '''
import os, socket, subprocess
seen = {}
seen["class folder"] = os.path.exists(CLASS)
seen["masters"] = sorted(os.listdir(MASTERS)) if os.path.isdir(MASTERS) else "absent"
for name, path in (("project", PROJECT + "/pwned.txt"), ("class", CLASS + "/pwned.txt")):
    try:
        open(path, "w").write("x")
        seen["wrote " + name] = True
    except OSError as error:
        seen["wrote " + name] = type(error).__name__
open("/tmp/mine.txt", "w").write("scratch")
seen["scratch"] = open("/tmp/mine.txt").read()
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    seen["network"] = True
except OSError as error:
    seen["network"] = type(error).__name__
subprocess.Popen(["sleep", "600", "#sandbox-test-sleeper"], start_new_session=True)
seen["pid 1 is"] = open("/proc/1/cmdline").read().split(chr(0))[0]
seen["niceness"] = os.nice(0)
open(PROJECT + "/pwned-uncaught.txt", "w")  # not caught: the traceback is what the grader reads
'''

SEEN_TEST = '''
from otter.test_files import test_case

OK_FORMAT = False
name = "seen"
points = 1

@test_case(points=None, hidden=False)
def test_what_the_notebook_saw(seen):
    assert seen == EXPECTED, seen
'''


def _notebook(tmp_path, source: str):
    path = tmp_path / "submission.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def _sleepers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "#sandbox-test-sleeper" in (process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.skipif(bool(probe()), reason=f"no sandbox here: {probe()}")
def test_a_notebook_in_the_sandbox_sees_and_keeps_nothing_of_the_machine(tmp_path):
    project = str(grader_module.PROJECT)
    class_folder = tmp_path / "class"
    class_folder.mkdir()
    (class_folder / "classmate.ipynb").write_text("{}")
    prelude = f"CLASS = {str(class_folder)!r}\nPROJECT = {project!r}\nMASTERS = {project + '/exercises'!r}\n"
    notebook = _notebook(tmp_path, prelude + LOOK_AROUND)
    expected = {"class folder": False, "masters": [], "wrote project": "OSError",
                "wrote class": "FileNotFoundError", "scratch": "scratch", "network": "OSError",
                "pid 1 is": "bwrap", "niceness": min(19, os.nice(0) + 7)}
    tests = {"seen.py": SEEN_TEST.replace("EXPECTED", json.dumps(expected).replace("false", "False"))}
    (result,) = grade_many([(notebook, tests)], time_limit=60, hidden=(class_folder,), nice=7)
    assert result.sandboxed and not result.error, (result.error, result.log)
    assert result.tests[0]["score"] == 1, result.tests[0]["output"]
    assert not (class_folder / "pwned.txt").exists() and not (grader_module.PROJECT / "pwned.txt").exists()
    assert not _sleepers(), "a process the notebook started outlived its grading"
    assert result.notes == ["tried to write outside its scratch space"], (result.notes, result.log)


def test_without_a_sandbox_grading_still_runs_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(grader_module, "probe", lambda: "no bubblewrap in this test")
    notebook = _notebook(tmp_path, "seen = {'answer': 42}\nimport subprocess\nsubprocess.Popen("
                                   "['sleep', '600', '#sandbox-test-sleeper'], start_new_session=True)")
    tests = {"seen.py": SEEN_TEST.replace("EXPECTED", "{'answer': 42}")}
    try:
        (result,) = grade_many([(notebook, tests)], time_limit=60)
        assert not result.sandboxed and result.why_unsandboxed == "no bubblewrap in this test"
        assert not result.error and result.tests[0]["score"] == 1, (result.error, result.tests)
        assert not _sleepers(), "the grader should end what carries the job's mark"
    finally:
        for process in _sleepers():
            process.kill()


def test_a_class_graded_without_a_sandbox_says_so_on_every_row(tmp_path, monkeypatch):
    from tools.class_grades import grade_class
    from tools.exercises import STUDENT_DIR

    monkeypatch.setattr(grader_module, "probe", lambda: "no bubblewrap in this test")
    folder = tmp_path / "class"
    (folder / "ada").mkdir(parents=True)
    shutil.copy(STUDENT_DIR / "ex02-protobuf-encoding.ipynb", folder / "ada")
    (folder / "notes.ipynb").write_text("not a notebook")
    rows = grade_class(folder, time_limit=60)
    assert rows and all(r["note"].startswith("UNSANDBOXED (no bubblewrap in this test)") for r in rows), rows


def test_the_grades_file_is_whole_or_as_it_was(tmp_path, monkeypatch):
    """The CSV goes to a temporary file renamed over the old one: a failure while writing leaves
    the old file, and no temporary file, behind."""
    from tools import class_grades

    out = tmp_path / "grades.csv"
    out.write_text("the old grades\n")

    def broken(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(class_grades.csv.DictWriter, "writerows", broken)
    with pytest.raises(OSError, match="disk full"):
        class_grades._write_atomically(out, [{"student": "ada"}])
    assert out.read_text() == "the old grades\n" and [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


@pytest.mark.parametrize("nice", [-1, 20])
def test_a_priority_outside_nices_range_is_refused_before_anything_runs(tmp_path, nice):
    with pytest.raises(ValueError, match="nice must be 0"):
        grade_many([(_notebook(tmp_path, "x = 1"), {})], nice=nice)
