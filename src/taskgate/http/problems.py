"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

Two sources of errors meet here:

- `HTTPProblem`, raised by the HTTP layer itself for what only HTTP knows about (no such
  route, wrong method, a body too large or of the wrong type, malformed JSON);
- the `taskgate.errors` tree, raised by the service: each class carries its ``status``
  and ``title``; its problem ``type`` is derived from the class name
  (``TaskNotFound`` -> ``tag:taskgate.dev,2025:problems/task-not-found``).

Problem type URIs are tag URIs (RFC 4151), which RFC 9457 §3.1.1 suggests for types
that are identifiers rather than pages; ``/docs`` lists them. A server error (5xx other
than 503) never carries the exception's text: the class's default message goes out, and
the exception is logged by the application. A 503 (the store is unavailable: down,
restarting, or busy for too long) is not logged per request: an outage would flood the
log with a traceback per request; the PostgreSQL connector logs an outage once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from taskgate.errors import StorageUnavailable, TaskgateError
from taskgate.http.asgi import Headers
from taskgate.http.responses import CT_PROBLEM, NO_STORE, Response, dumps, header

PROBLEM_BASE = "tag:taskgate.dev,2025:problems/"
ABOUT_BLANK = "about:blank"


class HTTPProblem(Exception):
    """An error answered as a problem document; ``slug`` names its problem type.

    Without a slug the type is ``about:blank`` and the title is the status phrase, as
    RFC 9457 §4.2.1 asks.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Headers | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = ABOUT_BLANK if slug is None else PROBLEM_BASE + slug
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or []
        self.extensions = extensions


def slug_of(cls: type[BaseException]) -> str:
    """``TaskNotFound`` -> ``task-not-found``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()


def type_of(cls: type[TaskgateError]) -> str:
    return PROBLEM_BASE + slug_of(cls)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type: str = ABOUT_BLANK,
    instance: str,
    request_id: str,
    extensions: Mapping[str, Any] | None = None,
    headers: Headers | None = None,
) -> Response:
    """A problem+json response."""
    doc: dict[str, Any] = {
        "type": type,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if extensions:
        for key, value in extensions.items():
            doc.setdefault(key, value)
    pairs: Headers = [CT_PROBLEM, NO_STORE]
    if headers:
        pairs.extend(headers)
    return Response(status, dumps(doc), pairs)


INTERNAL_DETAIL = "The server failed to handle this request; the failure has been logged."


def from_exception(
    exc: BaseException, *, instance: str, request_id: str, retry_after: int
) -> tuple[Response, bool]:
    """The problem response for ``exc``, and whether it is a server fault to log."""
    if isinstance(exc, HTTPProblem):
        response = problem(
            exc.status,
            exc.title,
            exc.detail,
            type=exc.type,
            instance=instance,
            request_id=request_id,
            extensions=exc.extensions,
            headers=exc.headers,
        )
        return response, False  # raised on purpose, with its own detail
    if isinstance(exc, TaskgateError):
        cls = type(exc)
        if exc.status < 500:
            return (
                problem(
                    exc.status,
                    exc.title,
                    exc.message,
                    type=type_of(cls),
                    instance=instance,
                    request_id=request_id,
                    extensions=_jsonable(exc.extra),
                ),
                False,
            )
        if isinstance(exc, StorageUnavailable):
            return (
                problem(
                    503,
                    exc.title,
                    _default_message(cls),
                    type=type_of(cls),
                    instance=instance,
                    request_id=request_id,
                    headers=[header(b"retry-after", max(retry_after, 1))],
                ),
                False,  # not a traceback per request of an outage (see above)
            )
    return (
        problem(
            500,
            "Internal error",
            f"{INTERNAL_DETAIL} Request id: {request_id}.",
            type=PROBLEM_BASE + "internal-error",
            instance=instance,
            request_id=request_id,
        ),
        True,
    )


def _default_message(cls: type[BaseException]) -> str:
    return (cls.__doc__ or "").strip()


def _jsonable(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The extension members of an error that JSON can carry."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        try:
            dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out
