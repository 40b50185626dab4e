"""The CloudCoin document's own pollers (JavaScript, cURL + jq, Go), unchanged but for
the host and the task id, against a real ``taskgate serve --dialect cloudcoin``: each
follows a task to ``completed`` and another to ``error``, as the document says they
should.

Node and curl are on the machine; jq and Go come from Debian's packages, installed here
when missing (``apt-get``, as root). Without them the test skips, except under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acceptance.server import Server

pytestmark = pytest.mark.acceptance

POLLERS = Path(__file__).parent / "cloudcoin_pollers"
HOST = "http://localhost:8006"
EXAMPLE_ID = "bdc8e99d-dd8a-40e9-8840-f9f8eef16c71"
NEEDS = {"node": "nodejs", "jq": "jq", "go": "golang-go", "curl": "curl", "bash": "bash"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", NEEDS[name]],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which(name)
    if found is None:
        message = f"{name} is needed (Debian package {NEEDS[name]})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("cloudcoin-serve")
    served = Server(
        folder / "tasks.db",
        folder,
        app="taskgate.example:app",
        args=("--dialect", "cloudcoin"),
        env={"TASKGATE_CLOUDCOIN_TENANT": "default"},
    ).start()
    yield served
    assert served.stop() == 0, served.log_text()


def kickoff(server: Server, path: str, body: dict[str, str]) -> str:
    """Start a task as a CloudCoin client would (no key: the dialect's tenant)."""
    response = httpx.post(server.url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["status"] == "success"
    assert envelope["payload"]["status"] == "running"
    assert envelope["payload"]["message"] == "Command Started"
    task_id: str = envelope["payload"]["id"]
    return task_id


def script(name: str, base: str, task_id: str) -> str:
    """The document's poller with only the host and the task id replaced."""
    text = (POLLERS / name).read_text()
    assert HOST in text and EXAMPLE_ID in text, name
    return text.replace(HOST, base).replace(EXAMPLE_ID, task_id)


def run(argv: list[str], tmp: Path) -> str:
    env = {**os.environ, "GOCACHE": str(tmp / "gocache"), "GOPATH": str(tmp / "gopath")}
    env.pop("GOFLAGS", None)
    done = subprocess.run(
        argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout + done.stderr


def outcomes(server: Server) -> tuple[str, str]:
    """A task that completes (a backup into an existing folder), one that fails."""
    completes = kickoff(server, "/api/v1/backup", {"folder": "/tmp", "name": "Default"})
    fails = kickoff(server, "/create-wallet-backup", {"folder": "/no/such/folder"})
    return completes, fails


def test_the_javascript_poller(server: Server, tmp_path: Path) -> None:
    node = _tool("node")
    completes, fails = outcomes(server)
    for task_id, expected in ((completes, "Task finished successfully!"), (fails, "Task failed:")):
        path = tmp_path / f"poll-{task_id}.js"
        path.write_text(script("poll.js", server.url, task_id))
        out = run([node, str(path)], tmp_path)
        assert expected in out, out
        assert "Error polling task status" not in out, out
    assert "The backup folder /no/such/folder does not exist" in out


def test_the_curl_and_jq_poller(server: Server, tmp_path: Path) -> None:
    _tool("curl")
    _tool("jq")
    bash = _tool("bash")
    completes, fails = outcomes(server)
    for task_id, state in ((completes, "completed"), (fails, "error")):
        path = tmp_path / f"poll-{task_id}.sh"
        path.write_text(script("poll.sh", server.url, task_id))
        out = run([bash, str(path)], tmp_path)
        assert f"Polling... Status: {state}" in out, out
        assert "Final Response:" in out and f'"status": "{state}"' in out, out
    assert '"coins": 25' not in out and '"data": null' in out  # data only when completed


def test_the_go_poller(server: Server, tmp_path: Path) -> None:
    go = _tool("go")
    completes, fails = outcomes(server)
    for task_id, expected in (
        (completes, "Task completed successfully. Result: map[coins:25"),
        (fails, "Task failed: The backup folder /no/such/folder does not exist"),
    ):
        folder = tmp_path / task_id
        folder.mkdir()
        (folder / "main.go").write_text(script("main.go", server.url, task_id))
        out = run([go, "run", str(folder / "main.go")], tmp_path)
        assert expected in out, out
