"""Consul's ACL system for the embedded registry: rules (HCL or JSON), the decision they make for
a request, and the tokens, policies and roles that carry them. The HTTP side (the ``/v1/acl``
endpoints and the check on every other endpoint) lives with the registry's API modules."""

from .authorizer import ALLOW_ALL, DENY_ALL, Authorizer, grants
from .records import (
    ANONYMOUS_ID,
    ANONYMOUS_SECRET,
    NOT_FOUND,
    ACLError,
    Grants,
    Policy,
    Role,
    Token,
    is_uuid,
    permission_denied,
)
from .rules import (
    ACCESS,
    DENY,
    GLOBAL,
    LIST,
    MAX_RULES,
    NAMED,
    READ,
    WRITE,
    Rules,
    RulesError,
    merge,
    parse_rules,
)
from .store import HIDDEN, ACLConfig, ACLStore
from .templates import GLOBAL_MANAGEMENT_ID, TEMPLATES, synthetic_policy

__all__ = [
    "ACCESS", "ALLOW_ALL", "ANONYMOUS_ID", "ANONYMOUS_SECRET", "DENY", "DENY_ALL", "GLOBAL",
    "GLOBAL_MANAGEMENT_ID", "HIDDEN", "LIST", "MAX_RULES", "NAMED", "NOT_FOUND", "READ", "TEMPLATES", "WRITE",
    "ACLConfig", "ACLError", "ACLStore", "Authorizer", "Grants", "Policy", "Role", "Rules", "RulesError",
    "Token",
    "grants", "is_uuid", "merge", "parse_rules", "permission_denied", "synthetic_policy",
]
