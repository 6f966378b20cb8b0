"""Consul's ACL rules and the decision they make, as pure logic: parsing (HCL and JSON), the most
specific rule winning, merged policies, default policies, recursive deletes, and properties over
random rule sets: a token never does more than its rules allow."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.registry.acl import (
    ACCESS,
    ALLOW_ALL,
    DENY,
    DENY_ALL,
    LIST,
    MAX_RULES,
    READ,
    WRITE,
    ACLConfig,
    ACLError,
    ACLStore,
    Authorizer,
    Rules,
    RulesError,
    grants,
    merge,
    parse_rules,
)


def authorizer(text: str, default: str = DENY_ALL) -> Authorizer:
    return Authorizer(parse_rules(text), default)


def test_an_exact_rule_beats_every_prefix_and_the_longest_prefix_beats_shorter_ones():
    ada = authorizer('''
        key_prefix "" { policy = "read" }
        key_prefix "ada/" { policy = "write" }
        key_prefix "ada/secret/" { policy = "deny" }
        key "ada/secret/shared" { policy = "read" }
        key "ada/readme" { policy = "read" }
    ''')
    assert ada.allows("key", WRITE, "ada/notes")
    assert not ada.allows("key", WRITE, "ada/readme") and ada.allows("key", READ, "ada/readme")
    assert not ada.allows("key", READ, "ada/secret/diary")
    assert ada.allows("key", READ, "ada/secret/shared") and not ada.allows("key", WRITE, "ada/secret/shared")
    assert ada.allows("key", READ, "bob/notes") and not ada.allows("key", WRITE, "bob/notes")
    assert ada.rule_for("key", "ada/x") == WRITE and ada.rule_for("service", "web") is None


def test_write_covers_list_covers_read_and_deny_covers_nothing():
    table = {granted: [w for w in (READ, LIST, WRITE) if grants(granted, w)] for granted in ACCESS}
    assert table == {DENY: [], READ: [READ], LIST: [READ, LIST], WRITE: [READ, LIST, WRITE]}


def test_the_default_policy_answers_only_what_no_rule_names_and_never_hands_out_acl_management():
    rules = 'service "web" { policy = "deny" }'
    open_registry, closed_registry = authorizer(rules, ALLOW_ALL), authorizer(rules, DENY_ALL)
    assert open_registry.allows("key", WRITE, "anything")
    assert not closed_registry.allows("key", READ, "anything")
    assert not open_registry.allows("service", READ, "web")  # a rule that refuses refuses
    assert not open_registry.allows("acl", READ) and not closed_registry.allows("acl", READ)
    assert Authorizer(management=True).allows("acl", WRITE)


def test_global_words_and_mesh_following_operator():
    ops = authorizer('operator = "read"\nacl = "write"')
    assert ops.allows("operator", READ) and not ops.allows("operator", WRITE)
    assert ops.allows("mesh", READ) and ops.allows("peering", READ) and not ops.allows("mesh", WRITE)
    assert ops.allows("acl", WRITE) and not ops.allows("keyring", READ)
    assert authorizer('operator = "read"\nmesh = "write"').allows("mesh", WRITE)


def test_merged_policies_keep_a_deny_and_otherwise_the_stronger_access():
    merged = merge([parse_rules('key "a" { policy = "write" }\nkey_prefix "p/" { policy = "read" }'),
                    parse_rules('key "a" { policy = "deny" }\nkey_prefix "p/" { policy = "write" }'),
                    parse_rules('key_prefix "p/" { policy = "list" }\noperator = "read"')])
    assert merged.exact["key"]["a"] == DENY
    assert merged.prefix["key"]["p/"] == WRITE
    assert merged.globals["operator"] == READ
    assert merge([]) == Rules() and not merge([])


def test_a_recursive_delete_needs_write_on_the_prefix_and_on_everything_under_it():
    ada = authorizer('''
        key_prefix "ada/" { policy = "write" }
        key "ada/keep" { policy = "read" }
        key_prefix "shared/" { policy = "write" }
        key_prefix "shared/locked/" { policy = "read" }
    ''')
    assert ada.may_write_every_key_under("ada/notes/")
    assert not ada.may_write_every_key_under("ada/")  # ada/keep under it is read-only
    assert not ada.may_write_every_key_under("shared/")
    assert ada.may_write_every_key_under("shared/open/")
    assert not ada.may_write_every_key_under("")  # everything: bob's keys included
    assert not authorizer('key "x" { policy = "write" }\nkey_prefix "x" { policy = "read" }') \
        .may_write_every_key_under("x")  # the exact key is writable, keys under it are not
    assert authorizer("", ALLOW_ALL).may_write_every_key_under("")


def test_json_rules_mean_what_the_same_hcl_means():
    hcl = parse_rules('key_prefix "ada/" { policy = "write" }\n'
                      'service "web" { policy = "read" }\nacl = "read"')
    json_ = parse_rules('{"key_prefix": {"ada/": {"policy": "write"}}, '
                        '"service": {"web": {"policy": "read"}}, "acl": "read"}')
    assert hcl == json_
    assert parse_rules("") == parse_rules("   \n") == Rules()


KNOWN = ("agent, key, node, service, session, event, query, each also as <name>_prefix; acl, operator, "
         "keyring, mesh, peering")
PARSE = "Failed to parse ACL rules: "


@pytest.mark.parametrize(("rules", "said"), [
    ('key "a" { policy = "writ" }', "Invalid key policy: 'a' {policy = 'writ'}"),
    ('service "a" { policy = "list" }', "Invalid service policy: 'a' {policy = 'list'}"),  # keys only
    ('operator = "list"', "Invalid operator policy: 'list'"),
    ('keys "a" { policy = "read" }', f"{PARSE}unknown rule 'keys' (known: {KNOWN})"),
    ('key "a" { policy = "read" }\nkey "a" { policy = "deny" }',
     f'{PARSE}key "a" is given twice; write each once'),
    ('key "a" { policy = "read" }\nkey "b" { policy = "read" }\nkey "b" { policy = "deny" }',
     f'{PARSE}key "b" is given twice; write each once'),
    ('operator = "read"\noperator = "write"', f"{PARSE}operator is given twice; write each once"),
    ('key "a" { policy = "read" }\nkey = "x"', f"{PARSE}key is given twice; write each once"),
    ('key "a" { policy = "read" colour = "blue" }', f"{PARSE}key 'a' has unknown field(s) ['colour']"),
    ('key "a" { }', "Invalid key policy: 'a' has no policy"),
    ('node "n" { policy = "read" intentions = "write" }',
     "Invalid node intentions policy: 'n' {intentions = 'write'}"),
    ("key = 3", f'{PARSE}key needs a label and a block, e.g. key "x" {{ policy = "read" }}'),
    ('{"a": ' * 3000, f"{PARSE}nested too deep"),
    ('key "a" { policy = "read" }' * 6000, f"{PARSE}at most 131072 characters, got 162000"),
])
def test_rules_consul_would_refuse_are_refused_in_its_words(rules, said):
    with pytest.raises(RulesError) as refused:
        parse_rules(rules)
    assert str(refused.value) == said


def test_rules_are_text_and_read_only_once_parsed():
    with pytest.raises(RulesError, match=f"^{PARSE}rules must be a string of HCL or JSON$"):
        parse_rules({"key": {}})
    with pytest.raises(RulesError, match=f"^{PARSE}Unexpected end of file"):
        parse_rules('key "a" { policy = ')
    rules = parse_rules('operator = "read"\nkey "a" { policy = "read" }')
    for table in (rules.globals, rules.exact, rules.exact["key"]):
        with pytest.raises(TypeError):
            table["x"] = "write"  # a token's rules cannot be widened after the fact
    assert Rules(globals={"acl": "read"}) and Rules({"key": {"a": "read"}})
    assert Rules(prefix={"node": {"": "read"}}) and not Rules()
    rule = 'key "a" { policy = "read" }'
    assert parse_rules(rule + " " * (MAX_RULES - len(rule))).exact["key"] == {"a": READ}  # the cap itself
    with pytest.raises(RulesError, match="at most"):
        parse_rules(rule + " " * (MAX_RULES - len(rule) + 1))


def test_an_exact_rule_for_the_empty_name_and_unknown_resources():
    root_key = authorizer('key "" { policy = "write" }')
    assert root_key.allows("key", WRITE) and root_key.rule_for("key") == WRITE  # "" is a name too
    assert not root_key.allows("key", WRITE, "a")  # an exact rule is not a prefix
    with pytest.raises(ValueError, match=r"^unknown ACL resource 'keys'$"):
        root_key.allows("keys", READ, "a")
    assert Authorizer(management=True).may_write_every_key_under("")


def test_a_token_holds_every_policy_role_and_identity_it_links():
    index = iter(range(1, 10_000))
    store = ACLStore(lambda: next(index), ACLConfig(DENY_ALL, "root"))
    keys = store.put_policy({"Name": "ada-keys", "Rules": 'key_prefix "ada/" { policy = "write" }'})
    role = store.put_role({"Name": "readers", "Policies": [{"ID": store.put_policy(
        {"Name": "read-all", "Rules": 'service_prefix "" { policy = "read" }'}).id}]})
    token = store.create_token({"Policies": [{"Name": keys.name}], "Roles": [{"ID": role.id}],
                                "ServiceIdentities": [{"ServiceName": "ada-greeter"}],
                                "TemplatedPolicies": [{"TemplateName": "builtin/node",
                                                       "TemplateVariables": {"Name": "ada-node"}}]})
    ada = store.authorizer(store.resolve(token.secret_id))
    assert ada.allows("key", WRITE, "ada/x") and not ada.allows("key", READ, "bob/x")
    assert ada.allows("service", READ, "bob-greeter") and not ada.allows("service", WRITE, "bob-greeter")
    assert ada.allows("service", WRITE, "ada-greeter")
    assert ada.allows("service", WRITE, "ada-greeter-sidecar-proxy")
    assert ada.allows("node", WRITE, "ada-node") and not ada.allows("node", WRITE, "workbench")
    store.delete_policy(keys.id)  # a link to a deleted policy grants nothing
    assert not store.authorizer(store.resolve(token.secret_id)).allows("key", WRITE, "ada/x")
    assert store.authorizer(store.resolve("root")).allows("acl", WRITE)
    assert not store.authorizer(store.resolve(None)).allows("key", READ, "ada/x")  # anonymous


def test_a_token_expires_on_the_stores_clock_and_reads_as_not_found_after():
    now = [1000.0]
    index = iter(range(1, 10_000))
    store = ACLStore(lambda: next(index), ACLConfig(DENY_ALL, "root"), clock=lambda: now[0],
                     wall_clock=lambda: 0.0)
    token = store.create_token({"ExpirationTTL": 600})  # seconds: the HTTP layer decodes "10m"
    assert store.token_json(token)["ExpirationTime"] == "1970-01-01T00:10:00Z"
    now[0] += 599
    assert store.resolve(token.secret_id) is token
    now[0] += 1
    with pytest.raises(ACLError, match="ACL not found"):
        store.resolve(token.secret_id)
    assert token.accessor_id not in {t.accessor_id for t in store.live_tokens()}
    for ttl, words in ((30, "between 60s and 86400s"), (25 * 3600, "between"), ("soon", "between")):
        with pytest.raises(ACLError, match=words):
            store.create_token({"ExpirationTTL": ttl})


def test_bad_configurations_are_refused_before_the_registry_starts():
    with pytest.raises(ValueError, match="'allow' or 'deny'"):
        ACLConfig("maybe")
    for secret in ("", " root", "anonymous"):
        with pytest.raises(ValueError, match="management token"):
            ACLConfig(DENY_ALL, secret)


# -- properties over random rule sets ----------------------------------------------------------------
NAMES = st.text(alphabet="ab/", max_size=4)
ACCESSES = st.sampled_from(ACCESS)
RULE_SETS = st.builds(
    lambda exact, prefix: Rules({"key": exact}, {"key": prefix}),
    st.dictionaries(NAMES, ACCESSES, max_size=4), st.dictionaries(NAMES, ACCESSES, max_size=4))


def _named(rules: Rules, name: str) -> list[str]:
    """Every access a rule naming ``name`` (exactly, or as a prefix of it) gives."""
    return ([rules.exact["key"][name]] if name in rules.exact["key"] else []) + \
        [access for prefix, access in rules.prefix["key"].items() if name.startswith(prefix)]


@settings(max_examples=300, deadline=None)
@given(RULE_SETS, NAMES, st.sampled_from((READ, LIST, WRITE)))
def test_under_deny_by_default_nothing_is_allowed_that_no_rule_grants(rules, name, wanted):
    if Authorizer(rules, DENY_ALL).allows("key", wanted, name):
        assert any(grants(access, wanted) for access in _named(rules, name))


@settings(max_examples=300, deadline=None)
@given(RULE_SETS, NAMES, NAMES, st.booleans(), st.sampled_from((ALLOW_ALL, DENY_ALL)),
       st.sampled_from((READ, LIST, WRITE)))
def test_adding_a_deny_never_allows_more(rules, asked, denied, as_prefix, default, wanted):
    table = "prefix" if as_prefix else "exact"
    stricter = merge([rules, Rules(**{table: {"key": {denied: DENY}}})])
    if Authorizer(stricter, default).allows("key", wanted, asked):
        assert Authorizer(rules, default).allows("key", wanted, asked)


@settings(max_examples=300, deadline=None)
@given(st.lists(RULE_SETS, min_size=1, max_size=3), NAMES, st.sampled_from((READ, LIST, WRITE)))
def test_a_token_with_several_policies_does_only_what_one_of_them_allows(policies, name, wanted):
    if Authorizer(merge(policies), DENY_ALL).allows("key", wanted, name):
        assert any(Authorizer(p, DENY_ALL).allows("key", wanted, name) for p in policies)


@settings(max_examples=300, deadline=None)
@given(st.lists(RULE_SETS, min_size=1, max_size=3), NAMES, st.sampled_from((ALLOW_ALL, DENY_ALL)))
def test_an_exact_deny_in_any_policy_refuses_that_name_whatever_else_is_granted(policies, name, default):
    policies = [*policies, Rules({"key": {name: DENY}})]
    assert not any(Authorizer(merge(policies), default).allows("key", w, name) for w in (READ, LIST, WRITE))
