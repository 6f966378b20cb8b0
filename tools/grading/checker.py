"""The checker's side of grading: start the answers' process, then run every test against it.

Run by the grader (``tools.grading.grader``) inside the sandbox as a fresh ``python -I``: the
job — the notebook, the test files' sources, the time the notebook may take, and the command that
starts the answers' process — comes on stdin, the result goes to stdout as one JSON object, and
anything the tests print goes to stderr. The learner's code never runs in this process: the tests
get each name they ask for from the answers' process (:mod:`tools.grading.wire`), so patching
otter, ``builtins``, ``sys.modules`` or the project's helpers there changes nothing here, and the
hidden tests, which arrive on a pipe the answers' process never had, are never on its disk.

The test files are otter's own (``OK_FORMAT = False``: each case a function whose parameters name
what it checks), run and scored by otter's ``ExceptionTestFile`` — loaded on its own, without the
four seconds of importing all of otter.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import importlib.util
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

__all__ = ["load_tests", "main", "run_tests"]

PR_SET_DUMPABLE = 4  # prctl(2)
LOG_TAIL = 8000  # characters of the answers' output kept for a notebook that could not be graded
DIED = "the notebook's kernel died while it ran (a crash, or an exit, in a cell)"


def stopped_after(seconds: float) -> str:
    """What a notebook that ran out of time gets as its note."""
    return (f"stopped after {seconds:g} s: the notebook did not finish (an endless loop, or a wait "
            "that never ends, in one of its cells?)")


@functools.lru_cache(maxsize=1)
def _exception_test_file():
    """otter's ``ExceptionTestFile``, imported without ``otter/__init__`` and all it pulls in."""
    root = Path(importlib.util.find_spec("otter").submodule_search_locations[0])
    for name, path in (("otter", root), ("otter.test_files", root / "test_files")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    from otter.test_files.exception_test import ExceptionTestFile, test_case

    sys.modules["otter.test_files"].test_case = test_case  # what the test files import
    return ExceptionTestFile


class _Tail:
    """The last ``LOG_TAIL`` characters of a stream, read on a thread of its own."""

    def __init__(self, stream):
        self._chunks: collections.deque[str] = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self._chunks.append(chunk.decode(errors="replace"))
            self._size += len(self._chunks[-1])
            while self._size > LOG_TAIL and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        self._thread.join(timeout=1.0)
        return "".join(self._chunks)[-LOG_TAIL:]


def load_tests(tests: dict[str, str]) -> list:
    """otter's test files (``{file name: source}``), loaded once, in file-name order."""
    exception_test_file = _exception_test_file()
    return [exception_test_file.from_string(tests[name], path=name) for name in sorted(tests)]


def run_tests(test_files: list, environment: dict[str, Any]) -> list[dict]:
    """Run loaded test files against ``environment``; a result per file, in otter's words
    (``name``, ``score``, ``max_score``, ``output``)."""
    results = []
    for test_file in test_files:
        test_file.run(environment)
        results.append({"name": test_file.name, "score": test_file.score, "max_score": test_file.possible,
                        "output": test_file.summary()})
    return results


def _names_asked(test_files: list) -> list[str]:
    names: set[str] = set()
    for test_file in test_files:
        for case in test_file.test_cases:
            names |= set(inspect.signature(case.body.test_func).parameters) - {"env"}
    return sorted(names)


def grade(job: dict) -> dict:
    """Start the answers' process on the job's notebook, wait for it, run the tests."""
    from tools.grading.wire import AnswersGone, Peer, serve_callbacks

    ready = threading.Event()

    def handle(op: str, target: Any, *args: Any) -> Any:
        if op == "ready":
            ready.set()
            return None
        return serve_callbacks(op, target, *args)

    ours, theirs = socket.socketpair()
    answers = subprocess.Popen([*job["answers"], str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    theirs.close()
    log = _Tail(answers.stdout)
    peer = Peer(ours, handle)
    try:
        try:
            answers.stdin.write(json.dumps(job["notebook"]).encode())
            answers.stdin.close()
        except OSError:
            pass  # it died already; said below
        deadline = time.monotonic() + float(job["run_limit"])
        while not ready.wait(0.05):
            if peer.closed or answers.poll() is not None:
                return {"ok": False, "error": DIED, "log": log.text()}
            if time.monotonic() > deadline:
                return {"ok": False, "error": stopped_after(float(job["run_limit"])), "log": log.text()}
        test_files = load_tests(job["tests"])
        try:
            environment = {name: peer.request("get", name) for name in _names_asked(test_files)}
        except AnswersGone:
            return {"ok": False, "error": DIED, "log": log.text()}
        return {"ok": True, "tests": run_tests(test_files, environment), "log": log.text()}
    finally:
        peer.close("grading is over")
        try:
            answers.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(answers.pid, 9)
            answers.wait()


def main() -> int:
    # Not dumpable: the answers' process, same user, cannot read this one's memory, files or
    # environment through /proc, nor trace it.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    job = json.load(sys.stdin)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the tests print goes to stderr; stdout carries the result alone
    try:
        result = grade(job)
    except Exception as error:  # the grader reports it as this notebook's error
        result = {"ok": False, "error": f"the checker failed: {type(error).__name__}: {error}"}
    json.dump(result, out)
    out.flush()
    os._exit(0)  # threads the tests left (a mesh's, say) end with the process


if __name__ == "__main__":
    sys.exit(main())
