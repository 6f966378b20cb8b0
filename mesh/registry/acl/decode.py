"""Check what a token or role links, from a request body whose field names the HTTP layer has
already made Consul's: every link is checked before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .records import ACLError, Grants, Policy, Role
from .templates import TEMPLATES

_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-_]*[a-z0-9])?$")


def decode_grants(body: dict[str, Any], what: str, policies: Mapping[str, Policy],
                  roles: Mapping[str, Role]) -> Grants:
    """Return the grants ``body`` (a token's or a role's) links; raise :class:`ACLError` for a link
    to nothing or a malformed one. ``what`` ("Token", "Role") starts each message."""
    grants = Grants()
    for link in _links(body.get("Policies"), f"{what}.Policies"):
        policy = _linked(link, policies)
        if policy is None:
            raise ACLError(f"Invalid {what}: no such ACL policy: {link.get('ID') or link.get('Name')!r}")
        grants.policies.append(policy.id)
    for link in _links(body.get("Roles"), f"{what}.Roles"):
        role = _linked(link, roles)
        if role is None:
            raise ACLError(f"Invalid {what}: no such ACL role: {link.get('ID') or link.get('Name')!r}")
        grants.roles.append(role.id)
    for identity in _objects(body.get("ServiceIdentities"), f"{what}.ServiceIdentities"):
        name = identity.get("ServiceName")
        if not isinstance(name, str) or not _SERVICE_NAME.match(name):
            raise ACLError(f"Invalid {what}: Service identity has an invalid name: {name!r}")
        grants.service_identities.append(
            {"ServiceName": name, "Datacenters": strings(identity.get("Datacenters"), "Datacenters")})
    for identity in _objects(body.get("NodeIdentities"), f"{what}.NodeIdentities"):
        name, datacenter = identity.get("NodeName"), identity.get("Datacenter")
        if not isinstance(name, str) or not _SERVICE_NAME.match(name):
            raise ACLError(f"Invalid {what}: Node identity has an invalid name: {name!r}")
        if not isinstance(datacenter, str) or not datacenter:
            raise ACLError(f"Invalid {what}: a node identity needs a Datacenter")
        grants.node_identities.append({"NodeName": name, "Datacenter": datacenter})
    for templated in _objects(body.get("TemplatedPolicies"), f"{what}.TemplatedPolicies"):
        name = templated.get("TemplateName")
        template = TEMPLATES.get(name) if isinstance(name, str) else None
        if template is None:
            raise ACLError(f"Invalid {what}: no such templated policy: {name!r}")
        variables = templated.get("TemplateVariables") or {}
        if not isinstance(variables, dict):
            raise ACLError(f"Invalid {what}: TemplateVariables must be an object")
        variables = {str(k).lower(): v for k, v in variables.items()}
        if template.needs_name and (not isinstance(variables.get("name"), str)
                                    or not _SERVICE_NAME.match(variables["name"])):
            raise ACLError(f"Invalid {what}: templated policy {template.name} needs a valid name "
                           "(lowercase letters, digits, '-' and '_')")
        entry: dict[str, Any] = {"TemplateName": template.name}
        if template.needs_name:
            entry["TemplateVariables"] = {"name": variables["name"]}
        grants.templated.append(entry)
    return grants


def _linked(link: dict[str, Any], table: Mapping[str, Any]):
    if link.get("ID"):
        return table.get(link["ID"])
    return next((item for item in table.values() if item.name == link.get("Name")), None)


def string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ACLError(f"Request decode failed: {what} must be a string")
    return value


def strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ACLError(f"Request decode failed: {what} must be a list of strings")
    return list(value)


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ACLError(f"Request decode failed: {what} must be a list of objects")
    return list(value)


def _links(value: Any, what: str) -> list[dict[str, Any]]:
    links = _objects(value, what)
    for link in links:
        if not isinstance(link.get("ID", ""), str) or not isinstance(link.get("Name", ""), str) \
                or not (link.get("ID") or link.get("Name")):
            raise ACLError(f"Request decode failed: each of {what} needs an ID or a Name")
    return links
