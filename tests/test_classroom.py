"""A class on one registry with ACLs on: the instructor enrolls learners with one command, each
learner's mesh works fully with their token (in the kernel and as processes), and a classmate's
token can neither read, change nor delete it — every refusal Consul's 403 in Consul's words."""

from __future__ import annotations

import subprocess
import sys

import consul
import dns.message
import dns.query
import pytest

from mesh import Mesh
from mesh.control.classroom import enroll, learner_rules
from mesh.pb.greeter_pb2 import HelloRequest
from mesh.registry import ACLConfig, Registry

from .conftest import MODES

ROOT = "instructor-secret"


@pytest.fixture(scope="module")
def classroom():
    with Registry(acl=ACLConfig("deny", ROOT), seed=5) as registry:
        tokens = enroll(registry.client(ROOT), ["ada", "bob"])
        yield registry, tokens


@pytest.mark.parametrize("mode", MODES)
def test_a_learners_mesh_works_with_their_token_and_a_classmate_cannot_touch_it(classroom, mode):
    registry, tokens = classroom
    with Mesh({"greeter": 2}, registry=registry, prefix="ada", token=tokens["ada"], name=f"ada-{mode}",
              mode=mode, seed=1) as ada:
        ada.wait_until_passing(timeout=30)
        assert ada.client("greeter").SayHello(HelloRequest(name="Ada"), timeout=5).name == "Ada"
        ada.set_policy("greeter", max_attempts=2)  # the config center: ada/config/...
        ada.config("greeter").set("age", 30)
        ada.allow_callers("greeter", ["client"])  # shared with the processes: ada/access/...
        ada.inject("greeter-1", delay=0.01)  # a process acknowledges under ada/faults-applied/
        ada.clear_faults()
        hello = ada.client("greeter").SayHello
        ada.wait_until(lambda: hello(HelloRequest(name="Ada"), timeout=5).age == 30, timeout=15)
        bob = registry.client(tokens["bob"])
        bob_id = bob.acl.token.read_self()["AccessorID"]
        lacks = f"token with AccessorID '{bob_id}' lacks permission"
        key = "ada/config/greeter/age"
        for attempt, access in ((lambda: bob.kv.get(key), "key:read"),
                                (lambda: bob.kv.put(key, "99"), "key:write"),
                                (lambda: bob.kv.delete("ada/", recurse=True), "key:write"),
                                (lambda: bob.kv.delete("ada/access/greeter"), "key:write"),
                                (lambda: bob.agent.service.deregister(ada.registry_id("greeter-1")),
                                 "service:write"),
                                (lambda: bob.agent.service.maintenance(ada.registry_id("greeter-2"), True),
                                 "service:write"),
                                (lambda: bob.agent.service.register("ada-greeter", port=1), "service:write")):
            with pytest.raises(consul.ACLPermissionDenied, match=f"{lacks} '{access}'"):
                attempt()
        assert registry.client(ROOT).kv.get(key)[1]["Value"] == b"30"
        assert len(ada.passing("greeter")) == 2  # still both in discovery, rules still in force
        # DNS answers as the anonymous token, which enrollment let read the catalog.
        query = dns.message.make_query(f"{ada.registry_name('greeter')}.service.consul", "A")
        reply = dns.query.udp(query, registry.host, port=registry.dns_port, timeout=2)
        assert reply.answer and "127.0.0.1" in reply.answer[0].to_text()  # both replicas, on loopback


def test_enrollment_refuses_names_whose_prefixes_overlap_before_writing_anything(classroom):
    registry, _ = classroom
    admin = registry.client(ROOT)
    policies = len(admin.acl.policy.list())
    with pytest.raises(ValueError, match="no dashes"):
        enroll(admin, ["carol", "ada-b"])
    assert len(admin.acl.policy.list()) == policies
    with pytest.raises(ValueError, match="lowercase"):
        learner_rules("Ada")
    renewed = enroll(admin, ["ada"])  # again: the same policy, a new token
    assert len(admin.acl.policy.list()) == policies
    assert registry.client(renewed["ada"]).kv.put("ada/x", "1")


def test_the_instructors_one_command_prints_a_token_per_learner(classroom):
    registry, _ = classroom
    command = [sys.executable, "-m", "mesh.control.classroom", "--registry", registry.http_address]
    done = subprocess.run([*command, "--token", ROOT, "dan", "eve"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "learner,token" and [line.split(",")[0] for line in lines[1:]] == ["dan", "eve"]
    dan = registry.client(lines[1].split(",")[1])
    assert dan.kv.put("dan/notes", "mine")
    with pytest.raises(consul.ACLPermissionDenied):
        dan.kv.put("eve/notes", "not mine")
    refused = subprocess.run([*command, "--token", "not-the-instructor", "fay"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and "the registry refused" in refused.stderr


def test_a_mesh_can_start_its_own_registry_with_acls_on_and_uses_its_management_token():
    with Mesh({"greeter": 1}, name="acl-own", acl=ACLConfig("deny"), seed=3) as mesh:
        mesh.wait_until_passing()
        assert mesh.client("greeter").SayHello(HelloRequest(name="Ada"), timeout=5).name == "Ada"
        assert mesh.consul.acl.token.read_self()["Description"] == "Initial Management Token"
        anonymous = consul.Consul(host=mesh.backend.host, port=mesh.backend.http_port)
        anonymous.token = None
        with pytest.raises(consul.ACLPermissionDenied, match="anonymous token lacks permission 'key:write'"):
            anonymous.kv.put("config/greeter/age", "1")
        assert anonymous.catalog.services()[1] == {}  # filtered to nothing
    with pytest.raises(ValueError, match="acl= configures an embedded registry"):
        Mesh({"greeter": 1}, name="acl-elsewhere", registry="127.0.0.1:1", acl=ACLConfig("deny"))
