"""What the dashboard tests do besides looking: submit tasks, wait for them, sign in."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from acceptance.server import Server


def submit(server: Server, operation: str, key: str | None = None, **body: Any) -> dict[str, Any]:
    with server.client(key) as client:
        response = client.post("/v1/tasks", json={"type": operation, **body})
    assert response.status_code == 202, response.text
    return dict(response.json())


def wait_ended(server: Server, task_id: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/tasks/{task_id}", params={"wait": 30, "until": "ended"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def sign_in(page: Page, server: Server, token: str | None = None, path: str = "/ui") -> None:
    """Open ``path``, meet the login page, and sign in with ``token`` (the admin key)."""
    page.goto(server.url + path)
    page.get_by_label("API key").fill(token or server.key or "")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who-name").wait_for()
