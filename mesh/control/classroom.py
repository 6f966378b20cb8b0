"""A class on one registry, safely: a token per learner that reaches only that learner's own mesh.

The instructor starts a registry with ACLs on and default deny (``python -m mesh.registry
--acl-default-policy deny --acl-management-token-file FILE``, or a real Consul configured so), then
enrolls the class with one command (the token in the environment, where other users cannot read
it as they can a command line)::

    CONSUL_HTTP_TOKEN=$(cat FILE) python -m mesh.control.classroom --registry 127.0.0.1:8500 ada bob >t.csv

Each learner gets a policy ``learner-<name>`` and a token holding it, and uses it as
``Mesh(registry="127.0.0.1:8500", prefix="ada", token="...")``. The policy lets the learner write
their own mesh — services ``<name>-*``, keys ``<name>/*``, events ``<name>-*`` — and read what the
class shares: every service and node (a catalog is shared), the agent, and keys under
``class/``. Nothing else: another learner's keys cannot be read, changed or deleted, their
services cannot be deregistered, re-registered or put into maintenance. The anonymous token is
given Consul's ``builtin/dns`` templated policy, so that the registry's DNS interface (which
answers as the anonymous token) finds everyone's services.

Learner names are lowercase letters and digits only: with a dash allowed, ``ada-`` would be a
prefix of ``ada-b-``, and ada's policy would cover ada-b's services. Sessions are scoped by node
in Consul, and a class shares one node: the policy grants session reads only.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Iterable

import consul

from .keys import registry_name

__all__ = ["LEARNER", "SHARED_PREFIX", "enroll", "learner_rules", "main"]

#: What a learner may be called: it becomes their mesh's prefix (``Mesh(prefix=...)``).
LEARNER = re.compile(r"[a-z0-9]{1,24}")
#: The keys every learner may read (and only the instructor may write).
SHARED_PREFIX = "class/"
#: The anonymous token's SecretID, as Consul publishes it (its AccessorID is read through it).
ANONYMOUS_SECRET = "anonymous"


def learner_rules(name: str) -> dict:
    """The ACL rules (Consul's JSON form) of learner ``name``'s policy."""
    if not LEARNER.fullmatch(name):
        raise ValueError(f"a learner's name is 1 to 24 lowercase letters or digits, got {name!r} "
                         "(no dashes: 'ada-' would be a prefix of 'ada-b-')")
    if f"{name}/" == SHARED_PREFIX:
        raise ValueError(f"{name!r} is the class's shared folder ({SHARED_PREFIX}), not a learner's name")
    own_services = registry_name(name, "")  # "ada-": what Mesh(prefix="ada") registers
    return {
        "service_prefix": {own_services: {"policy": "write"}, "": {"policy": "read"}},
        "key_prefix": {f"{name}/": {"policy": "write"}, SHARED_PREFIX: {"policy": "read"}},
        "event_prefix": {own_services: {"policy": "write"}},
        "node_prefix": {"": {"policy": "read"}},
        "agent_prefix": {"": {"policy": "read"}},
        "session_prefix": {"": {"policy": "read"}},
    }


def enroll(client: consul.Consul, learners: Iterable[str]) -> dict[str, str]:
    """Create a policy and a token for each learner; return their tokens' SecretIDs, by name. A
    learner enrolled again gets a new token, and the old ones are revoked (a lost or leaked token
    is replaced this way). ``client`` must carry a token that may write ACLs. Every name is
    checked before anything is written."""
    names = list(dict.fromkeys(learners))
    rules = {name: learner_rules(name) for name in names}  # raises before any write
    policies = {p["Name"]: p["ID"] for p in client.acl.policy.list()}
    secrets: dict[str, str] = {}
    for name in names:
        policy_name = f"learner-{name}"
        if policy_name in policies:
            client.acl.policy.update(policies[policy_name], policy_name, rules=rules[name],
                                     description=f"{name}'s own mesh (prefix {name})")
            for old in client.acl.token.list(policy=policies[policy_name]):
                client.acl.token.delete(old["AccessorID"])
        else:
            policies[policy_name] = client.acl.policy.create(
                policy_name, rules=rules[name], description=f"{name}'s own mesh (prefix {name})")["ID"]
        token = client.acl.token.create(policies_id=[policies[policy_name]], description=f"learner {name}")
        secrets[name] = token["SecretID"]
    anonymous = client.acl.token.read_self(token=ANONYMOUS_SECRET)["AccessorID"]
    client.acl.token.update(anonymous, description="Anonymous Token",
                            templated_policies=[{"builtin/dns": {}}])
    return secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.control.classroom",
                                     description="Give each learner a token for their own mesh on a "
                                                 "class registry; prints name,token lines (CSV).")
    parser.add_argument("--registry", default="127.0.0.1:8500", help="host:port of the registry's HTTP API")
    parser.add_argument("--token", default=os.environ.get("CONSUL_HTTP_TOKEN"),
                        help="a token that may write ACLs (the management token; default: "
                             "$CONSUL_HTTP_TOKEN, which other users of the machine cannot read, unlike a "
                             "command line)")
    parser.add_argument("learners", nargs="+", help="learners' names: lowercase letters and digits")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give the management token: --token, or CONSUL_HTTP_TOKEN in the environment")
    host, _, port = args.registry.rpartition(":")
    client = consul.Consul(host=host or "127.0.0.1", port=int(port))
    client.token = args.token
    try:
        secrets = enroll(client, args.learners)
    except ValueError as exc:
        parser.error(str(exc))
    except consul.ConsulException as exc:
        print(f"the registry refused: {exc}", file=sys.stderr)
        return 1
    writer = csv.writer(sys.stdout)
    writer.writerow(["learner", "token"])
    writer.writerows(secrets.items())
    return 0


if __name__ == "__main__":
    sys.exit(main())
