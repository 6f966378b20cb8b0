"""Consul's user events: fire a named event with a payload, list the recent ones."""

from __future__ import annotations

import base64
import random
import uuid
from collections import deque
from typing import Any

from ._index import Indexes

KEEP = 256  # Consul keeps the last 256 events on each agent


class EventLog:
    def __init__(self, indexes: Indexes, rng: random.Random):
        self.indexes = indexes
        self.rng = rng
        self.events: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.ltime = 0

    def fire(self, name: str, payload: bytes, node: str = "", service: str = "", tag: str = "") -> dict:
        self.ltime += 1
        event = {
            "ID": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "Name": name,
            "Payload": base64.b64encode(payload).decode() if payload else None,
            "NodeFilter": node, "ServiceFilter": service, "TagFilter": tag,
            "Version": 1, "LTime": self.ltime,
        }
        self.events.append(event)
        self.indexes.write("events")
        return event

    def list(self, name: str = "") -> list[dict[str, Any]]:
        return [e for e in self.events if not name or e["Name"] == name]
