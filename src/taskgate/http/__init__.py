"""taskgate's HTTP layer: the native task API v1 as an ASGI application.

    from taskgate.http import create_app
    app = create_app(service, settings)      # uvicorn.run(app, ...)

A small ASGI toolkit of its own, one concept per module, so the hot paths (status
reads, long-poll wake-ups, submits) pay no framework's per-request cost:

- `routing`: path templates compiled to regexes, method dispatch (405 + Allow), and
  the endpoint declarations the OpenAPI document is generated from;
- `request`: headers, query and body read lazily, the body under a size limit;
- `responses`: raw ASGI responses from bytes, JSON by orjson;
- `problems`: the error tree mapped onto RFC 9457 problem+json;
- `auth`: the `Principal` a request acts as, from one `Authenticator`;
- `tasks`, `submit`, `meta`: the endpoints; `openapi`, `schemas`: the document;
- `application`: the ASGI callable, lifespan, and `create_app`.
"""

from __future__ import annotations

from taskgate.http.application import Application, create_app
from taskgate.http.auth import ANONYMOUS, Authenticator, Principal
from taskgate.http.problems import HTTPProblem

__all__ = [
    "ANONYMOUS",
    "Application",
    "Authenticator",
    "HTTPProblem",
    "Principal",
    "create_app",
]
