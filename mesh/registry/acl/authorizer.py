"""Decide one request: may this token have this access to this resource?

As Consul decides it: the token's rules (every policy, role and identity it carries, merged) are
asked first. Among the rules naming a resource, an exact rule beats every prefix rule and the
longest prefix beats shorter ones; the rule found grants its access or refuses, and a ``deny``
refuses outright. Only when no rule names the resource does the registry's default policy answer:
``allow`` lets everything through except managing the ACL system itself, ``deny`` refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rules import DENY, EMPTY, GLOBAL, LIST, NAMED, READ, WRITE, Rules

ALLOW_ALL, DENY_ALL = "allow", "deny"
#: ``mesh`` and ``peering`` unset follow ``operator``, as in Consul.
_FOLLOWS_OPERATOR = ("mesh", "peering")


def grants(granted: str, wanted: str) -> bool:
    """Return whether access ``granted`` by a rule covers ``wanted`` (write covers list covers read)."""
    if granted == DENY:
        return False
    if wanted == READ:
        return granted in (READ, LIST, WRITE)
    if wanted == LIST:
        return granted in (LIST, WRITE)
    return granted == WRITE


@dataclass(frozen=True)
class Authorizer:
    """One token's rules and the registry's default policy. ``management`` (the initial
    management token, or a token with the ``global-management`` policy) may do everything."""

    rules: Rules = EMPTY
    default: str = DENY_ALL
    management: bool = False

    def rule_for(self, resource: str, name: str = "") -> str | None:
        """Return the access the most specific rule for ``resource`` ``name`` gives, or None."""
        if resource in GLOBAL:
            found = self.rules.globals.get(resource)
            if found is None and resource in _FOLLOWS_OPERATOR:
                found = self.rules.globals.get("operator")
            return found
        if resource not in NAMED:
            raise ValueError(f"unknown ACL resource {resource!r}")
        exact = self.rules.exact[resource].get(name)
        if exact is not None:
            return exact
        best = None
        for prefix in self.rules.prefix[resource]:
            if name.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else self.rules.prefix[resource][best]

    def allows(self, resource: str, access: str, name: str = "") -> bool:
        """Return whether this token may have ``access`` (read, list, write) to ``resource`` ``name``."""
        if self.management:
            return True
        found = self.rule_for(resource, name)
        if found is not None:
            return grants(found, access)
        return self.default == ALLOW_ALL and resource != "acl"

    def may_write_every_key_under(self, prefix: str) -> bool:
        """A recursive delete of ``prefix``: the rule for the prefix grants write and no rule for a
        key or prefix under it grants less (Consul's ``KeyWritePrefix``)."""
        if self.management:
            return True
        under = [access for name, access in self.rules.exact["key"].items()
                 if name.startswith(prefix) and name != prefix]  # the prefix itself: allows() asks
        under += [access for name, access in self.rules.prefix["key"].items() if name.startswith(prefix)]
        return all(access == WRITE for access in under) and self.allows("key", WRITE, prefix)
