"""Run many otter jobs (assign a master, grade a notebook) from one process that imports otter once,
each job in a forked child with a time limit.

``otter run`` and ``otter assign`` from the command line spend about 4 s of every call importing
otter; a class of 40 notebooks, or CI's grading of every exercise's blank, reference and wrong
answers, pays that once here. Each job runs in a child forked after the import (no threads exist
yet, so forking is safe), in its own session: a job that outlives ``time_limit`` — a notebook
with an endless loop at the top of a cell — is killed with its kernel, and reported as a failure;
the other jobs go on. At most ``parallel`` jobs run at once.

Used through ``tools.exercises`` (``assign_many``, ``grade_many``); the protocol is one JSON
object on stdin — ``{"jobs": [...], "time_limit": s, "parallel": n}``, each job
``{"assign": [master, out_dir]}`` or ``{"grade": [notebook, autograder]}``, optionally with its own
``"time_limit"`` — and one JSON list on
stdout, a result per job: ``{"ok": true, "tests": [...]}`` (otter's results) or
``{"ok": false, "error": "..."}``, each with the ``"seconds"`` the job took.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import psutil

from tools.grading.checker import DIED, stopped_after

__all__ = ["run_jobs"]

POLL = 0.05
PR_SET_PDEATHSIG = 1  # prctl(2)


def run_jobs(jobs: list[dict], time_limit: float, parallel: int = 2) -> list[dict]:
    """Run ``jobs`` in forked children, at most ``parallel`` at once; return a result per job."""
    import otter.assign
    import otter.run  # noqa: F401

    results: list[dict | None] = [None] * len(jobs)
    pending = deque(enumerate(jobs))
    running: dict[int, tuple[int, float, Path]] = {}  # pid -> (job number, deadline, work dir)
    started: dict[int, float] = {}  # job number -> when it started
    with tempfile.TemporaryDirectory(prefix="otter-jobs-") as scratch:
        while pending or running:
            while pending and len(running) < parallel:
                number, job = pending.popleft()
                work = Path(scratch) / str(number)
                work.mkdir()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child, measured by its results
                    _child(job, work)
                started[number] = time.monotonic()
                running[pid] = (number, started[number] + job.get("time_limit", time_limit), work)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                number, _, work = running.pop(pid)
                results[number] = _result(jobs[number], work, os.waitstatus_to_exitcode(status))
                results[number]["seconds"] = round(time.monotonic() - started[number], 2)
                continue
            now = time.monotonic()
            for pid, (number, deadline, _) in list(running.items()):
                if now > deadline:
                    _kill_tree(pid)
                    os.waitpid(pid, 0)
                    del running[pid]
                    limit = jobs[number].get("time_limit", time_limit)
                    results[number] = {"ok": False, "seconds": round(now - started[number], 2),
                                       "error": stopped_after(limit)}
            time.sleep(POLL)
    return results


def _child(job: dict, work: Path) -> None:
    """Run one job and leave the process; never returns."""
    code = 1
    try:
        os.setsid()
        _die_with_parent()
        log = os.open(work / "log.txt", os.O_WRONLY | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if "assign" in job:
            import otter.assign

            master, out_dir = job["assign"]
            os.chdir(Path(master).parent)
            otter.assign.main(master, out_dir, no_pdfs=True, no_run_tests=True)
        else:
            import otter.run

            notebook, autograder = job["grade"]
            os.chdir(work)
            otter.run.main(notebook, autograder=autograder, output_dir=str(work), no_logo=True)
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to kill this job if the worker dies first (a job must not outlive its grader)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _result(job: dict, work: Path, exit_code: int) -> dict:
    log = (work / "log.txt").read_text(errors="replace") if (work / "log.txt").exists() else ""
    results = work / "results.json"
    if exit_code == 0 and "grade" in job and results.exists():
        return {"ok": True, "tests": json.loads(results.read_text())["tests"]}
    if exit_code == 0 and "assign" in job:
        return {"ok": True}
    if "DeadKernelError" in log:
        return {"ok": False, "error": DIED}
    last = [line for line in log.splitlines() if line.strip()][-1:] or [f"exit code {exit_code}"]
    return {"ok": False, "error": f"otter could not run it: {last[0]}", "log": log[-4000:]}


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def main() -> int:
    request = json.load(sys.stdin)
    results = run_jobs(request["jobs"], float(request["time_limit"]), int(request.get("parallel", 2)))
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
