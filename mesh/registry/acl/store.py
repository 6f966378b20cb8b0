"""The ACL system's state: tokens, policies and roles, as Consul keeps and shows them.

Pure data with injected clocks and a UUID factory, like the KV store: the HTTP layer decodes a
request, asks the store, and answers what it returns or the :class:`ACLError` it raises (Consul's
status and words). A token's rights are every policy it links, every role's policies, and the
policies its service and node identities and templated policies stand for, merged
(:func:`~.rules.merge`); the compiled rules of a policy are kept until it changes.

Built in, as in Consul: the ``global-management`` policy, the anonymous token (used for a request
that carries none), and, when the registry is started with one, the initial management token.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .authorizer import ALLOW_ALL, DENY_ALL, Authorizer
from .decode import decode_grants, string, strings
from .records import (
    ANONYMOUS_ID,
    ANONYMOUS_SECRET,
    NOT_FOUND,
    ACLError,
    Grants,
    Policy,
    Role,
    Token,
    content_hash,
    is_uuid,
    rfc3339,
)
from .rules import Rules, RulesError, merge, parse_rules
from .templates import GLOBAL_MANAGEMENT_ID, GLOBAL_MANAGEMENT_RULES, TEMPLATES, synthetic_policy

HIDDEN = "<hidden>"  # what a SecretID reads as to a token that may not write ACLs
MIN_TTL, MAX_TTL = 60.0, 24 * 3600.0  # Consul's token_min/max_expiration_ttl defaults
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_NAME_RULE = "Only alphanumeric characters, '-' and '_' are allowed"


@dataclass(frozen=True)
class ACLConfig:
    """How the registry's ACL system starts: ``default_policy`` (``deny``, as Consul advises for
    production, or ``allow``) answers what no rule names; ``management_token``, if given, is the
    SecretID of the initial management token (Consul's ``acl.tokens.initial_management``), which
    also counts as the system's bootstrap. Without one, ``PUT /v1/acl/bootstrap`` makes it once."""

    default_policy: str = DENY_ALL
    management_token: str | None = None

    def __post_init__(self) -> None:
        if self.default_policy not in (ALLOW_ALL, DENY_ALL):
            raise ValueError(f"the ACL default policy is 'allow' or 'deny', got {self.default_policy!r}")
        secret = self.management_token
        if secret is not None and (not isinstance(secret, str) or not secret or secret != secret.strip()
                                   or secret == ANONYMOUS_SECRET):
            raise ValueError("the management token must be a non-empty string without surrounding spaces")


class ACLStore:
    """Tokens, policies and roles, started as ``config`` says; ``next_index`` stamps each write."""

    def __init__(self, next_index: Callable[[], int], config: ACLConfig = ACLConfig(),
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4()), datacenter: str = "dc1"):
        self.default_policy = config.default_policy
        management_secret = config.management_token
        self.datacenter = datacenter  # identities scoped to other datacenters grant nothing here
        self._next_index = next_index
        self._clock, self._wall_clock, self._new_id = clock, wall_clock, new_id
        self.policies: dict[str, Policy] = {}
        self.roles: dict[str, Role] = {}
        self.tokens: dict[str, Token] = {}  # by AccessorID
        self._by_secret: dict[str, str] = {}
        self._compiled: dict[tuple[str, str], Rules] = {}  # (policy id, its rules) -> parsed
        self.bootstrap_index = 0  # the index of the write that bootstrapped the system (0: not yet)
        #: The agent's own tokens by use (Consul's ``acl.tokens``: default, agent, dns...), set
        #: through ``PUT /v1/agent/token/:type``.
        self.agent_tokens: dict[str, str] = {}
        index = self._next_index()
        self.policies[GLOBAL_MANAGEMENT_ID] = Policy(
            GLOBAL_MANAGEMENT_ID, "global-management", "Builtin Policy that grants unlimited access",
            GLOBAL_MANAGEMENT_RULES, [], index, index)
        self._add_token(Token(ANONYMOUS_ID, ANONYMOUS_SECRET, "Anonymous Token", Grants()))
        if management_secret is not None:
            self._add_token(Token(self._new_id(), management_secret, "Initial Management Token",
                                  Grants(policies=[GLOBAL_MANAGEMENT_ID])))
            self.bootstrap_index = index

    # -- resolving a request's token ----------------------------------------------------------------
    def resolve(self, secret: str | None, use: str = "default") -> Token:
        """Return the token whose SecretID is ``secret``; raise 403 "ACL not found" for an unknown
        or expired one. A request with none gets the agent's token for ``use`` (``default``, or
        ``dns`` for DNS, which falls back to the default), as Consul's agent gives it, and the
        anonymous token when that is not set."""
        if not secret:
            secret = self.agent_tokens.get(use) or self.agent_tokens.get("default")
            if not secret:
                return self.tokens[ANONYMOUS_ID]
        accessor = self._by_secret.get(secret)
        token = self.tokens.get(accessor) if accessor else None
        if token is None or self._expired(token):
            raise ACLError(NOT_FOUND, 403)
        return token

    def authorizer(self, token: Token) -> Authorizer:
        """Return what ``token`` may do: its merged rules and the default policy."""
        return Authorizer(merge(self._rules_of(token.grants, depth=0)), self.default_policy)

    def _rules_of(self, grants: Grants, depth: int) -> Iterable[Rules]:
        for policy_id in grants.policies:
            policy = self.policies.get(policy_id)
            if policy is not None:
                yield self._compile(policy.id, policy.rules)
        for identity in grants.service_identities:  # an identity scoped to other datacenters: not here
            if not identity["Datacenters"] or self.datacenter in identity["Datacenters"]:
                yield self._compile("", TEMPLATES["builtin/service"].render(identity["ServiceName"]))
        for identity in grants.node_identities:
            if identity["Datacenter"] == self.datacenter:
                yield self._compile("", TEMPLATES["builtin/node"].render(identity["NodeName"]))
        for templated in grants.templated:
            name = (templated.get("TemplateVariables") or {}).get("name", "")
            yield self._compile("", TEMPLATES[templated["TemplateName"]].render(name))
        if depth == 0:
            for role_id in grants.roles:
                role = self.roles.get(role_id)
                if role is not None:
                    yield from self._rules_of(role.grants, depth=1)

    def _compile(self, policy_id: str, text: str) -> Rules:
        key = (policy_id, text)
        if key not in self._compiled:
            if len(self._compiled) > 4096:
                self._compiled.clear()
            self._compiled[key] = parse_rules(text)
        return self._compiled[key]

    def _expired(self, token: Token) -> bool:
        return token.expires_at is not None and self._clock() >= token.expires_at

    # -- bootstrap ------------------------------------------------------------------------------------
    def bootstrap(self, secret: str | None = None) -> Token:
        if self.bootstrap_index:
            raise ACLError(f"Permission denied: ACL bootstrap no longer allowed (reset index: "
                           f"{self.bootstrap_index})", 403)
        if secret is not None and not is_uuid(secret):
            raise ACLError("Invalid bootstrap secret: not a UUID")
        token = Token(self._new_id(), secret or self._new_id(), "Bootstrap Token (Global Management)",
                      Grants(policies=[GLOBAL_MANAGEMENT_ID]))
        self._add_token(token)
        self.bootstrap_index = token.create_index
        return token

    # -- policies -------------------------------------------------------------------------------------
    def policy(self, policy_id: str) -> Policy:
        found = self.policies.get(policy_id)
        if found is None:
            raise ACLError("ACL policy not found", 404)
        return found

    def policy_named(self, name: str) -> Policy:
        for policy in self.policies.values():
            if policy.name == name:
                return policy
        raise ACLError("ACL policy not found", 404)

    def put_policy(self, body: dict[str, Any], policy_id: str | None = None) -> Policy:
        """Create (``policy_id`` None) or replace a policy from a decoded request body."""
        name = body.get("Name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ACLError(f"Invalid Policy: invalid Name. {_NAME_RULE}")
        rules, description = body.get("Rules") or "", body.get("Description") or ""
        if not isinstance(rules, str) or not isinstance(description, str):
            raise ACLError("Request decode failed: Rules and Description are strings")
        try:
            parse_rules(rules)
        except RulesError as exc:
            raise ACLError(f"Invalid Policy: {exc}") from None
        datacenters = strings(body.get("Datacenters"), "Datacenters")
        clash = next((p for p in self.policies.values() if p.name == name and p.id != policy_id), None)
        if clash is not None:
            raise ACLError(f"Invalid Policy: A Policy with Name {name!r} already exists")
        if policy_id is None:
            policy = Policy(self._new_id(), name, description, rules, datacenters)
        else:
            policy = self.policy(policy_id)
            if policy.id == GLOBAL_MANAGEMENT_ID and (rules != policy.rules or datacenters):
                raise ACLError("Changing the Rules for the builtin global-management policy is not permitted")
            if policy.id == GLOBAL_MANAGEMENT_ID and name != policy.name:
                raise ACLError("Changing the Name for the builtin global-management policy is not permitted")
            policy.name, policy.description = name, description
            policy.rules, policy.datacenters = rules, datacenters
        policy.modify_index = self._next_index()
        policy.create_index = policy.create_index or policy.modify_index
        self.policies[policy.id] = policy
        return policy

    def delete_policy(self, policy_id: str) -> None:
        if policy_id == GLOBAL_MANAGEMENT_ID:
            raise ACLError("Delete operation not permitted on the builtin global-management policy")
        if self.policies.pop(policy_id, None) is not None:
            self._next_index()

    # -- roles ----------------------------------------------------------------------------------------
    def role(self, role_id: str) -> Role:
        found = self.roles.get(role_id)
        if found is None:
            raise ACLError("ACL role not found", 404)
        return found

    def role_named(self, name: str) -> Role:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise ACLError("ACL role not found", 404)

    def put_role(self, body: dict[str, Any], role_id: str | None = None) -> Role:
        name = body.get("Name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_-]{1,256}$", name):
            raise ACLError(f"Invalid Role: invalid Name. {_NAME_RULE}")
        description = string(body.get("Description"), "Description")
        if body.get("Roles"):
            raise ACLError("Invalid Role: a role cannot link other roles")
        grants = decode_grants(body, "Role", self.policies, self.roles)
        clash = next((r for r in self.roles.values() if r.name == name and r.id != role_id), None)
        if clash is not None:
            raise ACLError(f"Invalid Role: A Role with Name {name!r} already exists")
        role = Role(self._new_id(), name, description, grants) if role_id is None else self.role(role_id)
        role.name, role.description, role.grants = name, description, grants
        role.modify_index = self._next_index()
        role.create_index = role.create_index or role.modify_index
        self.roles[role.id] = role
        return role

    def delete_role(self, role_id: str) -> None:
        if self.roles.pop(role_id, None) is not None:
            self._next_index()

    # -- tokens ---------------------------------------------------------------------------------------
    def token(self, accessor_id: str) -> Token:
        found = self.tokens.get(accessor_id)
        if found is None or self._expired(found):
            raise ACLError(NOT_FOUND, 403)
        return found

    def live_tokens(self) -> list[Token]:
        return [t for t in self.tokens.values() if not self._expired(t)]

    def create_token(self, body: dict[str, Any]) -> Token:
        accessor = string(body.get("AccessorID"), "AccessorID") or self._new_id()
        secret = string(body.get("SecretID"), "SecretID") or self._new_id()
        for what, value in (("AccessorID", accessor), ("SecretID", secret)):
            if not is_uuid(value):
                raise ACLError(f"Invalid Token: {what} is not a valid UUID")
        if accessor in self.tokens or accessor == ANONYMOUS_ID:
            raise ACLError("Invalid Token: AccessorID is already in use")
        if secret in self._by_secret or secret == ANONYMOUS_SECRET:
            raise ACLError("Invalid Token: SecretID is already in use")
        token = Token(accessor, secret, string(body.get("Description"), "Description"),
                      decode_grants(body, "Token", self.policies, self.roles), local=bool(body.get("Local")))
        self._expire(token, body)
        self._add_token(token)
        return token

    def update_token(self, accessor_id: str, body: dict[str, Any]) -> Token:
        token = self.token(accessor_id)
        if body.get("AccessorID") not in (None, "", accessor_id):
            raise ACLError("Invalid Token: AccessorID in the body differs from the one in the path")
        if body.get("SecretID") not in (None, "", token.secret_id):
            raise ACLError("Changing a token's SecretID is not permitted")
        if "Local" in body and bool(body["Local"]) != token.local:
            raise ACLError(f"Cannot toggle local mode of {accessor_id}")
        if body.get("ExpirationTime") or body.get("ExpirationTTL"):
            raise ACLError("Cannot change expiration time of " + accessor_id)
        token.description = string(body.get("Description"), "Description")
        token.grants = decode_grants(body, "Token", self.policies, self.roles)
        token.modify_index = self._next_index()
        return token

    def clone_token(self, accessor_id: str, description: str | None) -> Token:
        original = self.token(accessor_id)
        if original.accessor_id == ANONYMOUS_ID:
            raise ACLError("Cannot clone the anonymous token")
        token = Token(self._new_id(), self._new_id(),
                      original.description if description is None else description,
                      Grants(**{k: list(v) for k, v in vars(original.grants).items()}), original.local,
                      original.expires_at, original.expiration_time)
        self._add_token(token)
        return token

    def delete_token(self, accessor_id: str, requester: Token) -> None:
        token = self.token(accessor_id)
        if token.accessor_id == ANONYMOUS_ID:
            raise ACLError("Delete operation not permitted on the anonymous token")
        if token.accessor_id == requester.accessor_id:
            raise ACLError("Deletion of the request's authorization token is not permitted")
        del self.tokens[token.accessor_id]
        self._by_secret.pop(token.secret_id, None)
        self._next_index()

    def _add_token(self, token: Token) -> None:
        token.create_index = token.modify_index = self._next_index()
        token.create_time = rfc3339(self._wall_clock())
        self.tokens[token.accessor_id] = token
        self._by_secret[token.secret_id] = token.accessor_id

    def _expire(self, token: Token, body: dict[str, Any]) -> None:
        seconds = body.get("ExpirationTTL")  # in seconds: the HTTP layer decodes Consul's "10m"
        if seconds in (None, 0):
            return
        if type(seconds) not in (int, float) or not MIN_TTL <= seconds <= MAX_TTL:
            raise ACLError(f"Invalid Token: ExpirationTTL must be between {MIN_TTL:.0f}s and {MAX_TTL:.0f}s")
        token.expires_at = self._clock() + seconds
        token.expiration_time = rfc3339(self._wall_clock() + seconds)

    # -- answers ----------------------------------------------------------------------------------------
    def token_json(self, token: Token, show_secret: bool = True) -> dict[str, Any]:
        grants = self._grants_json(token.grants)
        out: dict[str, Any] = {"AccessorID": token.accessor_id,
                               "SecretID": token.secret_id if show_secret else HIDDEN,
                               "Description": token.description, **grants, "Local": token.local,
                               "CreateTime": token.create_time,
                               "Hash": content_hash(token.description, grants, token.local),
                               "CreateIndex": token.create_index, "ModifyIndex": token.modify_index}
        if token.expiration_time:
            out["ExpirationTime"] = token.expiration_time
        return out

    def role_json(self, role: Role) -> dict[str, Any]:
        grants = self._grants_json(role.grants)
        grants.pop("Roles", None)
        return {"ID": role.id, "Name": role.name, "Description": role.description, **grants,
                "Hash": content_hash(role.name, role.description, grants),
                "CreateIndex": role.create_index, "ModifyIndex": role.modify_index}

    def _grants_json(self, grants: Grants) -> dict[str, Any]:
        out: dict[str, Any] = {}
        policies = [{"ID": p, "Name": self.policies[p].name} for p in grants.policies if p in self.policies]
        roles = [{"ID": r, "Name": self.roles[r].name} for r in grants.roles if r in self.roles]
        services = [{k: v for k, v in i.items() if v} for i in grants.service_identities]
        for key, value in (("Policies", policies), ("Roles", roles), ("ServiceIdentities", services),
                           ("NodeIdentities", grants.node_identities),
                           ("TemplatedPolicies", grants.templated)):
            if value:
                out[key] = value
        return out

    def preview(self, template_name: str, variables: dict[str, Any]) -> dict[str, Any]:
        template = TEMPLATES.get(template_name)
        if template is None:
            raise ACLError(f"acl templated policy does not exist: {template_name}", 404)
        name = {str(k).lower(): v for k, v in variables.items()}.get("name", "")
        if template.needs_name and (not isinstance(name, str) or not name):
            raise ACLError(f"name is required for {template_name}")
        return synthetic_policy(template, name if template.needs_name else "")


