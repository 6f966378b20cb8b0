"""Access rules and fallbacks carried to processes through the KV store: the encoding of a
fallback, what a bad value does, and a watch that follows a prefix."""

from __future__ import annotations

import json
import threading

import pytest

from mesh.control.shared_state import (
    PrefixWatch,
    decode_access_rules,
    decode_fallback,
    decode_fallbacks,
    encode_fallback,
)
from mesh.pb.shop_pb2 import ScoreReply
from mesh.policies import Fallback
from mesh.registry import Registry


def test_a_fallback_survives_the_round_trip_through_json():
    decoded = decode_fallback(encode_fallback(Fallback(static=ScoreReply(risk=0.5), cache=True)))
    assert decoded.static == ScoreReply(risk=0.5) and type(decoded.static) is ScoreReply and decoded.cache
    cache_only = decode_fallback(encode_fallback(Fallback(cache=True)))
    assert cache_only.static is None and cache_only.cache


@pytest.mark.parametrize("text, message", [
    ("nope", "not a fallback"),
    ('{"type": null, "static": null}', "not a fallback"),
    ('{"type": "shop.NoSuchReply", "static": "", "cache": false}', "unknown message type 'shop.NoSuchReply'"),
])
def test_a_value_that_is_not_a_fallback_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        decode_fallback(text)


def test_access_rules_that_cannot_be_read_let_nobody_in_and_say_why():
    rules, problems = decode_access_rules({"fraud": '["payments"]', "orders": "{oops", "payments": '[1, "x"]',
                                           "inventory": "[]"})
    assert rules == {"fraud": ["payments"], "orders": [], "payments": [], "inventory": []}
    assert sorted(problems) == ["orders", "payments"]
    assert problems["orders"] == "the access rule of orders is not a list of names: '{oops'"


def test_fallbacks_are_grouped_by_service_and_a_bad_one_spoils_only_itself():
    good = encode_fallback(Fallback(static=ScoreReply(risk=0.5)))
    fallbacks, problems = decode_fallbacks({"fraud/Score": good, "fraud/Other": "nope",
                                            "orders/CreateOrder": encode_fallback(Fallback(cache=True))})
    assert set(fallbacks) == {"fraud", "orders"} and set(fallbacks["fraud"]) == {"Score"}
    assert fallbacks["fraud"]["Score"].static == ScoreReply(risk=0.5)
    assert fallbacks["orders"]["CreateOrder"].cache
    assert list(problems) == ["fraud/Other"] and problems["fraud/Other"].startswith("ignored the fallback")


def test_a_prefix_watch_follows_every_change_and_outlives_a_value_it_cannot_apply():
    with Registry(dns_port=None) as registry:
        client = registry.client()
        seen: list[dict] = []
        changed = threading.Event()

        def apply(values):
            seen.append(values)
            changed.set()
            if "bad" in values:
                raise ValueError("cannot apply")

        client.kv.put("ada/access/fraud", json.dumps(["payments"]))
        watch = PrefixWatch(client, "ada/access", apply)
        try:
            assert watch.wait_first() and seen[-1] == {"fraud": '["payments"]'}
            for key, value in (("bad", "x"), ("orders", '["frontend"]')):
                changed.clear()
                client.kv.put(f"ada/access/{key}", value)
                assert changed.wait(5)
            assert seen[-1] == {"fraud": '["payments"]', "bad": "x", "orders": '["frontend"]'}
            changed.clear()
            client.kv.delete("ada/access/", recurse=True)
            assert changed.wait(5) and seen[-1] == {}
        finally:
            watch.stop()
