"""The answers' side of grading: run the learner's notebook, then answer the checker's requests.

Started by the checker (``tools.grading.checker``) as ``python -m tools.grading.answers FD``, in a
sandbox of its own when there is one: the notebook arrives on stdin, its code cells run one after
another in an IPython shell (an error in a cell is printed and the next cell runs, as otter runs
a notebook), and then the names the tests ask for are served over the channel on file descriptor
``FD`` (:mod:`tools.grading.wire`) until the checker closes it.

Nothing here is trusted: the learner's code runs in this process and may change any of it. The
checker believes only plain data and handles, so all that code can do is answer well or badly.
What is here is for the honest learner: each call is held to the checks' own rules (more than
:data:`lessons.answer_limits.CHECK_MEMORY` of new memory is a ``MemoryError``; a thread the call
left running fails it, in ``within``'s words), and ``otter`` is a stand-in whose checks do
nothing, so the notebook's own ``grader.check`` cells cost nothing here.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import threading
from typing import Any

__all__ = ["main", "run_notebook", "serve_answers"]


def run_notebook(cells: list[str]) -> dict[str, Any]:
    """Run ``cells`` in a fresh IPython shell (no kernel, no history); return its namespace."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    for source in cells:
        shell.run_cell(source, store_history=False)
        sys.stdout.flush()
    return shell.user_ns


def serve_answers(namespace: dict[str, Any]):
    """Return the handler for the checker's requests on the notebook's ``namespace``."""
    from lessons.answer_limits import threads_left
    from tools.grading.values import operate

    def handle(op: str, target: Any, *args: Any) -> Any:
        if op == "get":
            return namespace.get(target)
        if op == "call":
            before = set(threading.enumerate())
            call_args, call_kwargs = args
            result = target(*call_args, **call_kwargs)
            left = [t.name for t in threading.enumerate()
                    if t not in before and t.is_alive() and not t.name.startswith("grading-wire")]
            if left:
                raise AssertionError(threads_left(left))
            return result
        if op == "getattr":
            return getattr(target, args[0])
        if op == "setattr":
            setattr(target, args[0], args[1])
            return None
        if op == "op":
            return operate(target, *args)
        raise ValueError(f"no such request: {op!r}")

    return handle


def _cap_memory(extra: int) -> None:
    """From now on this process may hold at most what it holds now plus ``extra`` bytes."""
    from lessons.answer_limits import address_space

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    cap = address_space() + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def main(argv: list[str]) -> int:
    from lessons.answer_limits import CHECK_MEMORY
    from tools.grading.wire import Peer

    channel = socket.socket(fileno=int(argv[0]))
    notebook = json.load(sys.stdin)
    sys.stdin.close()
    cells = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
             for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    namespace = run_notebook(cells)
    _cap_memory(CHECK_MEMORY)
    peer = Peer(channel, serve_answers(namespace))
    peer.request("ready", None)
    peer.wait_closed()
    sys.stdout.flush()
    os._exit(0)  # the learner's threads, if any, end with the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
