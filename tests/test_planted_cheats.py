"""A class folder of cheats, graded as a teacher grades it (``python -m tools.class_grades DIR``, what
``make grade-class`` runs): every cheat in ``tests/cheats.py`` scores no more than the blank
notebook, the reference scores full marks, nothing a notebook started is alive once grading has
returned, nothing was written outside the sandbox, the CSV is the grader's and its checksums are
those of the notebooks graded.

Against the otter grader this project had before its sandbox, seven of these cheats scored full
marks (or forged the CSV after grading), one stopped a whole class's grading, and four wrote or
connected where they liked (``tests/cheats.py`` lists which).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict

import psutil
import pytest

from tests.cheats import CHEATS, EVIDENCE, LOOPBACK_PORT, MARK, write_cheat
from tools.exercises import ROOT, STUDENT_DIR, assign_many, masters
from tools.grading import probe

EXERCISE = "ex05-rate-limits"
POSSIBLE = 5.0


def _marked_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(MARK in part for part in process.info["cmdline"] or []):
                found.append(process)
    return found


@pytest.fixture
def listener():
    """Something on the loopback port the network cheat tries, to see whether it got through."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", LOOPBACK_PORT))
    except OSError:
        server.close()
        yield None  # the port is someone else's: the sandbox test covers the network
        return
    server.listen(8)
    server.settimeout(0.1)
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(bool(probe()), reason=f"no sandbox here: {probe()}")
def test_no_cheat_scores_more_than_a_blank_notebook_or_outlives_its_grading(tmp_path, listener):
    (assigned,) = assign_many([m for m in masters() if m.stem == EXERCISE], tmp_path / "assigned")
    folder = tmp_path / "class"
    blank = STUDENT_DIR / f"{EXERCISE}.ipynb"
    (folder / "blank").mkdir(parents=True)
    shutil.copy(blank, folder / "blank" / blank.name)
    (folder / "reference").mkdir()
    shutil.copy(assigned.reference, folder / "reference" / blank.name)
    for cheat in CHEATS:
        write_cheat(cheat, blank, folder / cheat.name / blank.name)
    evidence_before = set(EVIDENCE.glob("*")) if EVIDENCE.exists() else set()
    project_before = set(ROOT.rglob("*pwned*"))

    # one at a time: beside the other test worker, two at once would slow the reference past its bounds
    # two at a time, niced: the suite's other worker keeps its pace, and two cheats run side by side
    command = [sys.executable, "-m", "tools.class_grades", "--nice", "10", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    time.sleep(3)  # a forger waiting for the grader to exit would act now

    left = _marked_processes()
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert not left, f"{len(left)} process(es) of the cheats outlived grading"

    with (folder / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        assert "UNSANDBOXED" not in row["note"], row
        if row["question"]:
            totals[row["student"]][0] += float(row["points"])
            totals[row["student"]][1] += float(row["possible"] or 0)
            graded = folder / row["student"] / blank.name
            assert row["sha256"] == hashlib.sha256(graded.read_bytes()).hexdigest(), row
    assert totals["reference"] == [POSSIBLE, POSSIBLE], totals["reference"]
    assert totals["blank"][0] == 0.0, totals["blank"]
    cheated = {name: got for name, (got, _) in totals.items()
               if name not in ("blank", "reference") and got > 0}
    assert not cheated, f"cheats that scored more than a blank notebook: {cheated}"
    assert {cheat.name for cheat in CHEATS} <= set(totals), set(totals)  # every cheat has its rows

    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                     if p.is_file() and p.suffix not in (".ipynb", ".csv", ".png"))
    assert not written, f"files written into the class folder: {written}"
    assert set(ROOT.rglob("*pwned*")) == project_before, "a cheat wrote into the project"
    evidence_now = set(EVIDENCE.glob("*")) if EVIDENCE.exists() else set()
    assert evidence_now == evidence_before, f"written to /tmp: {evidence_now ^ evidence_before}"
    if listener is not None:
        with pytest.raises(TimeoutError):
            listener.accept()
