"""The router: templates compiled to regexes, static and templated paths, 404, 405."""

from __future__ import annotations

import pytest

from taskgate.errors import ConfigurationError
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import Request
from taskgate.http.responses import Response, empty_response
from taskgate.http.routing import Endpoint, Endpoints, Param, Router, compile_path, path_params

ID = Param("id", "path", {"type": "string"}, "an id", required=True)


async def handler(request: Request) -> Response:
    return empty_response()


def endpoints(*specs: tuple[str, str, tuple[Param, ...]]) -> list[Endpoint]:
    api = Endpoints("test")
    for method, path, params in specs:
        api.route(method, path, name=f"{method}{path}", summary="", responses={},  # type: ignore[arg-type]
                  params=params)(handler)  # fmt: skip
    return api.items


def test_compile_path() -> None:
    regex = compile_path("/v1/tasks/{id}/log")
    m = regex.match("/v1/tasks/abc-1/log")
    assert m is not None and m.groupdict() == {"id": "abc-1"}
    assert regex.match("/v1/tasks/a/b/log") is None
    assert regex.match("/v1/tasks//log") is None
    assert regex.match("/v1/tasks/a/log/") is None
    assert compile_path("/a.b/{x}").match("/aXb/1") is None  # literal parts are escaped
    assert path_params("/a/{x}/b/{y}") == ["x", "y"]


def test_resolve() -> None:
    router = Router(
        endpoints(
            ("GET", "/v1/tasks", ()),
            ("POST", "/v1/tasks", ()),
            ("GET", "/v1/tasks/{id}", (ID,)),
            ("DELETE", "/v1/tasks/{id}", (ID,)),
        )
    )
    endpoint, params = router.resolve("GET", "/v1/tasks")
    assert (endpoint.method, endpoint.path, params) == ("GET", "/v1/tasks", {})
    endpoint, params = router.resolve("DELETE", "/v1/tasks/42")
    assert (endpoint.method, endpoint.path, params) == ("DELETE", "/v1/tasks/{id}", {"id": "42"})
    with pytest.raises(HTTPProblem) as caught:
        router.resolve("GET", "/v1/nothing")
    assert caught.value.status == 404
    with pytest.raises(HTTPProblem) as caught:
        router.resolve("PUT", "/v1/tasks/42")
    assert caught.value.status == 405
    assert caught.value.headers == [(b"allow", b"DELETE, GET, HEAD")]
    endpoint, _ = router.resolve("HEAD", "/v1/tasks/42")  # every GET answers HEAD
    assert endpoint.method == "GET" and endpoint.path == "/v1/tasks/{id}"
    assert len(router.endpoints) == 4


def test_declarations_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        Router(endpoints(("GET", "/a", ()), ("GET", "/a", ())))
    with pytest.raises(ConfigurationError, match="path parameters"):
        Router(endpoints(("GET", "/a/{id}", ())))
    with pytest.raises(ConfigurationError, match="path parameters"):
        Router(endpoints(("GET", "/a", (ID,))))
    with pytest.raises(ConfigurationError, match="not a method"):
        Router(endpoints(("HEAD", "/a", ())))


def test_unknown_query_parameters() -> None:
    api = Endpoints("test")
    api.get(
        "/a",
        name="a",
        summary="",
        responses={},
        params=(Param("limit", "query", {"type": "integer"}, ""),),
    )(handler)
    endpoint = api.items[0]
    endpoint.check_query({"limit": ["1"]})
    with pytest.raises(HTTPProblem) as caught:
        endpoint.check_query({"limit": ["1"], "limt": ["2"]})
    assert caught.value.status == 400
    assert "limt" in caught.value.detail and "limit" in caught.value.detail
