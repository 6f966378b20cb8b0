"""The gateway's routing rules: which HTTP path goes to which service and method, and what the
gateway does on the way (authentication, rate limit, cache, degradation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Route:
    """``http_method path`` → ``service.method`` on the mesh.

    - ``scope``: the JWT scope a caller needs (``""``: public);
    - ``rate_limit`` (requests/s) and ``burst``: a token bucket per caller (its token's subject,
      or its address); over it the gateway answers 429 with ``Retry-After``;
    - ``cache_ttl``: GET only — an answer is reused for this many seconds, per query;
    - ``fallback``: a static JSON answer when the service fails or is unreachable (降级
      degradation at the gateway, as the chapter puts it);
    - ``timeout``: the deadline of the call into the mesh.
    """

    path: str
    service: str
    method: str
    http_method: str = "POST"
    scope: str = ""
    rate_limit: float = 0.0
    burst: float = 1.0
    cache_ttl: float = 0.0
    fallback: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    timeout: float = 2.0

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or (self.path.endswith("/") and self.path != "/"):
            raise ValueError(f"path must start with / and not end with one: {self.path!r}")
        if self.http_method not in ("GET", "POST"):
            raise ValueError("http_method must be GET (request from the query string) or POST (JSON body)")
        if self.cache_ttl and self.http_method != "GET":
            raise ValueError("only GET routes can be cached")
        if min(self.rate_limit, self.cache_ttl) < 0 or self.burst < 1 or self.timeout <= 0:
            raise ValueError("rate_limit and cache_ttl must be >= 0, burst >= 1, timeout > 0")

    def describe(self) -> dict[str, Any]:
        """Return the route as one table row."""
        return {"route": f"{self.http_method} {self.path}", "to": f"{self.service}.{self.method}",
                "scope": self.scope or "public", "rate_limit": self.rate_limit or "-",
                "cache_ttl": self.cache_ttl or "-", "fallback": "yes" if self.fallback is not None else "-"}


class RouteTable:
    """Routes by path; a path may have one route per HTTP method."""

    def __init__(self, routes: list[Route]):
        self._routes: dict[str, dict[str, Route]] = {}
        for route in routes:
            methods = self._routes.setdefault(route.path, {})
            if route.http_method in methods:
                raise ValueError(f"two routes for {route.http_method} {route.path}")
            methods[route.http_method] = route

    def find(self, http_method: str, path: str) -> tuple[Route | None, list[str]]:
        """Return the route for this request (or None) and the methods its path allows."""
        methods = self._routes.get(path.rstrip("/") or "/", {})
        return methods.get(http_method), sorted(methods)

    def __iter__(self):
        return (route for methods in self._routes.values() for route in methods.values())
