"""Following the registry with blocking queries: the one loop behind every watch the mesh keeps.

Consul answers a read that carries ``index`` (the index of the last answer seen) only once the data
changes, or after ``wait``; a watch is a loop of such reads in a thread. Consul's advice for the
loop is followed here once, for discovery, the config center, and what the kernel shares with its
processes (faults, access rules, fallbacks):

- an index that goes backwards (the registry restarted) starts over from no index;
- an unreachable registry is retried with a backoff (0.1 s doubling to 5 s), logged once per
  outage, and the watch keeps what it read last;
- an answer its ``apply`` could not take is read again after the same backoff, so a failed
  acknowledgement is retried, and a bad value never ends the watch;
- an answer equal to the last one applied is not applied again. A blocking query may return with
  nothing changed: for a key or prefix that does not exist Consul answers with the index of the
  whole KV store, so any write anywhere wakes it. Applying each such answer (and, for faults,
  writing an acknowledgement, itself a write that wakes every such watch) spun the watches of a
  processes-mode mesh into thousands of requests a second.

py-consul has no watch of its own (Consul's ``watch`` command is a separate program), hence this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import consul
import requests

__all__ = ["REGISTRY_ERRORS", "BlockingWatch", "kv_query"]

#: What a read of an unreachable or failing registry raises.
REGISTRY_ERRORS = (requests.RequestException, consul.ConsulException)

FIRST_PAUSE, LONGEST_PAUSE = 0.1, 5.0
_NOTHING = object()


def kv_query(client: consul.Consul, key: str, recurse: bool = False, wait: str = "2s"):
    """A blocking read of one key (or, with ``recurse``, every key under a prefix) for
    :class:`BlockingWatch`."""
    return lambda index: client.kv.get(key, recurse=recurse, index=index, wait=wait)


class BlockingWatch:
    """Call ``apply(answer)`` with each answer of ``query(index) -> (index, answer)``, from a thread.

    ``what`` names the watch in its log lines (``"while watching 'greeter'"``), which go to ``log``
    (the owner's logger, so that a notebook filtering by module sees them). :attr:`first` is set
    once the first answer is applied, or the first read has failed: an owner may wait on it
    rather than start with nothing for long.
    """

    def __init__(self, query: Callable[[str | None], tuple[str, Any]], apply: Callable[[Any], None],
                 name: str, what: str, log: logging.Logger | None = None):
        self._query, self._apply, self.what = query, apply, what
        self._log = log or logging.getLogger(__name__)
        self.first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index, pause, outage = None, FIRST_PAUSE, False
        applied: Any = _NOTHING  # the last answer applied
        while not self._stop.is_set():
            try:
                new_index, answer = self._query(index)
            except REGISTRY_ERRORS as exc:
                if self._stop.is_set():  # the registry went first, as it does when a mesh stops
                    break
                if not outage:
                    self._log.warning("registry unreachable %s (keeping what it last said): %s",
                                      self.what, exc)
                    outage = True
                self.first.set()
                self._stop.wait(pause)
                pause = min(pause * 2, LONGEST_PAUSE)
                continue
            if outage:
                self._log.warning("registry reachable again %s", self.what)
                outage = False
            index = new_index if index is None or int(new_index) >= int(index) else None
            if answer == applied:
                continue
            try:
                self._apply(answer)
            except REGISTRY_ERRORS as exc:  # e.g. an acknowledgement that could not be written
                self._log.warning("could not apply an answer %s, reading it again: %s", self.what, exc)
            except Exception:
                self._log.exception("could not apply an answer %s, reading it again", self.what)
            else:
                applied, pause = answer, FIRST_PAUSE
                self.first.set()
                continue
            index, applied = None, _NOTHING
            self._stop.wait(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        """Ask the loop to end after its current read (which a registry change ends early)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
