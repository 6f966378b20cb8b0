"""The ACL system's records: policies, roles, tokens and what they link, and the error a refused
request raises (Consul's status and words)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ANONYMOUS_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_SECRET = "anonymous"
NOT_FOUND = "ACL not found"


class ACLError(Exception):
    """A refused ACL request: ``status`` and Consul's message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Policy:
    id: str
    name: str
    description: str = ""
    rules: str = ""
    datacenters: list[str] = field(default_factory=list)
    create_index: int = 0
    modify_index: int = 0

    def as_json(self, stub: bool = False) -> dict[str, Any]:
        out = {"ID": self.id, "Name": self.name, "Description": self.description,
               "Datacenters": self.datacenters or None,
               "Hash": content_hash(self.name, self.rules, self.datacenters),
               "CreateIndex": self.create_index, "ModifyIndex": self.modify_index}
        if not stub:
            out["Rules"] = self.rules
        return out


@dataclass
class Grants:
    """What a token or a role links: policies and roles by ID, identities, templated policies."""

    policies: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    service_identities: list[dict[str, Any]] = field(default_factory=list)
    node_identities: list[dict[str, Any]] = field(default_factory=list)
    templated: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Role:
    id: str
    name: str
    description: str
    grants: Grants
    create_index: int = 0
    modify_index: int = 0


@dataclass
class Token:
    accessor_id: str
    secret_id: str
    description: str
    grants: Grants
    local: bool = False
    expires_at: float | None = None  # on the store's clock
    expiration_time: str = ""        # the same moment as Consul writes it
    create_time: str = ""
    create_index: int = 0
    modify_index: int = 0


def content_hash(*parts: Any) -> str:
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=32)
    return base64.b64encode(digest.digest()).decode()


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def is_uuid(value: object) -> bool:
    """Whether ``value`` is written as a UUID (as Consul requires of IDs it is given)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def permission_denied(accessor_id: str, resource: str, access: str, name: str | None = None) -> ACLError:
    """Consul's refusal, in its words: which token lacks which permission on what (403)."""
    who = "anonymous token" if accessor_id == ANONYMOUS_ID else f"token with AccessorID '{accessor_id}'"
    message = f"Permission denied: {who} lacks permission '{resource}:{access}'"
    if name is not None:
        message += f" on {json.dumps(name)}"
    if accessor_id == ANONYMOUS_ID:
        message += ". The anonymous token is used implicitly when a request does not specify a token."
    return ACLError(message, 403)
