"""Consul's ACL rule language: a policy's rules, written in HCL or JSON, parsed and merged.

A policy names resources and what it may do to them::

    key_prefix "ada/" { policy = "write" }      # every key under ada/
    key "ada/secret"  { policy = "deny" }       # this one key
    service_prefix "" { policy = "read" }       # every service
    operator = "read"

Named resources (``agent``, ``key``, ``node``, ``service``, ``session``, ``event``, ``query``) come
as exact blocks and ``_prefix`` blocks; ``acl``, ``operator``, ``keyring``, ``mesh`` and
``peering`` are one word each. Access is ``read``, ``write`` or ``deny``; keys also take ``list``.

Parsing uses pyhcl's parser (HCL 1, the dialect Consul's rules are written in; JSON goes to the
standard library). Two refusals go beyond Consul, which would accept them silently: an unknown rule
name (a misspelt ``key_prefixes`` would grant nothing and say nothing) and the same block or field
given twice, in any of HCL's spellings or in JSON (pyhcl and json keep only the last, where Consul
merges them; refusing keeps a ``deny`` from being lost).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hcl.api import isHcl
from hcl.parser import HclParser

DENY, READ, LIST, WRITE = "deny", "read", "list", "write"
ACCESS = (DENY, READ, LIST, WRITE)
#: When two rules name the same thing (two policies of one token), this one wins: deny over
#: write over list over read (Consul's ``takesPrecedenceOver``).
PRECEDENCE = {DENY: 3, WRITE: 2, LIST: 1, READ: 0}

NAMED = ("agent", "key", "node", "service", "session", "event", "query")
GLOBAL = ("acl", "operator", "keyring", "mesh", "peering")
_BLOCK_FIELDS = {"policy", "intentions"}
MAX_RULES = 128 * 1024  # characters: far beyond a class's policies, short of a parse that stalls


class RulesError(ValueError):
    """Rules Consul would refuse to store; the message is Consul's own wording where it has one."""


@dataclass(frozen=True)
class Rules:
    """Parsed rules: ``exact[resource][name]`` and ``prefix[resource][prefix]`` hold an access
    word; ``globals[name]`` one for each of :data:`GLOBAL` that is set."""

    exact: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prefix: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    globals: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("exact", "prefix"):
            tables = getattr(self, name)
            object.__setattr__(self, name, MappingProxyType(
                {r: MappingProxyType(dict(tables.get(r, {}))) for r in NAMED}))
        object.__setattr__(self, "globals", MappingProxyType(dict(self.globals)))

    def __bool__(self) -> bool:
        return bool(self.globals) or any(t for tables in (self.exact, self.prefix) for t in tables.values())


EMPTY = Rules()


def parse_rules(text: str) -> Rules:
    """Return the rules ``text`` (HCL or JSON) states; raise :class:`RulesError` if Consul would
    not store them (or if they are ambiguous, see the module's docstring)."""
    if not isinstance(text, str):
        raise RulesError("Failed to parse ACL rules: rules must be a string of HCL or JSON")
    if len(text) > MAX_RULES:
        raise RulesError(f"Failed to parse ACL rules: at most {MAX_RULES} characters, got {len(text)}")
    if not text.strip():
        return EMPTY
    try:
        tree = _parse_hcl(text) if isHcl(text) else json.loads(text, object_pairs_hook=_once_each)
    except RulesError:
        raise
    except (ValueError, TypeError) as exc:
        raise RulesError(f"Failed to parse ACL rules: {exc}") from None
    except RecursionError:
        raise RulesError("Failed to parse ACL rules: nested too deep") from None
    exact: dict[str, dict[str, str]] = {}
    prefix: dict[str, dict[str, str]] = {}
    globals_: dict[str, str] = {}
    for name, value in tree.items():
        if name in GLOBAL:
            if not isinstance(value, str) or value not in (DENY, READ, WRITE):
                raise RulesError(f"Invalid {name} policy: {value!r}")
            globals_[name] = value
            continue
        resource, is_prefix = (name[:-len("_prefix")], True) if name.endswith("_prefix") else (name, False)
        if resource not in NAMED:
            raise RulesError(f"Failed to parse ACL rules: unknown rule {name!r} (known: "
                             f"{', '.join(NAMED)}, each also as <name>_prefix; {', '.join(GLOBAL)})")
        if not isinstance(value, dict):
            raise RulesError(f'Failed to parse ACL rules: {name} needs a label and a block, e.g. {name} "x" '
                             '{ policy = "read" }')
        table = (prefix if is_prefix else exact).setdefault(resource, {})
        for label, block in value.items():
            table[label] = _access(name, label, block)
    return Rules(exact, prefix, globals_)


class _StrictHcl(HclParser):
    """pyhcl's parser, refusing what it would otherwise merge silently: a block label or a field
    given twice at one level (``key "a"`` twice, whichever of HCL's spellings each uses)."""

    def objectlist_flat(self, lt, replace):
        seen: dict[str, set] = {}
        for name, value in lt:
            labels = set(value) if isinstance(value, dict) else None
            if name in seen and (labels is None or seen[name] is None or labels & seen[name]):
                twice = sorted(labels & seen[name])[0] if labels and seen[name] else None
                said = f'{name} "{twice}"' if twice is not None else str(name)
                raise RulesError(f"Failed to parse ACL rules: {said} is given twice; write each once")
            seen[name] = labels if name not in seen else seen[name] | labels
        return super().objectlist_flat(lt, replace)


_parser: list[_StrictHcl] = []  # built once (its tables take 50 ms to load), used under the lock
_parser_lock = threading.Lock()


def _parse_hcl(text: str) -> dict:
    with _parser_lock:
        if not _parser:
            _parser.append(_StrictHcl())
        return _parser[0].parse(text)


def _once_each(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refusing a name given twice (json keeps the last, silently)."""
    found: dict = {}
    for name, value in pairs:
        if name in found:
            raise RulesError(f"Failed to parse ACL rules: {name!r} is given twice; write each once")
        found[name] = value
    return found


def _access(rule: str, label: str, block: object) -> str:
    allowed = (DENY, READ, LIST, WRITE) if rule.startswith("key") else (DENY, READ, WRITE)
    if not isinstance(block, dict) or not isinstance(block.get("policy"), str):
        raise RulesError(f"Invalid {rule} policy: {label!r} has no policy")
    unknown = set(block) - _BLOCK_FIELDS
    if unknown:
        raise RulesError(f"Failed to parse ACL rules: {rule} {label!r} has unknown field(s) "
                         f"{sorted(unknown)}")
    if block["policy"] not in allowed:
        raise RulesError(f"Invalid {rule} policy: {label!r} {{policy = {block['policy']!r}}}")
    intentions = block.get("intentions")
    if intentions is not None and (not rule.startswith("service") or intentions not in (DENY, READ, WRITE)):
        raise RulesError(f"Invalid {rule} intentions policy: {label!r} {{intentions = {intentions!r}}}")
    return block["policy"]


def merge(all_rules: Iterable[Rules]) -> Rules:
    """Return one set of rules that grants what ``all_rules`` grant together; where two name the
    same thing, :data:`PRECEDENCE` decides (so a deny anywhere stays a deny)."""
    exact: dict[str, dict[str, str]] = {}
    prefix: dict[str, dict[str, str]] = {}
    globals_: dict[str, str] = {}

    def keep(table: dict[str, str], name: str, access: str) -> None:
        held = table.get(name)
        if held is None or PRECEDENCE[access] > PRECEDENCE[held]:
            table[name] = access

    for rules in all_rules:
        for merged, tables in ((exact, rules.exact), (prefix, rules.prefix)):
            for resource, table in tables.items():
                for name, access in table.items():
                    keep(merged.setdefault(resource, {}), name, access)
        for name, access in rules.globals.items():
            keep(globals_, name, access)
    return Rules(exact, prefix, globals_)
