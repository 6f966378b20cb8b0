"""The embedded registry's ACL system over HTTP, as py-consul and a hostile classmate meet it: the
``/v1/acl`` API, the check on every other endpoint (Consul's 403 and words), lists filtered to what
a token may read, the three places a token may travel, the command line, and DNS."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import consul
import dns.message
import dns.query
import pytest
import requests

from mesh.registry import ACLConfig, Registry
from mesh.registry.acl import ANONYMOUS_ID, GLOBAL_MANAGEMENT_ID

from .conftest import free_port

ROOT = "root-secret"
ADA_RULES = {"key_prefix": {"ada/": {"policy": "write"}}, "service_prefix": {"ada-": {"policy": "write"}}}


@pytest.fixture
def acl_registry():
    with Registry(acl=ACLConfig("deny", ROOT), seed=3) as registry:
        yield registry


@pytest.fixture
def admin(acl_registry) -> consul.Consul:
    return acl_registry.client(ROOT)


def token_for(admin: consul.Consul, name: str, rules: dict) -> str:
    policy = admin.acl.policy.create(name=name, rules=rules)
    return admin.acl.token.create(policies_id=[policy["ID"]], description=name)["SecretID"]


def test_without_acls_the_acl_api_says_it_is_disabled_and_everything_is_allowed():
    with Registry() as registry:
        response = requests.get(f"{registry.url}/v1/acl/tokens", timeout=5)
        assert (response.status_code, response.text) == (401, "ACL support disabled")
        assert response.headers.get("X-Consul-Default-Acl-Policy") is None  # a plain-text answer
        c = registry.client()
        assert c.kv.put("anything", "1") and c.acl is not None
        with pytest.raises(consul.ACLDisabled):
            c.acl.token.read_self()
        assert requests.get(f"{registry.url}/v1/kv/anything", timeout=5).headers[
            "X-Consul-Default-Acl-Policy"] == "allow"


def test_bootstrap_makes_one_management_token_then_refuses_in_consuls_words():
    with Registry(acl=ACLConfig("deny")) as registry:
        c = registry.client()
        first = c.acl.bootstrap()
        assert first["Description"] == "Bootstrap Token (Global Management)"
        assert first["Policies"] == [{"ID": GLOBAL_MANAGEMENT_ID, "Name": "global-management"}]
        with pytest.raises(consul.ACLPermissionDenied,
                           match=r"ACL bootstrap no longer allowed \(reset index: \d+\)"):
            c.acl.bootstrap()
        assert registry.client(first["SecretID"]).kv.put("k", "v")
    with Registry(acl=ACLConfig("deny", ROOT)) as registry, \
            pytest.raises(consul.ACLPermissionDenied, match="no longer allowed"):
        registry.client().acl.bootstrap()  # the management token given counts as the bootstrap


def test_tokens_policies_and_roles_have_consuls_lifecycle(acl_registry, admin):
    listed = {t["Description"] for t in admin.acl.token.list()}
    assert listed == {"Initial Management Token", "Anonymous Token"}
    policy = admin.acl.policy.create(name="ada", rules=ADA_RULES, description="ada's")
    assert admin.acl.policy.read(policy["ID"])["Rules"] and admin.acl.policy.list()[0]["ID"]
    with pytest.raises(consul.ConsulException, match="already exists"):
        admin.acl.policy.create(name="ada")
    role = admin.acl.role.create(name="class", policies_id=[policy["ID"]])
    token = admin.acl.token.create(roles_id=[role["ID"]], description="ada")
    assert admin.acl.token.list(role=role["ID"])[0]["AccessorID"] == token["AccessorID"]
    ada = acl_registry.client(token["SecretID"])
    assert ada.acl.token.read_self()["Roles"] == [{"ID": role["ID"], "Name": "class"}]
    assert ada.kv.put("ada/x", "1")
    clone = admin.acl.token.clone(token["AccessorID"], description="ada's copy")
    assert clone["SecretID"] != token["SecretID"] and clone["Roles"] == token["Roles"]
    admin.acl.token.update(token["AccessorID"], description="ada, no rights")  # roles replaced: none
    with pytest.raises(consul.ACLPermissionDenied):
        ada.kv.put("ada/x", "2")
    assert admin.acl.token.delete(clone["AccessorID"])
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        acl_registry.client(clone["SecretID"]).kv.get("ada/x")
    assert admin.acl.role.delete(role["ID"]) and admin.acl.role.read(role["ID"]) is None
    assert admin.acl.policy.delete(policy["ID"]) and admin.acl.policy.read(policy["ID"]) is None


def test_what_consul_refuses_to_change_is_refused(acl_registry, admin):
    with pytest.raises(consul.ConsulException, match="global-management"):
        admin.acl.policy.update(GLOBAL_MANAGEMENT_ID, "global-management", rules={"acl": "read"})
    with pytest.raises(consul.ConsulException, match="global-management"):
        admin.acl.policy.delete(GLOBAL_MANAGEMENT_ID)
    with pytest.raises(consul.ConsulException, match="anonymous token"):
        admin.acl.token.delete(ANONYMOUS_ID)
    me = admin.acl.token.read_self()["AccessorID"]
    with pytest.raises(consul.ConsulException, match="request's authorization token"):
        admin.acl.token.delete(me)
    with pytest.raises(consul.ConsulException, match="no such ACL policy"):
        admin.acl.token.create(policies_name=["nobody-made-this"])
    with pytest.raises(consul.ConsulException, match="invalid Name"):
        admin.acl.policy.create(name="has spaces")
    with pytest.raises(consul.ConsulException, match="Failed to parse ACL rules"):
        admin.acl.policy.create(name="typo", rules={"key_prefixes": {"": {"policy": "read"}}})
    with pytest.raises(consul.ConsulException, match="not a valid UUID"):
        admin.acl.token.create(accessor_id="not-a-uuid")
    assert len(admin.acl.token.list()) == 2 and len(admin.acl.policy.list()) == 1  # nothing half-made


def test_a_token_expiry_is_a_duration_in_consuls_bounds(admin):
    created = admin.acl.token.create(expiration_ttl="10m")
    assert created["ExpirationTime"].endswith("Z")
    for ttl, words in (("30s", "between 60s and 86400s"), ("soon", "is not a duration")):
        with pytest.raises(consul.ConsulException, match=words):
            admin.acl.token.create(expiration_ttl=ttl)


def test_a_token_that_may_only_read_acls_sees_no_secret(acl_registry, admin):
    reader = token_for(admin, "acl-reader", {"acl": "read"})
    listed = acl_registry.client(reader).acl.token.list()
    assert {t["SecretID"] for t in listed} == {"<hidden>"}
    with pytest.raises(consul.ACLPermissionDenied, match="lacks permission 'acl:write'"):
        acl_registry.client(reader).acl.token.create()
    assert ROOT in {t["SecretID"] for t in admin.acl.token.list()}


def test_a_classmate_cannot_read_change_or_delete_anothers_keys(acl_registry, admin):
    ada = acl_registry.client(token_for(admin, "ada", ADA_RULES))
    bob = acl_registry.client(token_for(admin, "bob", {"key_prefix": {"bob/": {"policy": "write"}}}))
    assert bob.kv.put("bob/config", "mine") and ada.kv.put("ada/config", "mine")
    ada_id = ada.acl.token.read_self()["AccessorID"]
    denied = (f"Permission denied: token with AccessorID '{ada_id}' lacks permission 'key:{{}}' "
              'on \\"bob/config\\"')
    with pytest.raises(consul.ACLPermissionDenied, match=denied.format("read")):
        ada.kv.get("bob/config")
    with pytest.raises(consul.ACLPermissionDenied, match=denied.format("write")):
        ada.kv.put("bob/config", "hijacked")
    with pytest.raises(consul.ACLPermissionDenied, match=denied.format("write")):
        ada.kv.delete("bob/config")
    with pytest.raises(consul.ACLPermissionDenied, match="lacks permission 'key:write' on \"\""):
        ada.kv.delete("", recurse=True)
    assert bob.kv.get("bob/config")[1]["Value"] == b"mine"
    # A listing shows only what the token may read, and says that it was cut.
    _, seen = ada.kv.get("", recurse=True)
    assert [e["Key"] for e in seen] == ["ada/config"]
    response = requests.get(f"{acl_registry.url}/v1/kv/?keys", headers={"X-Consul-Token": ROOT}, timeout=5)
    assert response.json() == ["ada/config", "bob/config"]
    response = requests.get(f"{acl_registry.url}/v1/kv/?recurse", params={"token": admin.token}, timeout=5)
    assert "X-Consul-Results-Filtered-By-ACLs" not in response.headers
    response = requests.get(f"{acl_registry.url}/v1/kv/?recurse",
                            headers={"Authorization": f"Bearer {ada.token}"}, timeout=5)
    assert [e["Key"] for e in response.json()] == ["ada/config"]
    assert response.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    assert response.headers["X-Consul-Default-Acl-Policy"] == "deny"


def test_a_classmate_cannot_deregister_take_over_or_pause_anothers_services(acl_registry, admin):
    ada = acl_registry.client(token_for(admin, "ada", {**ADA_RULES, "service_prefix": {
        "ada-": {"policy": "write"}, "": {"policy": "read"}}, "node_prefix": {"": {"policy": "read"}}}))
    bob = acl_registry.client(token_for(admin, "bob", {"service_prefix": {"bob-": {"policy": "write"}}}))
    assert bob.agent.service.register("bob-greeter", service_id="bob-greeter-1", port=5001)
    assert ada.agent.service.register("ada-greeter", service_id="ada-greeter-1", port=5002)
    with pytest.raises(consul.ACLPermissionDenied, match=r'service:write. on "bob-greeter"'):
        ada.agent.service.deregister("bob-greeter-1")
    with pytest.raises(consul.ACLPermissionDenied, match="service:write"):
        ada.agent.service.maintenance("bob-greeter-1", True, "mine now")
    with pytest.raises(consul.ACLPermissionDenied, match="service:write' on \"bob-greeter\""):
        ada.agent.service.register("ada-greeter", service_id="bob-greeter-1", port=6000)  # bob's ID
    with pytest.raises(consul.ACLPermissionDenied, match="node:write"):
        ada.agent.maintenance(True, "everyone off")
    assert admin.agent.services()["bob-greeter-1"]["Port"] == 5001
    assert admin.health.service("bob-greeter", passing=True)[1]  # still in discovery
    assert sorted(ada.agent.services()) == ["ada-greeter-1", "bob-greeter-1"]  # ada may read all
    assert sorted(bob.agent.services()) == ["bob-greeter-1"]  # bob only his own
    assert ada.agent.service.deregister("ada-greeter-1")


def test_an_unknown_token_is_refused_everywhere_it_matters_and_anonymous_follows_the_default(acl_registry):
    stranger = acl_registry.client("0bad0bad-0000-0000-0000-000000000000")
    with pytest.raises(consul.ACLPermissionDenied, match=r"^ACL not found$"):
        stranger.kv.get("x")
    anonymous = acl_registry.client()
    with pytest.raises(consul.ACLPermissionDenied,
                       match=r"anonymous token lacks permission 'key:write'.*used implicitly"):
        anonymous.kv.put("x", "1")
    assert anonymous.catalog.services()[1] == {}  # filtered to nothing, not refused
    assert anonymous.status.leader()  # the status API needs no token
    with Registry(acl=ACLConfig("allow", ROOT)) as open_registry:
        assert open_registry.client().kv.put("x", "1")
        with pytest.raises(consul.ACLPermissionDenied, match="acl:read"):
            open_registry.client().acl.token.list()


def test_a_transaction_applies_all_of_its_operations_or_none(acl_registry, admin):
    one = base64.b64encode(b"1").decode()
    ada = token_for(admin, "ada", ADA_RULES)

    def txn(token: str, ops: list) -> requests.Response:
        # py-consul's txn.put sends no token (its own limit), so this speaks HTTP as Consul's docs do.
        return requests.put(f"{acl_registry.url}/v1/txn", headers={"X-Consul-Token": token}, json=ops,
                            timeout=5)

    done = txn(ada, [{"KV": {"Verb": "set", "Key": "ada/a", "Value": one}},
                     {"KV": {"Verb": "get", "Key": "ada/a"}}])
    assert done.status_code == 200 and done.json()["Errors"] is None
    assert done.json()["Results"][1]["KV"]["Value"] == one
    index = done.json()["Results"][0]["KV"]["ModifyIndex"]
    failed = txn(ada, [{"KV": {"Verb": "set", "Key": "ada/b", "Value": one}},
                       {"KV": {"Verb": "cas", "Key": "ada/a", "Value": one, "Index": index + 1}},
                       {"KV": {"Verb": "set", "Key": "bob/a", "Value": one}},
                       {"KV": {"Verb": "check-not-exists", "Key": "ada/a"}}])
    assert failed.status_code == 409 and failed.json()["Results"] is None
    assert failed.json()["Errors"] == [
        {"OpIndex": 1, "What": 'failed to set key "ada/a", index is stale'},
        {"OpIndex": 2, "What": "Permission denied"},
        {"OpIndex": 3, "What": 'key "ada/a" exists'}]
    assert admin.kv.get("ada/b")[1] is None and admin.kv.get("bob/a")[1] is None  # nothing applied
    anonymous = txn("", [{"KV": {"Verb": "get", "Key": "ada/a"}}])
    assert anonymous.json()["Errors"][0]["What"] == "Permission denied"
    too_many = txn(ROOT, [{"KV": {"Verb": "get", "Key": "x"}}] * 129)
    assert too_many.status_code == 413
    assert too_many.text == "Transaction contains too many operations (129 > 128)"
    node_op = txn(ROOT, [{"Node": {"Verb": "get", "Node": {"Node": "workbench"}}}])
    assert node_op.status_code == 400 and "KV only" in node_op.text
    assert consul.Consul(port=acl_registry.http_port).txn  # py-consul's own call reaches it (anonymous)


def test_dns_answers_as_the_anonymous_token_may_read(acl_registry, admin):
    admin.agent.service.register("web", port=80, check=consul.Check.ttl("30s"))
    admin.agent.check.ttl_pass("service:web")
    query = dns.message.make_query("web.service.consul", "A")

    def answered() -> bool:
        reply = dns.query.udp(query, acl_registry.host, port=acl_registry.dns_port, timeout=2)
        return bool(reply.answer)

    assert not answered()
    admin.acl.token.update(ANONYMOUS_ID, templated_policies=[{"builtin/dns": {}}])
    assert answered()


def test_the_command_line_starts_it_with_acls_on():
    port = free_port()
    command = [sys.executable, "-m", "mesh.registry", "--http-port", str(port), "--dns-port", "-1",
               "--acl-default-policy", "deny", "--acl-management-token", ROOT]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert "registry: HTTP API on" in server.stdout.readline()
            assert "ACLs on, default policy deny" in server.stdout.readline()
            c = consul.Consul(port=port, token=ROOT)
            assert c.acl.token.read_self()["Description"] == "Initial Management Token"
            with pytest.raises(consul.ACLPermissionDenied):
                consul.Consul(port=port).kv.put("x", "1")
        finally:
            server.terminate()
            server.wait(timeout=10)
    refused = subprocess.run([sys.executable, "-m", "mesh.registry", "--acl-default-policy", "maybe"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "invalid choice: 'maybe'" in refused.stderr


# -- what a hostile review found (each was a way in, or a way to stop the registry) ------------------
def test_a_filter_regex_cannot_hold_the_registry(acl_registry, admin):
    started = time.monotonic()
    response = requests.get(f"{acl_registry.url}/v1/catalog/nodes", timeout=10,
                            params={"filter": 'Node matches "(.*.*.*.*.*.*)*z"'})  # no token needed
    assert response.status_code == 200 and time.monotonic() - started < 5  # RE2: linear time
    deep = requests.get(f"{acl_registry.url}/v1/catalog/nodes", params={"filter": "(" * 1200 + "a == b"},
                        headers={"X-Consul-Token": ROOT}, timeout=10)
    assert deep.status_code == 400 and "nested too deep" in deep.text


def test_a_classmate_cannot_squat_the_ids_a_learners_mesh_will_register(acl_registry, admin):
    from mesh.control.classroom import enroll

    tokens = enroll(admin, ["ada", "bob"])
    ada, bob = acl_registry.client(tokens["ada"]), acl_registry.client(tokens["bob"])
    with pytest.raises(consul.ACLPermissionDenied, match=r'service:write. on "ada-greeter-1"'):
        bob.agent.service.register("bob-x", service_id="ada-greeter-1", port=1)
    assert bob.agent.service.register("bob-x", service_id="bob-x", port=1)
    with pytest.raises(consul.ACLPermissionDenied, match=r'service:write. on "ada-web"'):
        bob.agent.check.register("squat", check=consul.Check.ttl("30s"), check_id="service:ada-web",
                                 service_id="bob-x")
    with pytest.raises(consul.ConsulException, match="the registry's own"):
        bob.agent.service.register("bob-x", service_id="consul", port=1)
    assert ada.agent.service.register("ada-greeter", service_id="ada-greeter-1", port=2,
                                      check=consul.Check.ttl("30s"))
    assert admin.catalog.service("consul")[1]  # the registry's own entry is untouched


def test_a_check_set_through_the_catalog_is_its_services_to_set(acl_registry, admin):
    admin.catalog.register("ext", "10.0.0.1", service={"Service": "ada-db", "ID": "ada-db"})
    only_node = token_for(admin, "ext-writer", {"node": {"ext": {"policy": "write"}},
                                                 "service": {"bob-x": {"policy": "write"}}})
    response = requests.put(f"{acl_registry.url}/v1/catalog/register", headers={"X-Consul-Token": only_node},
                            json={"Node": "ext", "Address": "10.0.0.1", "Check": {
                                "CheckID": "x", "Name": "x", "ServiceID": "ada-db", "Status": "critical"}},
                            timeout=5)
    assert response.status_code == 403 and "service:write' on \"ada-db\"" in response.text
    assert admin.health.checks("ada-db")[1] == []


def test_identities_and_templated_policies_cannot_smuggle_rules_in(admin):
    smuggled = 'x" { policy = "write" }\nkey_prefix "" { policy = "write" }\nnode "y'
    for grants in ({"NodeIdentities": [{"NodeName": smuggled, "Datacenter": "dc1"}]},
                   {"TemplatedPolicies": [{"TemplateName": "builtin/service",
                                           "TemplateVariables": {"Name": 'a"b'}}]},
                   {"TemplatedPolicies": [{"TemplateName": ["builtin/service"]}]},
                   {"TemplatedPolicies": [{"TemplateName": "builtin/node", "TemplateVariables": "x"}]}):
        response = requests.put(f"http://{admin.http.host}:{admin.http.port}/v1/acl/token", json=grants,
                                headers={"X-Consul-Token": ROOT}, timeout=5)
        assert response.status_code == 400, (grants, response.text)
    elsewhere = admin.acl.token.create(node_identities=["web:dc9"])  # a node identity in another dc
    refused = requests.put(f"http://{admin.http.host}:{admin.http.port}/v1/catalog/register", timeout=5,
                           headers={"X-Consul-Token": elsewhere["SecretID"]},
                           json={"Node": "web", "Address": "10.0.0.2"})
    assert refused.status_code == 403


@pytest.mark.parametrize("rules", [
    'key "a" { policy = "deny" }\n"key" "a" { policy = "write" }',
    'key { "a" { policy = "deny" } }\nkey = { a = { policy = "write" } }',
    '{"key": {"a": {"policy": "deny"}}, "key": {"b": {"policy": "read"}}}',
])
def test_a_deny_cannot_be_lost_to_a_second_spelling_of_the_same_rule(admin, rules):
    response = requests.put(f"http://{admin.http.host}:{admin.http.port}/v1/acl/policy", timeout=5,
                            headers={"X-Consul-Token": ROOT}, json={"Name": "twice", "Rules": rules})
    assert response.status_code == 400 and "given twice" in response.text


def test_re_enrolling_a_learner_revokes_their_old_token_and_class_is_not_a_name(acl_registry, admin):
    from mesh.control.classroom import enroll, learner_rules

    first = enroll(admin, ["ada"])["ada"]
    second = enroll(admin, ["ada"])["ada"]
    assert acl_registry.client(second).kv.put("ada/x", "1")
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        acl_registry.client(first).kv.put("ada/x", "2")
    with pytest.raises(ValueError, match="shared folder"):
        learner_rules("class")
    bad_ttl = requests.put(f"{acl_registry.url}/v1/acl/token", json={"ExpirationTTL": []},
                           headers={"X-Consul-Token": ROOT}, timeout=5)
    assert bad_ttl.status_code == 400 and "not a duration" in bad_ttl.text


def test_the_management_token_can_come_from_a_file_not_the_command_line(tmp_path):
    secret = tmp_path / "management-token"
    secret.write_text(f"{ROOT}\n")
    port = free_port()
    command = [sys.executable, "-m", "mesh.registry", "--http-port", str(port), "--dns-port", "-1",
               "--acl-default-policy", "deny", "--acl-management-token-file", str(secret)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert "registry: HTTP API on" in server.stdout.readline()
            assert ROOT not in " ".join(command)
            assert consul.Consul(port=port, token=ROOT).acl.token.read_self()["SecretID"] == ROOT
        finally:
            server.terminate()
            server.wait(timeout=10)
