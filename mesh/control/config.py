"""A config center on the registry's KV store: typed settings per service, applied live.

A service declares its settings as a dataclass with defaults::

    @dataclass(frozen=True)
    class GreeterSettings:
        age: int = 24

:class:`ServiceConfig` keeps ``config/<service>/<field>`` keys in the KV store. ``current`` is always
a complete, valid settings object: defaults, overlaid with every key that parses. A background
blocking query on the prefix applies changes as soon as the registry makes them (no polling). A
value that does not parse is refused by :meth:`ServiceConfig.set` before anything is written; one
written by someone else is ignored (the last good value stays), logged once, and listed in
``errors``. Listeners are called after each applied change.

The watch's ``wait`` (1 s) only bounds how long an idle query is held, and so how long ``stop()``
takes; a change still wakes it at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, get_type_hints

import consul

from ._kv_watch import BlockingWatch, kv_query
from .keys import CONFIG

log = logging.getLogger(__name__)
S = TypeVar("S")


class ConfigError(ValueError):
    """A setting that does not exist, or a value of the wrong type."""


def parse_value(kind: type, text: str) -> Any:
    """Return ``text`` (as stored in the KV store) as a value of ``kind``, or raise ConfigError."""
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{text!r} is not a boolean (true/false)")
    if kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            raise ConfigError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is str:
        return text
    raise ConfigError(f"settings of type {kind!r} are not supported (use bool, int, float or str)")


def format_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class ServiceConfig(Generic[S]):
    """The live settings of one service, kept in ``<root>/<service>/`` of the KV store (``root``:
    ``config``, or ``<prefix>/config`` for a mesh with a prefix on a shared registry)."""

    def __init__(self, client: consul.Consul, service: str, schema: type[S], wait: str = "1s",
                 root: str = CONFIG):
        if not dataclasses.is_dataclass(schema):
            raise TypeError("schema must be a dataclass with a default for every field")
        self.service = service
        self.schema = schema
        self.prefix = f"{root}/{service}/"
        self._client = client
        self._types = get_type_hints(schema)
        self._fields = {f.name for f in dataclasses.fields(schema)}
        self._current: S = schema()
        self.errors: dict[str, str] = {}
        self.explicit: frozenset[str] = frozenset()  # settings present in the KV store
        self.changes = 0
        self._listeners: list[Callable[[S], None]] = []
        self._lock = threading.Lock()
        self._watch = BlockingWatch(kv_query(client, self.prefix, recurse=True, wait=wait), self._apply,
                                    f"config-{service}", f"for the settings of {service!r}", log)
        self._watch.first.wait(5)

    @property
    def current(self) -> S:
        """The settings in force now (a complete object: defaults for keys that are not set)."""
        return self._current

    def key(self, name: str) -> str:
        return self.prefix + name

    def set(self, name: str, value: Any) -> None:
        """Validate and write one setting; invalid names or values raise before anything is written."""
        self.set_many(**{name: value})

    def set_many(self, **values: Any) -> None:
        """Validate several settings together, then write them; if any is invalid, none is written."""
        texts: dict[str, str] = {}
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            if name not in self._fields:
                raise ConfigError(f"{self.schema.__name__} has no setting {name!r}; "
                                  f"it has {sorted(self._fields)}")
            texts[name] = format_value(value)
            parsed[name] = parse_value(self._types[name], texts[name])
            if isinstance(value, bool) != (self._types[name] is bool):
                raise ConfigError(f"{name} takes {self._types[name].__name__}, not {value!r}")
        try:  # the schema's own checks (ranges, allowed names) run before anything is written
            dataclasses.replace(self._current, **parsed)
        except (ValueError, TypeError) as exc:
            changes = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ConfigError(f"{changes}: {exc}") from None
        for name, text in texts.items():
            self._client.kv.put(self.key(name), text)

    def reset(self, name: str | None = None) -> None:
        """Delete one setting (or all) from the KV store, so the defaults apply again."""
        if name is None:
            self._client.kv.delete(self.prefix, recurse=True)
        else:
            self._client.kv.delete(self.key(name))

    def wait_for(self, predicate: Callable[[S], bool], timeout: float = 5.0) -> S:
        """Block until the settings satisfy ``predicate``; return them (or raise TimeoutError)."""
        done = threading.Event()

        def check(settings: S) -> None:
            if predicate(settings):
                done.set()

        self.subscribe(check)
        try:
            if not done.wait(timeout):
                raise TimeoutError(f"settings of {self.service} did not change as expected in {timeout} s")
        finally:
            self.unsubscribe(check)
        return self._current

    def subscribe(self, listener: Callable[[S], None]) -> None:
        """Call ``listener(settings)`` now and after each applied change."""
        with self._lock:
            self._listeners.append(listener)
        listener(self._current)

    def unsubscribe(self, listener: Callable[[S], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def request_stop(self) -> None:
        """Ask the watch to end after its current query (which a registry change ends early)."""
        self._watch.request_stop()

    def stop(self) -> None:
        self._watch.stop()

    def _apply(self, entries: list[dict] | None) -> None:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for entry in entries or []:
            name = entry["Key"][len(self.prefix):]
            if name not in self._fields:
                continue
            text = (entry["Value"] or b"").decode("utf-8", "replace")
            try:
                values[name] = parse_value(self._types[name], text)
            except ConfigError as exc:
                errors[name] = str(exc)
                values[name] = getattr(self._current, name)  # keep the last good value
                if self.errors.get(name) != errors[name]:
                    log.warning("ignoring %s%s: %s", self.prefix, name, exc)
        try:
            updated = self.schema(**values)
        except (ValueError, TypeError) as exc:
            # Values that parse but break the schema's rules together: keep the settings in force.
            if self.errors.get("*") != str(exc):
                log.warning("ignoring settings under %s: %s", self.prefix, exc)
            self.errors = {**errors, "*": str(exc)}
            return
        self.errors = errors
        explicit = frozenset(values)
        with self._lock:
            # Writing a key equal to its default changes no value, but it does change what is set.
            changed = updated != self._current or explicit != self.explicit
            self._current = updated
            self.explicit = explicit
            listeners = list(self._listeners) if changed else []
            if changed:
                self.changes += 1
        for listener in listeners:
            try:
                listener(updated)
            except Exception:  # a broken listener must not stop the watch
                log.exception("settings listener failed for %s", self.prefix)


class ConfigCenter:
    """A mesh's live settings by name (a service's, a policy's), each made and watched once; after
    :meth:`close`, none is made (nothing would stop it)."""

    def __init__(self, client: consul.Consul, root: str = CONFIG, owner: str = "the mesh"):
        self._client, self._root, self._owner = client, root, owner
        self._configs: dict[str, ServiceConfig] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, name: str, schema: type[S]) -> ServiceConfig[S]:
        """Return the settings called ``name`` (of ``schema``), watching them from the first call."""
        config = self._configs.get(name)
        if config is None:
            with self._lock:
                config = self._configs.get(name)
                if config is None:
                    self.refuse_if_closed()
                    config = self._configs[name] = ServiceConfig(self._client, name, schema, root=self._root)
        return config

    def find(self, name: str) -> ServiceConfig | None:
        """Return the settings called ``name`` if they are watched already (never makes them)."""
        return self._configs.get(name)

    def refuse_if_closed(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self._owner} has stopped")

    def close(self) -> None:
        """Make no more settings, and ask every watch to end after its current query."""
        with self._lock:
            self._closed = True
        for config in list(self._configs.values()):
            config.request_stop()

    def stop(self) -> None:
        for config in list(self._configs.values()):
            config.stop()
