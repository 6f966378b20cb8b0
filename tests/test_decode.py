"""Unit tests of Consul-style request decoding (pure functions)."""

from __future__ import annotations

import pytest

from mesh.registry import DecodeError, decode_service, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("1m30s", 90.0), ("250ms", 0.25), ("1.5s", 1.5), ("2h", 7200.0),
    ("0", 0.0), ("100us", 1e-4), (1_000_000_000, 1.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10", "s", "1x", "ten seconds", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(DecodeError):
        parse_duration(bad)


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (90, "1m30s"), (0.5, "500ms"), (0, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_keys_are_case_insensitive_and_snake_case_aliases_resolve():
    service = decode_service({
        "name": "api", "ID": "api-1", "enable_tag_override": True, "meta": {"Owner_Team": "x"},
        "checks": [{"grpc": "127.0.0.1:1", "grpc_use_tls": False, "interval": "1s",
                    "deregister_critical_service_after": "1m"}],
    })
    assert service["Name"] == "api" and service["EnableTagOverride"] is True
    assert service["Meta"] == {"Owner_Team": "x"}  # user data keeps its keys
    check = service["Checks"][0]
    assert check["GRPC"] == "127.0.0.1:1" and check["GRPCUseTLS"] is False
    assert check["Interval"] == 1.0 and check["DeregisterCriticalServiceAfter"] == 60.0


def test_check_and_checks_are_merged_in_order():
    service = decode_service(
        {"Name": "a", "Check": {"TTL": "5s"}, "Checks": [{"TCP": "h:1", "Interval": "1s"}]}
    )
    assert [("TTL" in c, "TCP" in c) for c in service["Checks"]] == [(True, False), (False, True)]


@pytest.mark.parametrize("body", [[], "x", {"Name": "a", "Port": True}, {"Name": "a", "Meta": {"k": 1}},
                                  {"Name": "a", "Check": {"Status": "green", "TTL": "1s"}}])
def test_wrong_types_are_decode_errors(body):
    with pytest.raises(DecodeError):
        decode_service(body)
