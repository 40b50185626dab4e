"""Routes: path templates compiled to regexes, dispatch by method, and the declarations
the OpenAPI document is generated from.

An `Endpoint` is one (method, path template) pair with its handler and what it accepts
and answers (parameters, body, responses). Endpoints are declared next to their handlers
with `Endpoints.get` / `.post` / `.delete`; the `Router` groups them by template:

- paths without parameters are found by one dict lookup;
- templated paths (``/v1/tasks/{id}``) are tried in declaration order, each one regex;
- a path that matches with a method it does not serve is a 405 with ``Allow``;
- every GET also answers HEAD (RFC 9110 §9.3.2), with the same endpoint.

Because the document and the dispatcher read the same declarations, the document lists
exactly the routes that are served, and each route's declared query parameters are the
only ones it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from taskgate.errors import ConfigurationError
from taskgate.http.auth import Role
from taskgate.http.problems import HTTPProblem

if TYPE_CHECKING:
    from taskgate.http.request import Request
    from taskgate.http.responses import Response

Handler = Callable[["Request"], Awaitable["Response"]]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Param:
    """A path, query or header parameter, as the document describes it."""

    name: str
    location: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str
    required: bool = False
    repeat: bool = False
    """A query parameter that may be given several times."""


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: JSON described by ``schema``."""

    schema: Mapping[str, Any]
    description: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """One response an endpoint may give."""

    description: str
    schema: str | None = None
    """Name of the body's schema in ``components/schemas``; None: no body."""
    media: str = "application/json"
    headers: tuple[str, ...] = ()
    """Names of headers in ``components/headers`` sent with this response."""
    also: tuple[tuple[str, str], ...] = ()
    """Other (media type, schema name) pairs the same status may answer with, e.g. an
    event stream instead of JSON when the request asks for one."""


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """One method on one path template, with its handler and its declaration."""

    method: Method
    path: str
    handler: Handler
    name: str
    """The OpenAPI ``operationId``."""
    summary: str
    tag: str
    responses: Mapping[int, Reply]
    params: tuple[Param, ...] = ()
    body: Body | None = None
    role: Role = "read"
    public: bool = False
    """Answered without an API key (health, docs); it must not show any tenant's data."""
    query_names: frozenset[str] = field(default=frozenset())

    @property
    def description(self) -> str:
        doc = self.handler.__doc__ or self.summary
        return "\n".join(line.strip() for line in doc.strip().splitlines())

    def check_query(self, query: Mapping[str, list[str]]) -> None:
        """400 for a query parameter this endpoint does not take."""
        for name in query:
            if name not in self.query_names:
                accepted = ", ".join(sorted(self.query_names)) or "none"
                raise HTTPProblem(
                    400,
                    f"unknown query parameter {name!r} (this route accepts: {accepted})",
                )


UNAUTHORIZED = Reply(
    "No valid API key: missing, malformed, unknown, revoked or expired",
    "Problem",
    media="application/problem+json",
    headers=("WWW-Authenticate",),
)
FORBIDDEN = Reply(
    "The API key's role does not allow this (a read key cannot change tasks)",
    "Problem",
    media="application/problem+json",
)
"""Every route that needs a key may answer 401; every route that needs more than
``read``, 403. `Endpoints` adds them to each declaration."""


class Endpoints:
    """Endpoints declared by one module, in order, all under one OpenAPI tag."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.items: list[Endpoint] = []

    def route(
        self,
        method: Method,
        path: str,
        *,
        name: str,
        summary: str,
        responses: Mapping[int, Reply],
        params: Iterable[Param] = (),
        body: Body | None = None,
        role: Role = "read",
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        replies = dict(responses)
        if not public:
            replies.setdefault(401, UNAUTHORIZED)
        if role != "read":
            replies.setdefault(403, FORBIDDEN)

        def register(handler: Handler) -> Handler:
            declared = tuple(params)
            self.items.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    name=name,
                    summary=summary,
                    tag=self.tag,
                    responses=replies,
                    params=declared,
                    body=body,
                    role=role,
                    public=public,
                    query_names=frozenset(p.name for p in declared if p.location == "query"),
                )
            )
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **options)


def path_params(template: str) -> list[str]:
    return _PARAM.findall(template)


def compile_path(template: str) -> re.Pattern[str]:
    """``/v1/tasks/{id}`` -> ``^/v1/tasks/(?P<id>[^/]+)$``."""
    pattern, last = [], 0
    for m in _PARAM.finditer(template):
        pattern.append(re.escape(template[last : m.start()]))
        pattern.append(f"(?P<{m.group(1)}>[^/]+)")
        last = m.end()
    pattern.append(re.escape(template[last:]))
    return re.compile("^" + "".join(pattern) + "$")


class Route:
    """One path template and the endpoints serving it, by method."""

    __slots__ = ("allow", "methods", "path", "regex")

    def __init__(self, path: str) -> None:
        self.path = path
        self.regex = compile_path(path) if _PARAM.search(path) else None
        self.methods: dict[str, Endpoint] = {}
        self.allow = b""

    def add(self, endpoint: Endpoint) -> None:
        if endpoint.method not in METHODS:
            raise ConfigurationError(f"{endpoint.method} {self.path}: not a method to declare")
        if endpoint.method in self.methods:
            raise ConfigurationError(f"{endpoint.method} {self.path} is declared twice")
        declared = {p.name for p in endpoint.params if p.location == "path"}
        if declared != set(path_params(self.path)):
            raise ConfigurationError(
                f"{endpoint.method} {self.path}: path parameters declared {sorted(declared)}"
            )
        self.methods[endpoint.method] = endpoint
        if endpoint.method == "GET":
            self.methods["HEAD"] = endpoint
        self.allow = ", ".join(sorted(self.methods)).encode()


class Router:
    """Finds the endpoint for a method and path."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.routes: dict[str, Route] = {}
        for endpoint in endpoints:
            route = self.routes.get(endpoint.path)
            if route is None:
                route = self.routes[endpoint.path] = Route(endpoint.path)
            route.add(endpoint)
        self._static = {p: r for p, r in self.routes.items() if r.regex is None}
        self._dynamic = [r for r in self.routes.values() if r.regex is not None]

    @property
    def endpoints(self) -> list[Endpoint]:
        """Every declared endpoint once (HEAD is not one: it borrows GET's)."""
        return [e for r in self.routes.values() for m, e in r.methods.items() if m != "HEAD"]

    def resolve(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        """The endpoint and path parameters; `HTTPProblem` 404 or 405 otherwise."""
        route = self._static.get(path)
        params: dict[str, str] = {}
        if route is None:
            for candidate in self._dynamic:
                m = candidate.regex.match(path)  # type: ignore[union-attr]
                if m is not None:
                    route, params = candidate, m.groupdict()
                    break
            else:
                raise HTTPProblem(404, f"no route {path!r}; see /openapi.json for the API")
        endpoint = route.methods.get(method)
        if endpoint is None:
            raise HTTPProblem(
                405,
                f"{method} is not allowed on {route.path}; allowed: {route.allow.decode()}",
                headers=[(b"allow", route.allow)],
            )
        return endpoint, params
