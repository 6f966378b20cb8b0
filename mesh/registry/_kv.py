"""Consul's key/value store with sessions and locks, as pure data with an injected clock.

What it keeps, as Consul documents it: entries with ``Flags``, ``CreateIndex``, ``ModifyIndex``,
``LockIndex`` and the holding ``Session``; check-and-set writes (``cas``); ``acquire``/``release``
of a key by a session; sessions with a ``TTL`` (invalidated after up to twice the TTL without a
renew, as Consul allows itself), a ``Behavior`` (``release`` or ``delete`` the held keys when the
session ends) and a ``LockDelay`` during which a key whose holder was invalidated cannot be
acquired again. Deleted keys leave tombstones so that a blocking query on a prefix wakes on delete.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._decode import format_duration
from ._index import Indexes

MAX_VALUE = 512 * 1024  # Consul's default kv_max_value_size


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

    def __init__(self, indexes: Indexes, clock: Callable[[], float]):
        self.indexes = indexes
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self.tombstones: dict[str, int] = {}
        self.sessions: dict[str, Session] = {}
        self.lock_delays: dict[str, float] = {}

    # -- reads -------------------------------------------------------------------------------
    def matching(self, key: str, recurse: bool) -> list[Entry]:
        if recurse:
            return [self.entries[k] for k in sorted(self.entries) if k.startswith(key)]
        entry = self.entries.get(key)
        return [entry] if entry else []

    def index_for(self, key: str, recurse: bool) -> int:
        """Return the index a query on ``key`` (or the prefix) reports and blocks on."""
        stamps = [e.modify_index for e in self.matching(key, recurse)]
        stamps += [i for k, i in self.tombstones.items() if (k.startswith(key) if recurse else k == key)]
        return max(stamps) if stamps else self.indexes.table("kvs")

    def keys(self, prefix: str, separator: str | None) -> list[str]:
        out: list[str] = []
        for key in sorted(self.entries):
            if not key.startswith(prefix):
                continue
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
        session_id = acquire or release
        if session_id and session_id not in self.sessions:
            raise KVError(f"invalid session {session_id!r}", status=500)
        if acquire:
            if entry is not None and entry.session and entry.session != acquire:
                return False
            if self.lock_delays.get(key, 0.0) > self.clock():
                return False
        if release and (entry is None or entry.session != release):
            return False
        stamp = self.indexes.write("kvs")
        self.tombstones.pop(key, None)
        if entry is None:
            entry = self.entries[key] = Entry(key, value, create_index=stamp)
        entry.value = value
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
        for k in victims:
            del self.entries[k]
            self.tombstones[k] = stamp
        return True

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
        for entry in held:
            if session.lock_delay:
                self.lock_delays[entry.key] = self.clock() + session.lock_delay
            if session.behavior == "delete":
                del self.entries[entry.key]
                self.tombstones[entry.key] = stamp
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
