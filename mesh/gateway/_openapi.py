"""API documentation (Swagger, the chapter's framework list): an OpenAPI 3.0 document made from the
gateway's routes and the services' protobuf descriptors, and Swagger UI to read and try it.

:func:`openapi` turns each :class:`Route` into an operation: its path and HTTP method, the
request (a JSON body for POST, query parameters for GET) and the reply as JSON Schemas derived
from the request and reply messages — fields in the JSON mapping the gateway transcodes with
(``json_format``: names as in the ``.proto``, 64-bit integers as strings, enums by name, bytes
as base64) — the bearer-token security a scoped route needs, and the error answers the gateway
can give, with their shared body (``Error``: the public message, gRPC status, the reason a
service gave, and the request id). The gateway serves it at ``/openapi.json`` and Swagger UI at
``/docs`` from the ``swagger-ui-bundle`` package's files: nothing is fetched from the internet.

Written here because no library derives OpenAPI from gRPC descriptors in Python at run time (the
usual tool, ``protoc-gen-openapiv2``, is a Go protoc plugin run at build time, and describes
grpc-gateway's annotations rather than these routes).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ._routes import Route

__all__ = ["DOCS_PATH", "SPEC_PATH", "openapi", "swagger_page"]

SPEC_PATH = "/openapi.json"
DOCS_PATH = "/docs"

_INTEGER = {FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_SINT32: "int32",
            FieldDescriptor.TYPE_SFIXED32: "int32", FieldDescriptor.TYPE_UINT32: "int64",
            FieldDescriptor.TYPE_FIXED32: "int64"}
_STRING_INTEGER = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
                   FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
#: The errors any routed call may answer, besides those its route's settings add.
_ERRORS = {"400": "the request is not what the method takes, or the service refused it (see reason)",
           "500": "the service failed", "503": "the service is unavailable; try again later",
           "504": "the service did not answer within the route's timeout"}

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, in words meant for the caller"},
        "grpc_status": {"type": "string", "description": "the gRPC status of the failed call"},
        "reason": {"type": "string", "description": "why, as a stable code the service chose (ErrorInfo)"},
        "domain": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "request_id": {"type": "string", "description": "quote it to the operator: the log has the details"},
    },
}


def openapi(routes: list[Route], messages: dict[tuple[str, str], tuple[type, type]],
            title: str = "Microservices Workbench gateway", version: str = "1.0.0") -> dict[str, Any]:
    """Return the OpenAPI 3.0.3 document of ``routes``; ``messages`` maps (service, method) to its
    request and reply classes."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        request, reply = messages[(route.service, route.method)]
        operation: dict[str, Any] = {
            "operationId": f"{route.service}.{route.method}",
            "summary": f"{route.service}.{route.method} on the mesh",
            "tags": [route.service],
            "responses": {"200": {"description": f"the {reply.DESCRIPTOR.name}",
                                  "content": {"application/json": {
                                      "schema": _ref(reply.DESCRIPTOR, schemas)}}},
                          **{code: _error(text) for code, text in _ERRORS.items()}},
        }
        if route.http_method == "GET":
            operation["parameters"] = _query_parameters(request.DESCRIPTOR)
        else:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _ref(request.DESCRIPTOR, schemas)}}}
            operation["responses"]["413"] = _error("the body is larger than the gateway accepts")
        if route.scope:
            operation["security"] = [{"bearer": [route.scope]}]
            operation["responses"]["401"] = _error("no token, or one that is malformed, forged or expired")
            operation["responses"]["403"] = _error(f"the token lacks the scope {route.scope!r}")
        if route.rate_limit:
            operation["responses"]["429"] = _error(
                f"more than {route.rate_limit:g} requests/s from this caller")
        if route.fallback is not None:
            operation["description"] = "When the service fails, a fixed answer (degraded, x-degraded header)."
        paths.setdefault(route.path, {})[route.http_method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "REST outside, gRPC inside: each path is a method of a service on the mesh."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ref(message: Descriptor, schemas: dict[str, Any]) -> dict[str, str]:
    """Return a reference to ``message``'s schema, adding it (and the messages it uses) to ``schemas``."""
    name = message.full_name
    if name not in schemas:
        schemas[name] = {}  # placed first, so that a message that contains itself ends
        schemas[name] = {"type": "object", "properties": {f.name: _field(f, schemas) for f in message.fields}}
    return {"$ref": f"#/components/schemas/{name}"}


def _field(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _scalar(value, schemas)}
    one = _scalar(field, schemas)
    repeated = getattr(field, "is_repeated", None)
    if repeated if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED:
        return {"type": "array", "items": one}
    return one


def _scalar(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        return _ref(field.message_type, schemas)
    if kind == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if kind in _INTEGER:
        return {"type": "integer", "format": _INTEGER[kind]}
    if kind in _STRING_INTEGER:
        return {"type": "string", "format": "int64", "description": "a 64-bit integer, as a string"}
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return {"type": "number", "format": "double" if kind == FieldDescriptor.TYPE_DOUBLE else "float"}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


def _query_parameters(message: Descriptor) -> list[dict[str, Any]]:
    """A GET route's request fields as query parameters (the gateway reads the query string as the
    request's JSON object, so only single scalar fields can be given there)."""
    parameters = []
    for field in message.fields:
        schema = _field(field, {})
        if schema.get("type") in ("array", "object") or "$ref" in schema:
            continue
        parameters.append({"name": field.name, "in": "query", "required": False, "schema": schema})
    return parameters


def swagger_page(title: str) -> str:
    """Return Swagger UI's page, its scripts and styles served by the gateway under ``/docs/``."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{SPEC_PATH}", dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body></html>
"""
