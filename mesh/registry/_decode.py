"""Decode request bodies the way Consul does: case-insensitive keys, snake_case aliases, Go durations.

Consul's HTTP API accepts ``"Name"``, ``"name"`` and, for many fields, ``"deregister_critical_service_after"``
for ``DeregisterCriticalServiceAfter`` (py-consul sends lower-case and snake_case keys). Only the keys of
Consul's own structures are normalised; user data such as ``Meta`` and ``Header`` keeps its keys.
"""

from __future__ import annotations

import json
import re
from typing import Any


class DecodeError(ValueError):
    """A request body that Consul would reject, with 400 Bad Request unless ``status`` says else."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


SERVICE_FIELDS = [
    "ID", "Name", "Tags", "Address", "Port", "Meta", "Weights", "EnableTagOverride",
    "TaggedAddresses", "Kind", "Check", "Checks", "Proxy", "Connect", "SocketPath", "Locality",
]
CHECK_FIELDS = [
    "ID", "CheckID", "Name", "Status", "Notes", "ServiceID", "Interval", "Timeout", "TTL",
    "TCP", "HTTP", "GRPC", "GRPCUseTLS", "TLSSkipVerify", "TLSServerName", "Method", "Header",
    "Body", "DeregisterCriticalServiceAfter", "SuccessBeforePassing", "FailuresBeforeWarning",
    "FailuresBeforeCritical", "Args", "ScriptArgs", "DockerContainerID", "Shell", "AliasService",
    "AliasNode", "H2PING", "UDP", "OSService", "OutputMaxSize",
]
WEIGHT_FIELDS = ["Passing", "Warning"]


def _key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _index(fields: list[str]) -> dict[str, str]:
    return {_key(f): f for f in fields}


_SERVICE = _index(SERVICE_FIELDS)
_CHECK = _index(CHECK_FIELDS)
_WEIGHTS = _index(WEIGHT_FIELDS)


def parse_json(body: bytes) -> Any:
    """Return the decoded JSON body, or raise :class:`DecodeError` with Consul's wording."""
    try:
        return json.loads(body.decode("utf-8") or "null")
    except ValueError as exc:  # not UTF-8, not JSON, or a number of over 4,300 digits
        raise DecodeError(f"Request decode failed: {exc}") from None
    except RecursionError:
        raise DecodeError("Request decode failed: nested too deep") from None


def _canonical(obj: Any, names: dict[str, str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"Request decode failed: {what} must be a JSON object")
    return {names.get(_key(k), k): v for k, v in obj.items()}


def _expect(obj: dict, field: str, kinds: type | tuple[type, ...], what: str) -> None:
    value = obj.get(field)
    if value is None:
        return
    # bool is an int in Python; Consul refuses true where a number is expected.
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise DecodeError(f"Request decode failed: {what}.{field}: expected {_kind_name(kinds)}")
    if not isinstance(value, kinds):
        raise DecodeError(f"Request decode failed: {what}.{field}: expected {_kind_name(kinds)}")


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {str: "string", int: "number", float: "number", bool: "bool", list: "array", dict: "object"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _string_map(obj: dict, field: str, what: str) -> None:
    value = obj.get(field)
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise DecodeError(f"Request decode failed: {what}.{field}: expected map of string to string")


def decode_check(raw: Any, what: str = "Check") -> dict[str, Any]:
    """Return a check definition with canonical keys, type-checked."""
    check = _canonical(raw, _CHECK, what)
    for field in ("ID", "CheckID", "Name", "Status", "Notes", "ServiceID", "TCP", "HTTP", "GRPC",
                  "Method", "Body", "TLSServerName", "UDP", "AliasService", "AliasNode"):
        _expect(check, field, str, what)
    for field in ("Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter"):
        _expect(check, field, (str, int), what)
    for field in ("GRPCUseTLS", "TLSSkipVerify"):
        _expect(check, field, bool, what)
    for field in ("SuccessBeforePassing", "FailuresBeforeWarning", "FailuresBeforeCritical"):
        _expect(check, field, int, what)
    _expect(check, "Header", dict, what)
    if "ScriptArgs" not in check and "Args" in check:
        check["ScriptArgs"] = check.pop("Args")
    if check.get("CheckID") is None and check.get("ID") is not None:
        check["CheckID"] = check.pop("ID")
    for field in ("Interval", "Timeout", "TTL", "DeregisterCriticalServiceAfter"):
        if check.get(field) is not None:
            check[field] = parse_duration(check[field], f"{what}.{field}")
    status = check.get("Status")
    if status is not None and status not in ("passing", "warning", "critical"):
        raise DecodeError(f"Status for checks must 'passing', 'warning', 'critical'; got {status!r}")
    return check


def decode_service(raw: Any) -> dict[str, Any]:
    """Return a service definition with canonical keys and decoded checks."""
    service = _canonical(raw, _SERVICE, "Service")
    for field in ("ID", "Name", "Address", "Kind", "SocketPath"):
        _expect(service, field, str, "Service")
    _expect(service, "Port", int, "Service")
    _expect(service, "EnableTagOverride", bool, "Service")
    _expect(service, "Tags", list, "Service")
    if not all(isinstance(t, str) for t in service.get("Tags") or []):
        raise DecodeError("Request decode failed: Service.Tags: expected array of strings")
    _string_map(service, "Meta", "Service")
    if service.get("Weights") is not None:
        weights = _canonical(service["Weights"], _WEIGHTS, "Service.Weights")
        _expect(weights, "Passing", int, "Service.Weights")
        _expect(weights, "Warning", int, "Service.Weights")
        service["Weights"] = weights
    checks = []
    if service.get("Check") is not None:
        checks.append(decode_check(service.pop("Check"), "Check"))
    else:
        service.pop("Check", None)
    raw_checks = service.pop("Checks", None) or []
    if not isinstance(raw_checks, list):
        raise DecodeError("Request decode failed: Service.Checks: expected array")
    checks += [decode_check(c, f"Checks[{i}]") for i, c in enumerate(raw_checks)]
    service["Checks"] = checks
    return service


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float, what: str = "duration") -> float:
    """Return seconds from a Go duration string (``"1m30s"``, ``"250ms"``) or a count of nanoseconds."""
    if isinstance(value, bool):
        raise DecodeError(f"Request decode failed: {what}: invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return value / 1e9
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise DecodeError(f"Request decode failed: {what}: time: invalid duration {value!r}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Return a Go-style duration string: ``10s``, ``1m0s``, ``500ms``, ``0s``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1e3
        return f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{secs:g}s"
    if minutes or hours:
        out = f"{int(minutes)}m{out}"
    if hours:
        out = f"{int(hours)}h{out}"
    return out
