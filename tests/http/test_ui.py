"""The dashboard's routes: the same shell on every page, its files, and the headers that
keep task text from ever running in it. (The pages at work: tests/ui, in a browser.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from api_helpers import BASE, problem

from taskgate.http import Application, ui


@pytest.fixture
async def anonymous(api: Application) -> AsyncIterator[httpx.AsyncClient]:
    """A browser asking for a page: no key (the page itself holds none)."""
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def test_every_page_is_the_same_shell_without_a_key(anonymous: httpx.AsyncClient) -> None:
    bodies = set()
    for path in (*ui.PAGES, "/ui/tasks", "/ui/tasks/anything", "/ui/tasks?state=failed&q=x"):
        response = await anonymous.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        bodies.add(response.content)
    assert len(bodies) == 1


async def test_the_list_page_refuses_what_the_list_does_not_take(
    anonymous: httpx.AsyncClient,
) -> None:
    problem(await anonymous.get("/ui/tasks?key=tgk_x"), 400)


async def test_the_shell_names_its_files_by_content_and_they_are_cached_for_good(
    anonymous: httpx.AsyncClient,
) -> None:
    page = (await anonymous.get("/ui")).text
    names = re.findall(r'/ui/assets/([\w.]+)\?v=(\w+)"', page)
    scripts = ["base.js", "overview.js", "tasks.js", "fleet.js", "app.js"]
    assert [name for name, _ in names if name.endswith(".js")] == scripts  # in this order
    assert {name for name, _ in names} == {*scripts, "app.css", "icon.svg"}
    for name, version in names:
        response = await anonymous.get(f"/ui/assets/{name}?v={version}")
        assert response.status_code == 200
        assert response.headers["etag"] == f'"{version}"'
        assert "immutable" in response.headers["cache-control"]
        again = await anonymous.get(f"/ui/assets/{name}", headers={"If-None-Match": f'"{version}"'})
        assert again.status_code == 304 and again.content == b""
    for name in scripts:
        script = await anonymous.get(f"/ui/assets/{name}")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script.text, name  # task text goes in as text nodes only


async def test_a_file_that_is_not_there(anonymous: httpx.AsyncClient) -> None:
    problem(await anonymous.get("/ui/assets/index.html"), 404)
    problem(await anonymous.get("/ui/assets/..%2Fapp.py"), 404)
    problem(await anonymous.get("/ui/nowhere"), 404)


async def test_the_shell_knows_the_root_path_escaped(api: Application) -> None:
    transport = httpx.ASGITransport(app=api, root_path="/x&y")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.get("/x&y/ui")
    assert response.status_code == 200
    assert 'content="/x&amp;y"' in response.text
    assert 'href="/x&amp;y/ui/assets/app.css?v=' in response.text
