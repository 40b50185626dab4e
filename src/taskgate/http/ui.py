"""The web dashboard at ``/ui``: one HTML shell and its script and style, no build step.

The dashboard is a page of the browser's own: every page of it (overview, tasks, a
task, schedules, workers, login) is the same shell, which reads the path and asks the
JSON API for what to show, with the API key the user typed at login. The key lives in
the tab's ``sessionStorage`` and travels only in ``Authorization`` headers, never in a
URL; live parts read ``/v1/events`` and ``/v1/tasks/{id}/log?follow=true`` through
``fetch``, because an ``EventSource`` cannot send that header. So the dashboard sees
exactly what its key may see through the API, and its buttons do what the key's role
allows, no more: the server holds no session and no second way in.

These routes are public (the shell holds no data). They answer with a Content Security
Policy that lets the page run only its own script and reach only this server: text from
tasks (messages, logs, labels, results) is put in the page as text, and even a mistake
there could not load or run anything else.

The assets are read from the package once, and served with a strong ETag derived from
their content; the shell names them with that tag, so they can be cached for good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape
from importlib import resources

from taskgate.http.asgi import Headers
from taskgate.http.problems import HTTPProblem
from taskgate.http.request import Request
from taskgate.http.responses import CONTENT_TYPE, CT_HTML, NO_CACHE, Response
from taskgate.http.routing import Endpoints, Param, Reply
from taskgate.http.schemas import STRING, TIME, problem_reply

api = Endpoints("dashboard")

PAGES = ("/ui", "/ui/login", "/ui/schedules", "/ui/workers")
"""The dashboard's pages that take no parameters."""
LIST_FILTERS = (
    Param("state", "query", STRING, "Only tasks in this state"),
    Param("type", "query", STRING, "Only tasks of this operation"),
    Param("tenant", "query", STRING, "Only this tenant's tasks (admin keys)"),
    Param("since", "query", TIME, "Created at or after this time"),
    Param("until", "query", TIME, "Created before this time"),
    Param("q", "query", STRING, "A task id, an object id, or a label value or key=value"),
    Param("object_id", "query", STRING, "Only tasks acting on this object"),
    Param("group_id", "query", STRING, "Only the tasks of this group"),
    Param("parent_id", "query", STRING, "Only the children of this task"),
    Param("schedule_id", "query", STRING, "Only the runs of this schedule"),
    Param("cursor", "query", STRING, "Where the page starts"),
)
"""What the task list page takes in its own URL (it passes them on to ``/v1/tasks``)."""

CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    b" img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Headers = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")

_TYPES = {
    "js": b"text/javascript; charset=utf-8",
    "css": b"text/css; charset=utf-8",
    "svg": b"image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file the shell loads: its bytes, media type and entity tag."""

    body: bytes
    media: bytes
    etag: bytes

    @property
    def version(self) -> str:
        return self.etag.decode()[1:-1]


class Assets:
    """The dashboard's files, read from the package the first time they are asked for."""

    def __init__(self) -> None:
        self._files: dict[str, Asset] | None = None
        self._shells: dict[str, bytes] = {}

    @property
    def files(self) -> dict[str, Asset]:
        if self._files is None:
            folder = resources.files("taskgate.http").joinpath("static", "ui")
            files = {}
            for entry in folder.iterdir():
                extension = entry.name.rpartition(".")[2]
                if entry.name == "index.html" or extension not in _TYPES:
                    continue
                body = entry.read_bytes()
                tag = hashlib.sha256(body).hexdigest()[:16]
                files[entry.name] = Asset(body, _TYPES[extension], f'"{tag}"'.encode())
            self._files = files
        return self._files

    def shell(self, root_path: str) -> bytes:
        """The HTML every page starts from, for an API mounted at ``root_path``."""
        page = self._shells.get(root_path)
        if page is None:
            folder = resources.files("taskgate.http").joinpath("static", "ui")
            text = folder.joinpath("index.html").read_text("utf-8")
            text = text.replace("{{root}}", escape(root_path, quote=True))
            for name, asset in self.files.items():
                text = text.replace("{{" + name + "}}", f"{name}?v={asset.version}")
            page = self._shells[root_path] = text.encode()
        return page


ASSETS = Assets()


async def shell(request: Request) -> Response:
    """The dashboard's page: the script reads the path and draws the rest."""
    return Response(200, ASSETS.shell(request.root_path), [CT_HTML, NO_CACHE, *SECURITY_HEADERS])


PAGE_ROUTES: tuple[tuple[str, str, str, tuple[Param, ...]], ...] = (
    *((path, "dashboard" + (path[4:].title() or "Overview"), f"page {path}", ()) for path in PAGES),
    ("/ui/tasks", "dashboardTasks", "the task list", LIST_FILTERS),
    ("/ui/tasks/{id}", "dashboardTask", "one task", (Param("id", "path", STRING, "A task id"),)),
)
"""Every page: (path, operationId, what it shows, parameters)."""

for _path, _name, _what, _params in PAGE_ROUTES:
    api.get(
        _path,
        name=_name,
        summary=f"Dashboard: {_what}",
        params=_params,
        public=True,
        responses={200: Reply("The dashboard (HTML; it reads the API)", "HtmlPage", "text/html")},
    )(shell)


@api.get(
    "/ui/assets/{name}",
    name="dashboardAsset",
    summary="A file of the dashboard (script, style)",
    params=(
        Param("name", "path", STRING, "The file's name"),
        Param("v", "query", STRING, "Its version, as the shell names it (a new one per release)"),
    ),
    public=True,
    responses={
        200: Reply("The file", None, "text/javascript"),
        304: Reply("Not modified (If-None-Match matched)"),
        404: problem_reply("No such file"),
    },
)
async def asset(request: Request) -> Response:
    """The dashboard's script and style, cached for good: the shell names them by
    content, so a new release names new ones."""
    found = ASSETS.files.get(request.path_params["name"])
    if found is None:
        raise HTTPProblem(404, f"the dashboard has no file {request.path_params['name']!r}")
    headers: Headers = [(CONTENT_TYPE, found.media), IMMUTABLE, (b"etag", found.etag)]
    headers.extend(SECURITY_HEADERS)
    if request.headers.get(b"if-none-match") == found.etag:
        return Response(304, b"", headers)
    return Response(200, found.body, headers)
