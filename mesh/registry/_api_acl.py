"""``/v1/acl/*``: bootstrap, tokens, policies, roles and templated policies, as Consul serves them.

Reading needs ``acl:read``, changing needs ``acl:write`` (the management token has both); a token
may always read itself (``token/self``). A SecretID reads as ``<hidden>`` to a token that may not
write ACLs. With ACLs off every endpoint answers Consul's ``401 ACL support disabled``. Auth
methods, binding rules and login are not kept here: they answer 400 and say so.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._context import Context, text
from ._decode import DecodeError, _canonical, _index, parse_duration, parse_json
from .acl import READ, TEMPLATES, WRITE, ACLError, is_uuid

ACL_DISABLED = "ACL support disabled"
#: The agent's tokens ``PUT /v1/agent/token/:type`` sets, by the names it takes (with Consul's
#: older spellings).
AGENT_TOKENS = {"default": "default", "agent": "agent", "agent_recovery": "agent_recovery",
                "agent_master": "agent_recovery", "replication": "replication", "dns": "dns",
                "config_file_service_registration": "config_file_service_registration",
                "acl_token": "default", "acl_agent_token": "agent", "acl_replication_token": "replication"}
NO_AUTH_METHODS = ("Auth methods, binding rules and login are not supported by the embedded registry; "
                   "create tokens with policies, roles or identities instead")
#: Consul's fields of the ACL bodies and of what they link, spelt in any case (py-consul sends some
#: in lower case, e.g. ``{"name": ...}``), as the registry decodes every body (:mod:`._decode`).
_FIELDS = _index(["ID", "Name", "Description", "Rules", "Datacenters", "AccessorID", "SecretID", "Policies",
                  "Roles", "ServiceIdentities", "NodeIdentities", "TemplatedPolicies", "Local",
                  "ExpirationTTL", "ExpirationTime", "BootstrapSecret"])
_LINKED = _index(["ID", "Name", "ServiceName", "Datacenters", "NodeName", "Datacenter", "TemplateName",
                  "TemplateVariables"])


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's body with Consul's field names; a linked item that is not an object is left
    as it is, for the store to refuse in its own words."""
    try:
        raw = parse_json(await request.read())
        body = _canonical(raw if raw is not None else {}, _FIELDS, "ACL")
    except DecodeError as exc:
        raise ACLError(str(exc)) from None
    for field in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities", "TemplatedPolicies"):
        if isinstance(body.get(field), list):
            body[field] = [_canonical(item, _LINKED, field) if isinstance(item, dict) else item
                           for item in body[field]]
    return body


class ACLAPI:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def _require_acls(self) -> None:
        """Answer 401 "ACL support disabled" when the registry runs without ACLs, as Consul does."""
        if self.ctx.acl is None:
            raise ACLError(ACL_DISABLED, 401)

    @property
    def store(self):
        self._require_acls()
        return self.ctx.acl

    def _may(self, request: web.Request, access: str) -> None:
        self._require_acls()  # before the token's check: Consul says 401 ahead of 403
        self.ctx.require(request, "acl", access)

    def _show_secrets(self, request: web.Request) -> bool:
        return self.ctx.authz(request).allows("acl", WRITE)

    # -- bootstrap and tokens ---------------------------------------------------------------------------
    async def bootstrap(self, request: web.Request) -> web.Response:
        body = await _body(request)
        token = self.store.bootstrap(body.get("BootstrapSecret") or None)
        return self.ctx.json(self.store.token_json(token))

    async def token_self(self, request: web.Request) -> web.Response:
        store = self.store
        token = self.ctx.token(request)
        return self.ctx.json(store.token_json(token))

    async def tokens(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        q = request.query
        if q.get("authmethod"):
            return self.ctx.json([], self.ctx.indexes.table("acl"))
        show = self._show_secrets(request)
        found = []
        for token in self.store.live_tokens():
            shown = self.store.token_json(token, show)
            if q.get("policy") and q["policy"] not in {p["ID"] for p in shown.get("Policies", [])}:
                continue
            if q.get("role") and q["role"] not in {r["ID"] for r in shown.get("Roles", [])}:
                continue
            if q.get("servicename") and q["servicename"] not in {
                    s["ServiceName"] for s in shown.get("ServiceIdentities", [])}:
                continue
            found.append(shown)
        return self.ctx.json(found, self.ctx.indexes.table("acl"))

    async def token_create(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        body = await _body(request)
        ttl = body.get("ExpirationTTL")
        if ttl not in (None, ""):
            try:
                if not isinstance(ttl, str | int | float) or isinstance(ttl, bool):
                    raise ValueError(ttl)
                body["ExpirationTTL"] = parse_duration(ttl, "ExpirationTTL")
            except (DecodeError, ValueError, TypeError):
                raise ACLError(f"Invalid Token: ExpirationTTL {ttl!r} is not a duration") from None
        token = self.store.create_token(body)
        return self.ctx.json(self.store.token_json(token))

    async def token_read(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        token = self.store.token(request.match_info["accessor"])
        shown = self.store.token_json(token, self._show_secrets(request))
        return self.ctx.json(shown, self.ctx.indexes.table("acl"))

    async def token_update(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        token = self.store.update_token(request.match_info["accessor"], await _body(request))
        return self.ctx.json(self.store.token_json(token))

    async def token_clone(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        body = await _body(request)
        token = self.store.clone_token(request.match_info["accessor"], body.get("Description"))
        return self.ctx.json(self.store.token_json(token))

    async def token_delete(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        self.store.delete_token(request.match_info["accessor"], self.ctx.token(request))
        return self.ctx.json(True)

    # -- policies -----------------------------------------------------------------------------------------
    async def policies(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        listed = [p.as_json(stub=True) for p in self.store.policies.values()]
        return self.ctx.json(listed, self.ctx.indexes.table("acl"))

    async def policy_create(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        policy = self.store.put_policy(await _body(request))
        return self.ctx.json(policy.as_json())

    async def policy_read(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json(self.store.policy(_uuid(request, "id", "policy")).as_json(),
                             self.ctx.indexes.table("acl"))

    async def policy_read_by_name(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json(self.store.policy_named(request.match_info["name"]).as_json(),
                             self.ctx.indexes.table("acl"))

    async def policy_update(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        body = await _body(request)
        policy_id = _uuid(request, "id", "policy")
        if body.get("ID") not in (None, "", policy_id):
            raise ACLError("Policy ID in URL and payload do not match")
        policy = self.store.put_policy(body, policy_id)
        return self.ctx.json(policy.as_json())

    async def policy_delete(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        self.store.delete_policy(_uuid(request, "id", "policy"))
        return self.ctx.json(True)

    # -- roles ----------------------------------------------------------------------------------------------
    async def roles(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        listed = [self.store.role_json(r) for r in self.store.roles.values()
                  if not request.query.get("policy") or request.query["policy"] in r.grants.policies]
        return self.ctx.json(listed, self.ctx.indexes.table("acl"))

    async def role_create(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        role = self.store.put_role(await _body(request))
        return self.ctx.json(self.store.role_json(role))

    async def role_read(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json(self.store.role_json(self.store.role(_uuid(request, "id", "role"))),
                             self.ctx.indexes.table("acl"))

    async def role_read_by_name(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json(self.store.role_json(self.store.role_named(request.match_info["name"])),
                             self.ctx.indexes.table("acl"))

    async def role_update(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        body = await _body(request)
        role_id = _uuid(request, "id", "role")
        if body.get("ID") not in (None, "", role_id):
            raise ACLError("Role ID in URL and payload do not match")
        role = self.store.put_role(body, role_id)
        return self.ctx.json(self.store.role_json(role))

    async def role_delete(self, request: web.Request) -> web.Response:
        self._may(request, WRITE)
        self.store.delete_role(_uuid(request, "id", "role"))
        return self.ctx.json(True)

    # -- templated policies -------------------------------------------------------------------------------
    async def templated_policies(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json({name: t.as_json() for name, t in TEMPLATES.items()})

    async def templated_policy(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        template = TEMPLATES.get(request.match_info["name"])
        if template is None:
            raise ACLError(f"Invalid templated policy Name: {request.match_info['name']}", 404)
        return self.ctx.json(template.as_json())

    async def templated_preview(self, request: web.Request) -> web.Response:
        self._may(request, READ)
        return self.ctx.json(self.store.preview(request.match_info["name"], await _body(request)))

    async def agent_token(self, request: web.Request) -> web.Response:
        """``PUT /v1/agent/token/:type``: set one of the agent's own tokens (acl:write)."""
        self._may(request, WRITE)
        use = AGENT_TOKENS.get(request.match_info["use"])
        if use is None:
            raise ACLError(f"Token {request.match_info['use']!r} is not a valid token type", 404)
        body = await _body(request)
        secret = body.get("Token", body.get("token", ""))
        if not isinstance(secret, str):
            raise ACLError("Request decode failed: Token must be a string")
        if secret:
            self.store.agent_tokens[use] = secret
        else:
            self.store.agent_tokens.pop(use, None)
        return text(200, "")

    async def not_kept(self, request: web.Request) -> web.Response:
        self.store  # noqa: B018 -- 401 first when ACLs are off
        return text(400, NO_AUTH_METHODS)

    def routes(self) -> list[web.RouteDef]:
        name = "{name:.+}"  # templated policies are named builtin/service: the name holds a slash
        return [
            web.put("/v1/acl/bootstrap", self.bootstrap),
            web.get("/v1/acl/token/self", self.token_self),
            web.get("/v1/acl/tokens", self.tokens),
            web.put("/v1/acl/token", self.token_create),
            web.put("/v1/acl/token/{accessor}/clone", self.token_clone),
            web.get("/v1/acl/token/{accessor}", self.token_read),
            web.put("/v1/acl/token/{accessor}", self.token_update),
            web.delete("/v1/acl/token/{accessor}", self.token_delete),
            web.get("/v1/acl/policies", self.policies),
            web.put("/v1/acl/policy", self.policy_create),
            web.get(f"/v1/acl/policy/name/{name}", self.policy_read_by_name),
            web.get("/v1/acl/policy/{id}", self.policy_read),
            web.put("/v1/acl/policy/{id}", self.policy_update),
            web.delete("/v1/acl/policy/{id}", self.policy_delete),
            web.get("/v1/acl/roles", self.roles),
            web.put("/v1/acl/role", self.role_create),
            web.get(f"/v1/acl/role/name/{name}", self.role_read_by_name),
            web.get("/v1/acl/role/{id}", self.role_read),
            web.put("/v1/acl/role/{id}", self.role_update),
            web.delete("/v1/acl/role/{id}", self.role_delete),
            web.get("/v1/acl/templated-policies", self.templated_policies),
            web.get(f"/v1/acl/templated-policy/name/{name}", self.templated_policy),
            web.post(f"/v1/acl/templated-policy/preview/{name}", self.templated_preview),
            web.route("*", "/v1/acl/{tail:.*}", self.not_kept),
            web.put("/v1/agent/token/{use}", self.agent_token),
        ]


def _uuid(request: web.Request, key: str, what: str) -> str:
    """A policy or role ID from the path; one that is not a UUID is a bad request, as in Consul."""
    value = request.match_info[key]
    if not is_uuid(value):
        raise ACLError(f"Invalid {what} ID: {value!r} is not a UUID")
    return value

