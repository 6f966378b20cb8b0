"""Grade notebooks: each in a sandbox of its own, its answers checked in a process it never ran in.

:func:`grade_many` takes ``(notebook, tests)`` pairs — the tests as otter's test files,
``{file name: source}`` — and grades up to ``parallel`` at a time. For each it starts the checker
(:mod:`tools.grading.checker`) in the grading sandbox (:mod:`tools.grading.sandbox`), hands it the
notebook's bytes, read once here (their SHA-256 is the result's ``checksum``), and the tests on a
pipe, and reads back one JSON result. When the time limit passes, the sandbox is ended whole.

Without a sandbox (no bubblewrap, or user namespaces off) the same two processes run as plain
processes: the learner's code still never runs where the tests do, but it can read and write
what the grader can, and a process it detaches may outlive grading (the grader kills every
process that still carries the job's mark in its environment, which a careful cheat can remove).
Every such result says so (``sandboxed=False`` and ``why_unsandboxed``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .checker import stopped_after
from .sandbox import Sandbox, answers_path, limit_resources, probe

__all__ = ["Result", "grade_many", "traces_of"]

PROJECT = Path(__file__).resolve().parents[2]
POLL = 0.05
#: The checker, started as ``python -I`` (no PYTHONPATH, no user site, no current directory on the
#: path): only the project's read-only code and the virtualenv's are importable.
BOOT = f"import sys; sys.path.insert(0, {str(PROJECT)!r}); from tools.grading.checker import main; main()"
#: Signs in the answers' output of something the sandbox stopped, and what to note for each.
TRACES = {
    "Read-only file system": "tried to write outside its scratch space",
    "Network is unreachable": "tried to open a network connection",
    "Temporary failure in name resolution": "tried to open a network connection",
    "Resource temporarily unavailable": "ran into the limit of processes",
}


@dataclass(frozen=True)
class Result:
    """One graded notebook: otter's results per test file, or why it could not be graded."""

    notebook: Path
    tests: list[dict] = field(default_factory=list)  # {"name", "score", "max_score", "output"}
    error: str = ""
    checksum: str = ""  # SHA-256 of the bytes graded
    seconds: float = 0.0
    sandboxed: bool = True
    why_unsandboxed: str = ""
    log: str = ""  # the end of what the notebook printed

    @property
    def notes(self) -> list[str]:
        """What the sandbox stopped this notebook doing, as far as its output tells."""
        return traces_of(self.log)


def traces_of(log: str) -> list[str]:
    return sorted({note for sign, note in TRACES.items() if sign in log})


@dataclass
class _Running:
    number: int
    process: subprocess.Popen
    deadline: float
    started: float
    out: object
    err: object
    mark: str
    checksum: str
    slot: int


def grade_many(submissions: list[tuple[Path, dict[str, str]]], time_limit: float = 120.0, parallel: int = 2,
               time_limits: list[float] | None = None, hidden: tuple[Path, ...] = (),
               nice: int = 0) -> list[Result]:
    """Grade each ``(notebook, tests)``, ``time_limit`` seconds each at most (or its own of
    ``time_limits``); ``hidden`` are folders the notebooks must not see (the class folder).

    ``nice`` lowers the grading's CPU priority (``nice(1)``'s increment): grading that shares a
    machine with work that must keep its pace then takes only the CPU time that work leaves.
    """
    if not 0 <= nice <= 19:
        raise ValueError(f"nice must be 0 (as the grader runs) to 19 (the lowest priority), got {nice}")
    limits = time_limits or [time_limit] * len(submissions)
    why = probe()
    sandbox = Sandbox(PROJECT, tuple(hidden))
    _compile_project()
    results: list[Result | None] = [None] * len(submissions)
    pending = list(range(len(submissions)))[::-1]
    running: list[_Running] = []
    with tempfile.TemporaryDirectory(prefix="grading-") as scratch:
        while pending or running:
            while pending and len(running) < parallel:
                number = pending.pop()
                notebook, tests = submissions[number]
                slot = min(set(range(parallel)) - {job.slot for job in running})
                started = _start(number, notebook, tests, limits[number], sandbox, why, Path(scratch), slot,
                                 nice)
                if isinstance(started, Result):
                    results[number] = started
                else:
                    running.append(started)
            for job in list(running):
                timed_out = time.monotonic() > job.deadline
                if job.process.poll() is None and not timed_out:
                    continue
                running.remove(job)
                _end(job, sandboxed=not why)
                notebook, _ = submissions[job.number]
                results[job.number] = _result(job, notebook, limits[job.number], timed_out, why)
            time.sleep(POLL)
    return results


def _start(number, notebook: Path, tests: dict[str, str], limit: float, sandbox: Sandbox, why: str,
           scratch: Path, slot: int, nice: int) -> _Running | Result:
    try:
        data = notebook.read_bytes()
        parsed = json.loads(data)
        if not isinstance(parsed, dict):
            raise ValueError("not a notebook")
    except (OSError, ValueError) as error:
        return Result(notebook, error=f"not a readable notebook: {type(error).__name__}: {str(error)[:200]}",
                      sandboxed=not why, why_unsandboxed=why)
    python = sys.executable
    mark = secrets.token_hex(8)
    if why:
        answers = ["env", f"PYTHONPATH={answers_path(PROJECT)}", f"GRADING_MARK={mark}", python, "-m",
                   "tools.grading.answers"]
        command = [python, "-I", "-c", BOOT]
        environment = {**sandbox.environment(), "GRADING_MARK": mark}
    else:
        answers = sandbox.answers([python, "-m", "tools.grading.answers"])
        command = sandbox.grading([python, "-I", "-c", BOOT], slot)
        environment = None
    job = {"notebook": parsed, "tests": tests, "run_limit": limit, "answers": answers}
    job_file = scratch / f"{number}.json"
    job_file.write_text(json.dumps(job))
    out, err = (scratch / f"{number}.out").open("w+b"), (scratch / f"{number}.err").open("w+b")
    preexec = functools.partial(_preexec, _plain_preexec if why else sandbox.preexec, nice)
    with job_file.open("rb") as stdin:
        process = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=err, env=environment,
                                   cwd=scratch if why else None, preexec_fn=preexec)
    job_file.unlink()  # the job, hidden tests and all, lives on only as the checker's open stdin
    started = time.monotonic()
    return _Running(number, process, started + 2 * limit + 30, started, out, err, mark,
                    hashlib.sha256(data).hexdigest(), slot)


def _preexec(then, nice: int) -> None:
    os.nice(nice)
    then()


def _plain_preexec() -> None:
    os.setsid()
    limit_resources()


def _end(job: _Running, sandboxed: bool) -> None:
    """End the job's process and all it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(job.process.pid, signal.SIGKILL)  # the sandbox: its PID namespace goes with it
    job.process.wait()
    if sandboxed:
        return
    for process in psutil.process_iter():  # whatever still carries the job's mark
        with contextlib.suppress(psutil.Error):
            if process.environ().get("GRADING_MARK") == job.mark:
                process.kill()


def _result(job: _Running, notebook: Path, limit: float, timed_out: bool, why: str) -> Result:
    seconds = round(time.monotonic() - job.started, 2)
    common = {"checksum": job.checksum, "seconds": seconds, "sandboxed": not why, "why_unsandboxed": why}
    job.out.seek(0)
    job.err.seek(0)
    output, errors = job.out.read().decode(errors="replace"), job.err.read().decode(errors="replace")
    job.out.close()
    job.err.close()
    if timed_out:
        return Result(notebook, error=stopped_after(limit), **common)
    try:
        reply = json.loads(output)
    except ValueError:
        return Result(notebook, error=f"the grading sandbox ended without a result: {errors.strip()[-300:]}",
                      **common)
    if not reply.get("ok"):
        return Result(notebook, error=reply.get("error", "?"), log=reply.get("log", ""), **common)
    return Result(notebook, tests=reply["tests"], log=reply.get("log", ""), **common)


def _compile_project() -> None:
    """Byte-compile the project once, here: in the sandbox it is read-only, and every notebook
    would compile what it imports again."""
    import compileall

    for folder in ("mesh", "lessons", "sim", "tools"):
        compileall.compile_dir(PROJECT / folder, quiet=2, workers=1)
