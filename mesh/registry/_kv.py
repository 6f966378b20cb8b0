"""Consul's key/value store with sessions and locks, as pure data with an injected clock.

What it keeps, as Consul documents it: entries with ``Flags``, ``CreateIndex``, ``ModifyIndex``,
``LockIndex`` and the holding ``Session``; check-and-set writes (``cas``); ``acquire``/``release``
of a key by a session; sessions with a ``TTL`` (invalidated after up to twice the TTL without a
renew, as Consul allows itself), a ``Behavior`` (``release`` or ``delete`` the held keys when the
session ends) and a ``LockDelay`` during which a key whose holder was invalidated cannot be
acquired again. Deleted keys leave tombstones so that a blocking query on a prefix wakes on delete.

Tombstones are kept for :data:`TOMBSTONE_TTL` seconds (Consul's ``tombstone_ttl`` is 15 minutes
too), then pruned; the highest index pruned is kept as a floor for prefix queries, so that a prefix's
index never goes backwards when its tombstones go. Keys and tombstones are kept sorted, so a GET
reads only the keys it asks for (a prefix is a range), not every key the store has had.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._decode import format_duration
from ._index import Indexes

MAX_VALUE = 512 * 1024  # Consul's default kv_max_value_size
TOMBSTONE_TTL = 15 * 60.0  # seconds a deleted key's tombstone is kept (Consul's tombstone_ttl)


class SortedKeys:
    """A sorted list of keys with prefix ranges (the standard library's ``bisect``: the store needs
    insert, remove and "every key starting with p", nothing a dependency would add)."""

    def __init__(self) -> None:
        self._keys: list[str] = []

    def add(self, key: str) -> None:
        at = bisect.bisect_left(self._keys, key)
        if at == len(self._keys) or self._keys[at] != key:
            self._keys.insert(at, key)

    def remove(self, key: str) -> None:
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]

    def prefixed(self, prefix: str) -> list[str]:
        """Return the keys that start with ``prefix``, in order."""
        start = bisect.bisect_left(self._keys, prefix)
        end = start
        while end < len(self._keys) and self._keys[end].startswith(prefix):
            end += 1
        return self._keys[start:end]

    def __len__(self) -> int:
        return len(self._keys)

    def copy(self) -> SortedKeys:
        twin = SortedKeys()
        twin._keys = list(self._keys)
        return twin


class KVError(ValueError):
    """A KV or session request Consul would refuse; ``status`` is the HTTP code it answers."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Entry:
    key: str
    value: bytes | None
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "LockIndex": self.lock_index, "Key": self.key, "Flags": self.flags,
            "Value": base64.b64encode(self.value).decode() if self.value is not None else None,
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }
        if self.session:
            out["Session"] = self.session
        return out


@dataclass
class Session:
    id: str
    name: str
    node: str
    lock_delay: float = 15.0
    behavior: str = "release"
    ttl: float = 0.0
    node_checks: list[str] = field(default_factory=lambda: ["serfHealth"])
    service_checks: list[dict[str, str]] = field(default_factory=list)
    create_index: int = 0
    modify_index: int = 0
    expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ID": self.id, "Name": self.name, "Node": self.node,
            "LockDelay": int(self.lock_delay * 1e9), "Behavior": self.behavior,
            "TTL": format_duration(self.ttl) if self.ttl else "",
            "NodeChecks": list(self.node_checks), "ServiceChecks": list(self.service_checks) or None,
            "CreateIndex": self.create_index, "ModifyIndex": self.modify_index,
        }


class KVStore:
    """Entries, tombstones, sessions and lock delays."""

    def __init__(self, indexes: Indexes, clock: Callable[[], float], tombstone_ttl: float = TOMBSTONE_TTL):
        self.indexes = indexes
        self.clock = clock
        self.tombstone_ttl = tombstone_ttl
        self.entries: dict[str, Entry] = {}
        self.tombstones: dict[str, int] = {}  # deleted key -> the index of its delete
        self._tombstone_times: dict[str, float] = {}  # deleted key -> when, oldest first
        self.pruned_index = 0  # the highest index of a pruned tombstone
        self._keys = SortedKeys()
        self._dead_keys = SortedKeys()
        self.sessions: dict[str, Session] = {}
        self.lock_delays: dict[str, float] = {}
        self.version = 0  # bumped by every change to entries or tombstones (keys answer caches)
        self._index_memo: dict[tuple[str, bool], int] = {}

    def _touched(self) -> None:
        self.version += 1
        self._index_memo.clear()

    def trial(self) -> KVStore:
        """Return a copy to try writes on (a transaction's first pass): its own entries, keys and
        counters, so nothing it does reaches this store or wakes a watcher."""
        copy = KVStore(Indexes(), self.clock, self.tombstone_ttl)
        copy.indexes.index = self.indexes.index
        copy.entries = {k: dataclasses.replace(e) for k, e in self.entries.items()}
        copy.tombstones, copy._tombstone_times = dict(self.tombstones), dict(self._tombstone_times)
        copy._keys, copy._dead_keys = self._keys.copy(), self._dead_keys.copy()
        copy.sessions, copy.lock_delays = self.sessions, dict(self.lock_delays)  # sessions: read only
        return copy

    # -- reads -------------------------------------------------------------------------------
    def matching(self, key: str, recurse: bool) -> list[Entry]:
        if recurse:
            return [self.entries[k] for k in self._keys.prefixed(key)]
        entry = self.entries.get(key)
        return [entry] if entry else []

    def index_for(self, key: str, recurse: bool) -> int:
        """Return the index a query on ``key`` (or the prefix) reports and blocks on. Remembered
        until the next change: a thousand watchers of one prefix woken by a write scan it once."""
        found = self._index_memo.get((key, recurse))
        if found is None:
            if len(self._index_memo) >= 4096:
                self._index_memo.clear()
            found = self._index_memo[(key, recurse)] = self._index_for(key, recurse)
        return found

    def _index_for(self, key: str, recurse: bool) -> int:
        if not recurse:
            entry = self.entries.get(key)
            stamp = entry.modify_index if entry is not None else self.tombstones.get(key)
            return stamp if stamp is not None else self.indexes.table("kvs")
        stamps = [self.entries[k].modify_index for k in self._keys.prefixed(key)]
        stamps += [self.tombstones[k] for k in self._dead_keys.prefixed(key)]
        if not stamps:
            return self.indexes.table("kvs")
        return max(max(stamps), self.pruned_index)  # a pruned tombstone may have been under this prefix

    def keys(self, prefix: str, separator: str | None) -> list[str]:
        out: list[str] = []
        for key in self._keys.prefixed(prefix):
            if separator:
                cut = key.find(separator, len(prefix))
                if cut != -1:
                    key = key[: cut + len(separator)]
            if not out or out[-1] != key:
                out.append(key)
        return out

    # -- writes ------------------------------------------------------------------------------
    def put(self, key: str, value: bytes, flags: int | None = None, cas: int | None = None,
            acquire: str | None = None, release: str | None = None) -> bool:
        """Write one key; return False when a ``cas``, ``acquire`` or ``release`` condition fails."""
        if not key:
            raise KVError("Missing key name")
        if len(value) > MAX_VALUE:
            raise KVError(f"Value exceeds {MAX_VALUE} byte limit", status=413)
        if acquire and release:
            raise KVError("Conflicting flags: acquire=true&release=true")
        entry = self.entries.get(key)
        if cas is not None and not self._cas_ok(entry, cas):
            return False
        if acquire and acquire not in self.sessions:  # Consul's words; a release just fails (false)
            raise KVError(f"Invalid session {json.dumps(acquire)}", status=500)
        if acquire:
            if entry is not None and entry.session and entry.session != acquire:
                return False
            if self.lock_delays.get(key, 0.0) > self.clock():
                return False
        if release and (entry is None or entry.session != release):
            return False
        stamp = self.indexes.write("kvs")
        self._touched()
        self._forget_tombstone(key)
        if entry is None:
            entry = self.entries[key] = Entry(key, None, create_index=stamp)
            self._keys.add(key)
        entry.value = value or None  # Consul stores an empty body as no value: "Value": null
        entry.modify_index = stamp
        if flags is not None:
            entry.flags = flags
        if acquire and entry.session != acquire:
            entry.session = acquire
            entry.lock_index += 1
        if release:
            entry.session = None
        return True

    def delete(self, key: str, recurse: bool = False, cas: int | None = None) -> bool:
        if cas is not None:
            if recurse:
                raise KVError("Conflicting flags: cas=" + str(cas) + "&recurse=true")
            if not self._cas_ok(self.entries.get(key), cas):
                return False
        victims = [e.key for e in self.matching(key, recurse)]
        stamp = self.indexes.write("kvs")
        self._touched()
        for k in victims:
            self._bury(k, stamp)
        return True

    def _bury(self, key: str, stamp: int) -> None:
        """Delete ``key``, leaving a tombstone stamped ``stamp``."""
        del self.entries[key]
        self._keys.remove(key)
        self._forget_tombstone(key)
        self.tombstones[key] = stamp
        self._tombstone_times[key] = self.clock()
        self._dead_keys.add(key)

    def _forget_tombstone(self, key: str) -> None:
        if self.tombstones.pop(key, None) is not None:
            del self._tombstone_times[key]
            self._dead_keys.remove(key)

    def prune_tombstones(self, now: float) -> int:
        """Drop tombstones older than ``tombstone_ttl``; return how many went."""
        pruned = 0
        while self._tombstone_times:
            key, buried = next(iter(self._tombstone_times.items()))  # the oldest
            if now - buried < self.tombstone_ttl:
                break
            self.pruned_index = max(self.pruned_index, self.tombstones[key])
            self._forget_tombstone(key)
            pruned += 1
        if pruned:
            self._touched()
        return pruned

    @staticmethod
    def _cas_ok(entry: Entry | None, cas: int) -> bool:
        """Consul's check-and-set: index 0 means "only if absent", N means "only if ModifyIndex is N"."""
        if cas == 0:
            return entry is None
        return entry is not None and entry.modify_index == cas

    # -- sessions ----------------------------------------------------------------------------
    def create_session(self, node: str, name: str = "", lock_delay: float = 15.0,
                       behavior: str = "release", ttl: float = 0.0,
                       node_checks: list[str] | None = None,
                       service_checks: list[dict[str, str]] | None = None) -> Session:
        if behavior not in ("release", "delete"):
            raise KVError(f"Invalid Behavior setting '{behavior}'")
        if ttl and not 10.0 <= ttl <= 86400.0:
            raise KVError(f"Invalid Session TTL '{format_duration(ttl)}', must be between [10s=24h0m0s]")
        session = Session(str(uuid.uuid4()), name, node, lock_delay, behavior, ttl,
                          ["serfHealth"] if node_checks is None else list(node_checks),
                          list(service_checks or []))
        session.create_index = session.modify_index = self.indexes.write("sessions")
        if ttl:
            session.expires_at = self.clock() + 2 * ttl
        self.sessions[session.id] = session
        return session

    def renew_session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise KVError(f"Session id '{session_id}' not found", status=404)
        if session.ttl:
            session.expires_at = self.clock() + 2 * session.ttl
        return session

    def destroy_session(self, session_id: str) -> bool:
        """End a session: release or delete its keys (by its Behavior) and start their lock delay."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        held = [e for e in self.entries.values() if e.session == session_id]
        tables = ["sessions"] + (["kvs"] if held else [])
        stamp = self.indexes.write(*tables)
        self._touched()
        for entry in held:
            if session.lock_delay:
                self.lock_delays[entry.key] = self.clock() + session.lock_delay
            if session.behavior == "delete":
                self._bury(entry.key, stamp)
            else:
                entry.session = None
                entry.modify_index = stamp
        return True

    def expire_sessions(self, now: float) -> list[str]:
        """Destroy the sessions whose TTL has run out; return their ids."""
        due = [s.id for s in self.sessions.values() if s.expires_at is not None and s.expires_at <= now]
        for session_id in due:
            self.destroy_session(session_id)
        return due

    def sessions_on_check(self, node: str, check_id: str, service_id: str = "") -> list[str]:
        """Return the sessions tied to a check (which a critical status invalidates)."""
        out = []
        for s in self.sessions.values():
            if s.node != node:
                continue
            if check_id in s.node_checks or any(c.get("ID") == check_id for c in s.service_checks):
                out.append(s.id)
        return out
