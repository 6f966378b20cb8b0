"""Consul's built-in policies: ``global-management``, and the templated policies a token or role
names instead of writing rules (``builtin/service``, ``builtin/node``, ``builtin/dns``), which are
also what service and node identities stand for."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
GLOBAL_MANAGEMENT_RULES = """\
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"""

_SERVICE = """
service "{{.Name}}" {
\tpolicy = "write"
}
service "{{.Name}}-sidecar-proxy" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "read"
}
node_prefix "" {
\tpolicy = "read"
}"""

_NODE = """
node "{{.Name}}" {
\tpolicy = "write"
}
service_prefix "" {
\tpolicy = "read"
}"""

_DNS = """
node_prefix "" {
\tpolicy = "read"
}
service_prefix "" {
\tpolicy = "read"
}
query_prefix "" {
\tpolicy = "read"
}"""

_NAME_SCHEMA = ('{\n\t\t"type": "object",\n\t\t"properties": {\n\t\t\t"name": { "type": "string", '
                '"$ref": "#/definitions/min-length-one" }\n\t\t},\n\t\t"required": ["name"],\n\t\t'
                '"definitions": {\n\t\t\t"min-length-one": {\n\t\t\t\t\t"type": "string",\n\t\t\t\t\t'
                '"minLength": 1\n\t\t\t}\n\t\t}\n\t}')


@dataclass(frozen=True)
class Template:
    name: str
    template_id: str
    text: str  # Consul's Go template; its one variable is {{.Name}}
    schema: str  # "" when it takes no variables

    @property
    def needs_name(self) -> bool:
        return bool(self.schema)

    def render(self, name: str = "") -> str:
        return self.text.replace("{{.Name}}", name)

    def as_json(self) -> dict:
        """Consul's answer for the template (``/v1/acl/templated-policy/name/:name``)."""
        return {"TemplateName": self.name, "Schema": self.schema, "Template": self.text, "Description": ""}


TEMPLATES = {t.name: t for t in (
    Template("builtin/service", "00000000-0000-0000-0000-000000000003", _SERVICE, _NAME_SCHEMA),
    Template("builtin/node", "00000000-0000-0000-0000-000000000004", _NODE, _NAME_SCHEMA),
    Template("builtin/dns", "00000000-0000-0000-0000-000000000005", _DNS, ""),
)}


def synthetic_policy(template: Template, name: str = "") -> dict:
    """The policy a templated policy stands for, as Consul previews it: named after a hash of its
    rules, which are the template filled in."""
    rules = template.render(name)
    digest = hashlib.blake2b(rules.encode(), digest_size=16).hexdigest()
    return {"ID": digest, "Name": f"synthetic-policy-{digest}",
            "Description": f"synthetic policy generated from templated policy: {template.name}",
            "Rules": rules, "Datacenters": None}
