"""The sandbox a submitted notebook is graded in, made with bubblewrap (Debian's ``bubblewrap``).

Two nested sandboxes per notebook:

- the **grading sandbox** holds the checker and everything it starts: its own PID namespace (when
  the checker ends, every process in it ends: nothing a notebook starts outlives its grading), its
  own network namespace with only loopback (nothing outside is reachable), its own IPC and UTS
  namespaces, a private ``/tmp`` in memory, the system, the project and its virtualenv read-only,
  and nothing else of the machine: not the class folder, not the grades, not the exercises'
  masters (their solutions and hidden tests), not ``.git``, not anyone's home;
- the **answers' sandbox**, inside it, holds the learner's code: a PID namespace of its own (it
  cannot signal the checker) and a ``/tmp`` of its own. It sees the grading sandbox's ``/proc``
  (a new one cannot be mounted under a sandbox root made) where the checker is not dumpable: its
  memory, files and environment are closed to the answers. It shares the grading sandbox's
  loopback network, so an answer can query a server a test started (exercise 03's DNS).

Limits on every process in them: at most :data:`PROCESSES` tasks (a fork bomb stops there), files
of at most :data:`FILE_SIZE`, no core dumps; the grader's time limit ends the whole grading
sandbox. When the grader runs as root, each grading sandbox runs as a user id of its own that owns
nothing (so its process count is its alone); otherwise as the grader's user, in a user namespace.

Why by hand: bubblewrap is the well-kept tool for the namespaces; what to mount, hide and limit
for a notebook is this project's to say. Where bubblewrap is missing or user namespaces are off,
:func:`probe` says why and grading runs unsandboxed, saying so loudly.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FILE_SIZE", "PROCESSES", "Sandbox", "answers_path", "limit_resources", "probe"]

PROCESSES = 1024
FILE_SIZE = 64 << 20
#: Run as root, each sandbox runs as a user of its own from here up (no account needs to exist):
#: its process count is its own, and it owns nothing on the machine.
FIRST_UID = 420_000
#: What of /etc programs in the sandbox read (the loader, certificates, fonts, names), and no more.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates",
       "fonts", "localtime", "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "mime.types",
       "matplotlibrc", "pki")
#: What of the project a notebook never sees: the masters (solutions, hidden tests), history, CI's files.
PROJECT_HIDDEN = ("exercises", ".git", "test-artifacts", "tests", "autograder", "mutants", "bench")


def answers_path(project: Path) -> str:
    """The answers' process's ``PYTHONPATH``: the stand-in for otter first, then the project."""
    return f"{project / 'tools' / 'grading' / 'stand_in'}:{project}"


def limit_resources() -> None:
    """Limits for every process of a sandbox (a ``preexec_fn``): tasks, file size, core dumps."""
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESSES, PROCESSES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@functools.cache
def probe() -> str:
    """Return why notebooks cannot be sandboxed here, or "" when they can."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)"
    sandbox = Sandbox(Path(__file__).resolve().parents[2])
    try:
        done = subprocess.run(sandbox.grading(sandbox.answers(["true"])), capture_output=True,
                              text=True, timeout=30, preexec_fn=sandbox.preexec)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    if done.returncode != 0:
        return f"bwrap could not make a sandbox here: {done.stderr.strip()[-300:] or done.returncode}"
    return ""


@dataclass(frozen=True)
class Sandbox:
    """Commands that run a program in the grading sandbox, and one that starts the answers' sandbox
    inside it. ``hidden`` are more paths to keep out of sight (the class folder, the grades)."""

    project: Path
    hidden: tuple[Path, ...] = ()

    @staticmethod
    def preexec() -> None:
        """Run in the child before bwrap: a session of its own, and the limits."""
        os.setsid()
        limit_resources()

    def grading(self, argv: list[str], slot: int = 0) -> list[str]:
        """``argv`` in the grading sandbox (run it with :meth:`preexec`). Run as root, bwrap makes
        the namespaces itself and the sandbox drops to user ``FIRST_UID + slot``; otherwise they
        are made in a user namespace of the grader's own user."""
        command = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                   "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                   "--hostname", "grading", "--proc", "/proc", "--dev", "/dev",
                   "--perms", "1777", "--tmpfs", "/tmp"]
        if os.geteuid() == 0:
            command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            uid = str(FIRST_UID + slot)
            argv = ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--inh-caps=-all",
                    "--", *argv]
        else:
            command += ["--unshare-user"]
        for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"):
            path = Path("/") / top
            if path.is_symlink():
                command += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                command += ["--ro-bind", str(path), str(path)]
        command += ["--dir", "/etc"]
        for name in ETC:
            command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        code = self._code_paths()
        for parent in sorted({a for path in code for a in path.parents if a != Path("/")}):
            command += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make them 0700
        for path in code:
            command += ["--ro-bind", str(path), str(path)]
        for path in self._hidden_paths():
            command += ["--tmpfs", str(path)]
        command += ["--clearenv", "--chdir", "/tmp"]
        for name, value in self.environment().items():
            command += ["--setenv", name, value]
        return [*command, "--", *argv]

    def answers(self, argv: list[str]) -> list[str]:
        """``argv`` in the answers' sandbox, to be started from inside the grading sandbox. Its own
        ``/tmp`` comes first, then the code again on top (a project may live under ``/tmp``)."""
        command = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--die-with-parent",
                   "--new-session", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in self._code_paths():
            if path.is_relative_to("/tmp"):
                command += ["--ro-bind", str(path), str(path)]
        for path in self._hidden_paths():
            if path.is_relative_to("/tmp"):
                command += ["--tmpfs", str(path)]
        command += ["--chdir", "/tmp", "--setenv", "PYTHONPATH", answers_path(self.project)]
        return [*command, "--", *argv]

    def environment(self) -> dict[str, str]:
        """The whole environment of the sandbox's programs (nothing of the grader's own)."""
        return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp",
                "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
                "IPYTHONDIR": "/tmp/ipython", "XDG_CACHE_HOME": "/tmp/cache", "PYTHONDONTWRITEBYTECODE": "1",
                "MALLOC_ARENA_MAX": "2", "PYTHONPATH": str(self.project)}

    def _code_paths(self) -> list[Path]:
        """The project and the Python it runs on, read-only (outside /usr, which is bound whole)."""
        paths = {self.project.resolve()}
        for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
            resolved = Path(prefix).resolve()
            if not resolved.is_relative_to("/usr"):
                paths.add(resolved)
        executable = Path(sys.executable).resolve()
        if not executable.is_relative_to("/usr"):
            paths.add(executable.parent)
        return _outermost(paths)

    def _hidden_paths(self) -> list[Path]:
        code = self._code_paths()
        hidden = [self.project.resolve() / name for name in PROJECT_HIDDEN]
        hidden += [path.resolve() for path in self.hidden]
        return sorted(p for p in hidden if p.is_dir() and any(p.is_relative_to(c) for c in code))


def _outermost(paths: set[Path]) -> list[Path]:
    return sorted(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))
