"""The API gateway: REST/JSON outside, the mesh's gRPC services inside (section 6.6.3).

Routing rules, JWT authentication with scopes, per-caller rate limits, caching and degradation at
the single entry; see :class:`Gateway` and :class:`Route`.
"""

from ._auth import AuthError, Tokens
from ._openapi import DOCS_PATH, SPEC_PATH, openapi
from ._routes import Route, RouteTable
from ._server import (
    BODY_TIMEOUT,
    DEGRADE_ON,
    HEADER_TIMEOUT,
    MAX_BUCKETS,
    PUBLIC_ERRORS,
    Gateway,
    GatewayRecord,
)
from ._transcode import HTTP_STATUS, BadRequest, http_status, to_json, to_message

__all__ = ["BODY_TIMEOUT", "DEGRADE_ON", "DOCS_PATH", "HEADER_TIMEOUT", "HTTP_STATUS", "MAX_BUCKETS",
           "PUBLIC_ERRORS", "SPEC_PATH", "AuthError", "BadRequest", "Gateway", "GatewayRecord", "Route",
           "RouteTable", "Tokens", "http_status", "openapi", "to_json", "to_message"]
