"""Consul's Raft-style indexes: one counter for every write, stamped on the tables it touched.

A query's ``X-Consul-Index`` is the largest stamp among the tables it reads, so a blocking query
wakes when, and only when, something it could see changed.
"""

from __future__ import annotations

from collections.abc import Callable


class Indexes:
    """The write counter and the latest write per table (``services``, ``kvs``, ``service.web``...)."""

    def __init__(self, on_change: Callable[[tuple[str, ...]], None] = lambda tables: None):
        self.index = 0
        self._tables: dict[str, int] = {}
        self.on_change = on_change

    def write(self, *tables: str) -> int:
        """Take the next index, stamp it on ``tables``, wake their watchers, and return it."""
        self.index += 1
        for table in tables:
            self._tables[table] = self.index
        self.on_change(tables)
        return self.index

    def table(self, *tables: str) -> int:
        """Return the latest index among ``tables`` (at least 1: Consul never answers 0)."""
        return max([self._tables.get(t, 0) for t in tables] + [1])
