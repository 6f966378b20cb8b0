"""Faults for an instance in another process, through the config center (the registry's KV store).

The notebook writes an instance's faults as one JSON value under its faults key
(:meth:`mesh.control.keys.MeshKeys.faults`; :class:`RemoteFaults`, with the same ``faults`` and
``set`` as the in-process :class:`~mesh.interceptors.FaultInjector`); the instance's process
watches that key with a blocking query (:class:`FaultsWatch`), applies what it reads to its own
injector and writes back what it applied under the key beside it, so that ``set`` returns only
once the faults are in force — across processes, and across machines, as a real config center
would carry them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import consul

from ..control import BlockingWatch, kv_query
from ..control.keys import MeshKeys
from ..interceptors.faults import FaultInjector, Faults

__all__ = ["FaultsWatch", "RemoteFaults", "faults_from_json", "faults_to_json"]

log = logging.getLogger(__name__)


def faults_to_json(faults: Faults) -> str:
    fields = dataclasses.asdict(faults)
    fields["partitioned_from"] = sorted(faults.partitioned_from)
    return json.dumps(fields, sort_keys=True)


def faults_from_json(text: str) -> Faults:
    """Return the faults ``text`` describes; raise ValueError for anything that is not faults."""
    try:
        fields = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"faults must be JSON: {exc}") from None
    known = {f.name for f in dataclasses.fields(Faults)}
    if not isinstance(fields, dict) or not set(fields) <= known:
        raise ValueError(f"faults must be an object with fields among {sorted(known)}")
    fields["partitioned_from"] = frozenset(fields.get("partitioned_from", ()))
    return Faults(**fields)


class RemoteFaults:
    """The notebook's side: set an instance's faults in the KV store and wait until it applies them."""

    def __init__(self, client: consul.Consul, keys: MeshKeys, instance: str, timeout: float = 5.0):
        self._client = client
        self.key, self.applied_key = keys.faults(instance)
        self._timeout = timeout
        self._faults = Faults()
        self._lock = threading.Lock()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults | None = None, wait: bool = True, **changes) -> Faults:
        """Replace the faults (or change some fields); return them once the instance applies them
        (with ``wait``; an instance that is down applies them when it starts)."""
        with self._lock:
            new = dataclasses.replace(faults or self._faults, **changes)
            text = faults_to_json(new)
            self._client.kv.put(self.key, text)
            self._faults = new
        if wait:
            self.wait_applied(text)
        return new

    def wait_applied(self, text: str) -> None:
        deadline = time.monotonic() + self._timeout
        index = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.key}: the instance did not apply its faults "
                                   f"within {self._timeout:g} s")
            index, entry = self._client.kv.get(self.applied_key, index=index,
                                               wait=f"{max(int(left * 1000), 1)}ms")
            if entry is not None and (entry["Value"] or b"").decode() == text:
                return

    def forget(self) -> None:
        """Remove the instance's keys (when the mesh stops)."""
        for key in (self.key, self.applied_key):
            self._client.kv.delete(key)


class FaultsWatch:
    """The instance's side: follow its faults key and apply each value to its injector."""

    def __init__(self, client: consul.Consul, keys: MeshKeys, instance: str, injector: FaultInjector):
        self._client = client
        self.key, self.applied_key = keys.faults(instance)
        self._injector = injector
        self._watch = BlockingWatch(kv_query(client, self.key), self._take, f"faults-{instance}",
                                    f"for the faults of {instance}", log)

    def _take(self, entry: dict | None) -> None:
        text = (entry["Value"] or b"").decode() if entry is not None else faults_to_json(Faults())
        try:
            self._injector.set(faults_from_json(text))
        except (ValueError, TypeError) as exc:
            log.warning("ignored faults that are not valid under %s: %s", self.key, exc)
            return
        self._client.kv.put(self.applied_key, text)  # if this fails, the watch reads the key again

    def request_stop(self) -> None:
        self._watch.request_stop()

    def stop(self) -> None:
        self._watch.stop(5)
