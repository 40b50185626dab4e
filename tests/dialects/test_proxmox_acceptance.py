"""proxmoxer, the real PVE client, against a real ``taskgate serve --tls-self-signed
--dialect proxmox`` over HTTPS, with API-token and ticket auth.

The server runs the example app with two workers; its CA (printed in the banner) is what
proxmoxer verifies the certificate with.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks

from taskgate.ids import UPID_RE

pytestmark = pytest.mark.acceptance

REPO = Path(__file__).resolve().parents[2]
_API = re.compile(r"API:\s+https://127\.0\.0\.1:(\d+)/v1\b")
_CA = re.compile(r"\(CA: (\S+)\)")
_KEY = re.compile(r"Admin key:\s+(tgk_\S+)")


@dataclass
class Pve:
    port: int
    ca: str
    admin: str
    """The admin key: user ``admin`` → PVE user ``admin@taskgate``, tenant ``default``."""
    database: Path

    def token_api(self, key: str, user: str = "admin@taskgate") -> ProxmoxAPI:
        return ProxmoxAPI(
            f"127.0.0.1:{self.port}",
            user=user,
            token_name="ci",
            token_value=key,
            verify_ssl=self.ca,
            timeout=10,
        )

    def ticket_api(self, key: str, user: str = "admin@taskgate") -> ProxmoxAPI:
        return ProxmoxAPI(
            f"127.0.0.1:{self.port}", user=user, password=key, verify_ssl=self.ca, timeout=10
        )

    def make_key(self, tenant: str, user: str, role: str = "write") -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "taskgate",
                "keys",
                "create",
                "--db",
                f"sqlite:///{self.database}",
                "--tenant",
                tenant,
                "--user",
                user,
                "--role",
                role,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()


@pytest.fixture(scope="module")
def pve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pve]:
    folder = tmp_path_factory.mktemp("pve")
    database = folder / "tasks.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
    env.update({"TASKGATE_CANCEL_GRACE": "1", "TASKGATE_SHUTDOWN_GRACE": "2"})
    log_path = folder / "serve.log"
    argv = [
        *(sys.executable, "-m", "taskgate", "serve", "taskgate.example:app"),
        *("--port", "0", "--db", f"sqlite:///{database}", "--workers", "2"),
        *("--tls-self-signed", "--dialect", "proxmox"),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (m := _API.search(text := log_path.read_text(errors="replace"))):
            assert proc.poll() is None, f"serve exited:\n{text}"
            assert time.monotonic() < deadline, f"serve did not start:\n{text}"
            time.sleep(0.05)
        ca, key = _CA.search(text), _KEY.search(text)
        assert ca is not None and key is not None, text
        assert Path(ca.group(1)).is_file()
        yield Pve(int(m.group(1)), ca.group(1), key.group(1), database)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_upid(upid: Any) -> dict[str, Any]:
    assert isinstance(upid, str) and UPID_RE.match(upid), upid
    decoded: dict[str, Any] = Tasks.decode_upid(upid)
    assert decoded["comment"] == ""
    return decoded


def run_through(api: ProxmoxAPI) -> None:
    """Start tasks by the kickoff routes, follow them, read, list and stop them."""
    node = api.nodes.get()[0]["node"]
    tasks = api.nodes(node).tasks
    backup = api.nodes(node).vzdump.post(vmid=100, storage="local", duration=0.2)
    assert check_upid(backup)["type"] == "vzdump" and Tasks.decode_upid(backup)["id"] == "100"
    apt = api.nodes(node).apt.update.post(notify=0, quiet=1)
    assert check_upid(apt)["type"] == "aptupdate"
    long = api.nodes(node).vzdump.post(vmid=101, duration=60)
    check_upid(long)

    done = Tasks.blocking_status(api, backup, timeout=30, polling_interval=0.05)
    assert done is not None and done["status"] == "stopped"
    assert done["exitstatus"] == "WARNINGS: 1"  # the example backup warns once
    log = api.nodes(node).tasks(backup).log.get(limit=0)
    text = Tasks.decode_log(log)
    assert text.splitlines()[-1] == "TASK WARNINGS: 1"
    assert "WARN: no efidisk configured" in text and "WARN: WARN:" not in text
    first = tasks(backup).log.get(limit=3)
    assert [line["n"] for line in first] == [1, 2, 3]
    done = Tasks.blocking_status(api, apt, timeout=30, polling_interval=0.05)
    assert done is not None and done["exitstatus"] == "OK"
    assert Tasks.decode_log(tasks(apt).log.get(limit=0)).endswith("\nTASK OK")

    deadline = time.monotonic() + 30
    while tasks(long).status.get()["status"] != "running" or not tasks(long).log.get(limit=0):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert tasks(long).delete() is None
    stopped = Tasks.blocking_status(api, long, timeout=30, polling_interval=0.05)
    assert stopped is not None and stopped["status"] == "stopped"
    assert stopped["exitstatus"] not in ("OK",) and not stopped["exitstatus"].startswith("WARN")
    last = Tasks.decode_log(tasks(long).log.get(limit=0)).splitlines()[-1]
    assert last == f"TASK ERROR: {stopped['exitstatus']}"

    mine = {backup, apt, long}
    listed = tasks.get(source="all", limit=500)
    assert mine <= {item["upid"] for item in listed}
    for item in listed:
        check_upid(item["upid"])
    assert backup in {t["upid"] for t in tasks.get(typefilter="vzdump", limit=500)}
    assert apt not in {t["upid"] for t in tasks.get(typefilter="vzdump", limit=500)}
    assert {t["upid"] for t in tasks.get(vmid=101)} >= {long}
    assert all(t["id"] == "101" for t in tasks.get(vmid=101))
    assert apt in {t["upid"] for t in tasks.get(statusfilter="ok", limit=500)}
    assert backup in {t["upid"] for t in tasks.get(errors=1, limit=500)}
    assert apt not in {t["upid"] for t in tasks.get(errors=1, limit=500)}
    assert long in {t["upid"] for t in tasks.get(statusfilter="error", limit=500)}
    assert mine <= {t["upid"] for t in tasks.get(userfilter="admin", limit=500)}
    assert tasks.get(userfilter="nobody-at-all") == []
    started = Tasks.decode_upid(backup)["starttime"]
    assert backup in {t["upid"] for t in tasks.get(since=started, until=started + 1, limit=500)}
    assert tasks.get(until=started - 3600) == []
    assert tasks.get(source="active", typefilter="aptupdate") == []
    assert len(tasks.get(limit=1)) == 1


def test_token_auth(pve: Pve) -> None:
    run_through(pve.token_api(pve.admin))


def test_ticket_auth(pve: Pve) -> None:
    api = pve.ticket_api(pve.admin)
    run_through(api)
    # what proxmoxer does after an hour: the current ticket as the password
    auth = api._store["session"].auth
    old = auth.pve_auth_ticket
    auth._get_new_tokens(password=old)
    assert auth.pve_auth_ticket.startswith("PVE:admin@taskgate:")
    assert api.nodes.get()


def test_bad_input(pve: Pve) -> None:
    api = pve.token_api(pve.admin)
    node = api.nodes.get()[0]["node"]
    with pytest.raises(ResourceException) as info:
        api.nodes(node).tasks("UPID:nope").status.get()
    assert info.value.status_code == 400
    assert info.value.errors == {"upid": "unable to parse worker upid"}
    unknown = f"UPID:{node}:0000ABCD:00001234:6B03911C:vzdump:42:root@pam:"
    with pytest.raises(ResourceException) as info:
        api.nodes(node).tasks(unknown).status.get()
    assert info.value.errors == {"upid": "no such task"}
    with pytest.raises(ResourceException) as info:
        api.nodes("no-such-node").tasks.get()
    assert info.value.status_code == 400
    with pytest.raises(ResourceException) as info:
        api.nodes(node).tasks.get(source="everything")
    assert info.value.status_code == 400 and "source" in info.value.errors
    with pytest.raises(ResourceException) as info:
        api.nodes(node).vzdump.post(vmid=5)
    assert info.value.status_code == 400 and "vmid" in info.value.errors
    with pytest.raises(ResourceException) as info:
        pve.token_api("tgk_000000000000_wrong").nodes.get()
    assert info.value.status_code == 401
    with pytest.raises(ResourceException) as info:
        pve.token_api(pve.admin, user="root@pam").nodes.get()
    assert info.value.status_code == 401
    with pytest.raises(Exception, match="401"):
        pve.ticket_api("tgk_000000000000_wrong")


def test_tenants_are_apart(pve: Pve) -> None:
    alice = pve.token_api(pve.make_key("acme", "alice@pve"), user="alice@pve")
    bob = pve.token_api(pve.make_key("globex", "bob@pve"), user="bob@pve")
    node = alice.nodes.get()[0]["node"]
    upid = alice.nodes(node).apt.update.post()
    assert Tasks.decode_upid(upid)["user"] == "alice@pve"
    with pytest.raises(ResourceException) as info:
        bob.nodes(node).tasks(upid).status.get()
    assert info.value.status_code == 400 and info.value.errors == {"upid": "no such task"}
    with pytest.raises(ResourceException):
        bob.nodes(node).tasks(upid).delete()
    assert upid not in {t["upid"] for t in bob.nodes(node).tasks.get(source="all", limit=500)}
    done = Tasks.blocking_status(alice, upid, timeout=30, polling_interval=0.05)
    assert done is not None and done["exitstatus"] == "OK"
    reader = pve.token_api(pve.make_key("acme", "carol@pve", role="read"), user="carol@pve")
    assert upid in {t["upid"] for t in reader.nodes(node).tasks.get(limit=500)}
    with pytest.raises(ResourceException) as info:
        reader.nodes(node).apt.update.post()
    assert info.value.status_code == 403
