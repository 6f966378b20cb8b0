"""The API gateway: REST/JSON outside, the mesh's gRPC services inside (section 6.6.3).

Routing rules, JWT authentication with scopes, per-caller rate limits, caching and degradation at
the single entry; see :class:`Gateway` and :class:`Route`.
"""

from ._auth import AuthError, Tokens
from ._routes import Route, RouteTable
from ._server import DEGRADE_ON, Gateway, GatewayRecord
from ._transcode import HTTP_STATUS, BadRequest, http_status, to_json, to_message

__all__ = ["DEGRADE_ON", "HTTP_STATUS", "AuthError", "BadRequest", "Gateway", "GatewayRecord", "Route",
           "RouteTable", "Tokens", "http_status", "to_json", "to_message"]
