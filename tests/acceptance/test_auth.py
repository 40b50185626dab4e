"""API keys as a user meets them: the key serve prints on its first start, keys made and
revoked with ``taskgate keys`` while the server runs, and ``--no-auth``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .server import REPO, Server, submit, wait_ended

pytestmark = pytest.mark.acceptance

MakeServer = Callable[..., Server]


def taskgate(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """``taskgate ARGS --db <the server's database>``, as another process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "taskgate", *args, "--db", server.db_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status and doc["detail"]
    return doc


def test_the_key_in_the_banner_works(make_server: MakeServer) -> None:
    server = make_server(workers=1).start()
    log = server.log_text()
    assert server.key is not None, log
    assert "Admin key:" in log and "shown only this once" in log
    assert f'curl -H "Authorization: Bearer {server.key}" {server.url}/v1/tasks' in log

    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        refused = anonymous.get("/v1/tasks")
        problem(refused, 401)
        assert refused.headers["www-authenticate"] == 'Bearer realm="taskgate"'
        assert anonymous.get("/healthz").status_code == 200  # probes need no key
        assert anonymous.get("/openapi.json").status_code == 200

    with server.client() as client:
        task_id = submit(client, "echo", {"name": "banner", "steps": 1})
        done = wait_ended(client, task_id)
        assert done["state"] == "succeeded"
        assert (done["tenant"], done["user"], done["user_id"]) == ("default", "admin", 1)
        assert [t["id"] for t in client.get("/v1/tasks").json()["items"]] == [task_id]

    if shutil.which("curl"):  # the exact command the banner suggests
        out = subprocess.run(
            ["curl", "-s", "-H", f"Authorization: Bearer {server.key}", f"{server.url}/v1/tasks"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert json.loads(out)["items"][0]["id"] == task_id

    # a restart on the same store makes no second key: it says how to make one
    assert server.stop() == 0
    server.start()
    assert "Admin key:" not in server.log_text()
    assert f"taskgate keys create --db {server.db_url}" in server.log_text()
    listed = taskgate(server, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(k["user"], k["role"]) for k in json.loads(listed.stdout)] == [("admin", "admin")]
    assert server.stop() == 0


def test_keys_made_and_revoked_while_the_server_runs(make_server: MakeServer) -> None:
    server = make_server(workers=1).start()
    with server.client() as admin:
        admins = submit(admin, "echo", {"name": "admin's", "steps": 1})

    made = taskgate(
        server, "keys", "create", "--tenant", "acme", "--user", "alice", "--user-id", "42",
        "--role", "write", "--expires", "30d", "--description", "acceptance",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    alice_key = made.stdout.strip()
    assert alice_key.startswith("tgk_") and "shown" in made.stderr
    reader = taskgate(
        server, "keys", "create", "--tenant", "acme", "--user", "bob", "--role", "read"
    )
    assert reader.returncode == 0, reader.stderr
    bob_key = reader.stdout.strip()

    with server.client(alice_key) as alice, server.client(bob_key) as bob:
        mine = submit(alice, "echo", {"name": "alice's", "steps": 1})
        task = wait_ended(alice, mine)
        assert (task["tenant"], task["user"], task["user_id"]) == ("acme", "alice", 42)
        problem(alice.get(f"/v1/tasks/{admins}"), 404)  # another tenant's: not found
        assert [t["id"] for t in alice.get("/v1/tasks").json()["items"]] == [mine]

        assert bob.get(f"/v1/tasks/{mine}").json()["id"] == mine  # read: yes
        problem(bob.post("/v1/operations/echo", json={"steps": 1}), 403)  # submit: no
        problem(bob.delete(f"/v1/tasks/{mine}"), 403)

        revoked = taskgate(server, "keys", "revoke", alice_key.split("_")[1])
        assert revoked.returncode == 0, revoked.stderr
        assert "Revoked API key" in revoked.stdout
        # the server had alice's key cached; the revocation reached it before this request
        doc = problem(alice.get(f"/v1/tasks/{mine}"), 401)
        assert "revoked" in doc["detail"]
        assert bob.get(f"/v1/tasks/{mine}").status_code == 200  # other keys still work

    with server.client() as admin:  # the admin sees every tenant
        tenants = {t["tenant"] for t in admin.get("/v1/tasks").json()["items"]}
        assert tenants == {"default", "acme"}
        acme = admin.get("/v1/tasks", params={"tenant": "acme"}).json()["items"]
        assert [t["id"] for t in acme] == [mine]

    again = taskgate(server, "keys", "revoke", alice_key.split("_")[1])
    assert again.returncode == 1 and "already revoked" in again.stderr
    listed = taskgate(server, "keys", "list")
    assert listed.returncode == 0
    assert (
        "revoked" in listed.stdout and "alice" in listed.stdout and alice_key not in listed.stdout
    )
    assert server.stop() == 0


def test_no_auth_warns_and_lets_everyone_in(make_server: MakeServer) -> None:
    server = make_server(workers=1, args=("--no-auth",)).start()
    log = server.log_text()
    assert "WARNING: authentication is OFF (--no-auth)" in log
    assert "Auth:      OFF" in log and "Admin key:" not in log
    assert server.key is None
    with server.client() as client:
        task_id = submit(client, "echo", {"steps": 1})
        done = wait_ended(client, task_id)
        assert (done["state"], done["user"]) == ("succeeded", "anonymous")
    assert server.stop() == 0
