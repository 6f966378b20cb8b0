"""REST outside, gRPC inside: JSON to a request message and back (``google.protobuf.json_format``),
and gRPC status codes to HTTP statuses (the mapping Google's API gateways and grpc-gateway use)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


class BadRequest(Exception):
    """The HTTP request cannot become the gRPC request (answered ``status``, 400 unless said;
    nothing is called)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def to_message(data: Any, message_type: type[Message]) -> Message:
    """Return ``data`` (parsed JSON, or a query string's dict) as a ``message_type`` message."""
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object for {message_type.DESCRIPTOR.name}")
    try:
        return json_format.ParseDict(data, message_type())
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BadRequest(f"{message_type.DESCRIPTOR.name}: {exc}") from None
    except RecursionError:
        raise BadRequest(f"{message_type.DESCRIPTOR.name}: nested too deep") from None


def to_json(message: Message) -> dict[str, Any]:
    """Return a reply as a JSON object (field names as in the .proto, defaults included)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def http_status(code: grpc.StatusCode | str) -> int:
    name = code.name if isinstance(code, grpc.StatusCode) else code
    return HTTP_STATUS.get(name, 500)
