"""The bundled example app: each handler, run directly with a recording sink."""

from __future__ import annotations

import asyncio
import threading
import traceback
from datetime import UTC, datetime
from typing import Any

import pytest

from taskgate import Context, State, Task
from taskgate.errors import InvalidParameters, TaskCanceled
from taskgate.example import DiskImageError, app
from taskgate.runtime import Worker
from taskgate.service import TaskService
from taskgate.settings import Settings
from taskgate.storage import connect


class Recorder:
    """A `Sink` that keeps everything."""

    def __init__(self) -> None:
        self.reports: list[tuple[float | None, str | None, dict[str, Any] | None]] = []
        self.lines: list[tuple[str, str]] = []
        self.warnings: list[str] = []
        self.states: list[str] = []
        self.resources: list[tuple[str, str]] = []

    def progress(self, percent: float | None, message: str | None, detail: Any) -> None:
        self.reports.append((percent, message, detail))

    def log(self, text: str, level: str) -> None:
        self.lines.append((level, text))

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def detailed_state(self, value: str) -> None:
        self.states.append(value)

    def created_resource(self, kind: str, id: str) -> None:
        self.resources.append((kind, id))


def run(
    name: str,
    params: dict[str, Any],
    sink: Recorder | None = None,
    *,
    attempt: int = 1,
    cancel: bool = False,
) -> Any:
    """Validate ``params`` as a submit would, then run the handler as a worker would."""
    op = app.get(name)
    stored = op.validate(params)
    now = datetime.now(UTC)
    task = Task(
        id="0190f0c0-0000-7000-8000-000000000000",
        upid="UPID:node:00000001:00000001:00000000:x::root@pam:",
        type=name,
        state=State.RUNNING,
        params=stored,
        created_at=now,
        updated_at=now,
        attempt=attempt,
    )
    ctx = Context(task, sink or Recorder())
    if cancel:
        ctx._request_cancel()
    if op.is_async:
        return asyncio.run(op.handler(ctx, **op.arguments(stored)))
    return op.handler(ctx, **op.arguments(stored))


def test_every_operation_is_documented_and_has_a_schema() -> None:
    expected = {
        "vzdump",
        "aptupdate",
        "create_volume",
        "fail_demo",
        "long_running",
        "convert_image",
        "flaky",
        "backup_all",
    }
    assert expected <= set(app.operations)
    for op in app.operations.values():
        assert op.description, op.name
        assert op.json_schema()["type"] == "object"
    assert app.get("convert_image").isolation == "process"
    assert app.get("create_volume").isolation == "async"
    assert app.get("flaky").retry.max_attempts == 3


def test_vzdump_logs_progress_warns_and_names_its_archive() -> None:
    s = Recorder()
    result = run("vzdump", {"vmid": 100, "storage": "local", "duration": 0}, s)
    texts = [t for _, t in s.lines]
    assert texts[0].startswith("INFO: starting new backup job: vzdump 100 --storage local")
    assert "INFO: Backup job finished successfully" in texts
    assert s.warnings == ["no efidisk configured! Using temporary efivars disk."]
    assert [p for p, _, _ in s.reports][-1] == 100
    assert s.reports[0][2] is not None and s.reports[0][2]["unit"] == "bytes"
    assert result["archive"].startswith("vzdump-qemu-100-")
    assert result["archive"].endswith(".vma.zst")
    assert result["volid"] == f"local:backup/{result['archive']}"
    assert s.states == ["BACKUP_RUNNING", "BACKUP_DONE"]
    assert app.get("vzdump").object_id_of({"vmid": 100}) == "100"


def test_vzdump_stops_when_canceled() -> None:
    s = Recorder()
    with pytest.raises(TaskCanceled):
        run("vzdump", {"vmid": 101, "duration": 30}, s, cancel=True)
    assert ("error", "ERROR: interrupted by signal") in s.lines


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"vmid": 99}, "vmid"),
        ({"vmid": "abc"}, "vmid"),
        ({}, "vmid"),
        ({"vmid": 100, "mode": "fast"}, "mode"),
        ({"vmid": 100, "storage": "bad storage"}, "storage"),
        ({"vmid": 100, "extra": 1}, "extra"),
    ],
)
def test_vzdump_refuses_bad_parameters_naming_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameters) as caught:
        app.get("vzdump").validate(params)
    assert field in [e["field"] for e in caught.value.errors]


def test_aptupdate() -> None:
    s = Recorder()
    result = run("aptupdate", {}, s)
    assert s.lines[0] == ("info", "starting apt-get update")
    assert result["count"] == len(result["upgradable"]) > 0


def test_create_volume_records_created_resources() -> None:
    s = Recorder()
    result = run("create_volume", {"name": "data-1", "size": 10, "count": 2}, s)
    assert [kind for kind, _ in s.resources] == ["volumes", "volumes"]
    assert [vid for _, vid in s.resources] == result["volumes"]
    assert s.states == ["ALLOCATING", "FINISHED"]
    with pytest.raises(InvalidParameters):
        app.get("create_volume").validate({"name": "x", "size": 0})


def test_fail_demo_raises_from_a_nested_call() -> None:
    with pytest.raises(DiskImageError) as caught:
        run("fail_demo", {})
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-3:] == ["fail_demo", "_open_image", "_read_header"]


def test_long_running_reports_each_second_and_honours_cancel() -> None:
    s = Recorder()
    result = run("long_running", {"seconds": 0.05}, s)
    assert result["seconds"] == 0.05
    assert s.reports[-1][0] == 100
    with pytest.raises(TaskCanceled):
        run("long_running", {"seconds": 3600}, cancel=True)


def test_long_running_stops_soon_after_a_cancel_arrives() -> None:
    op = app.get("long_running")
    now = datetime.now(UTC)
    task = Task(
        id="0190f0c0-0000-7000-8000-000000000001",
        upid="UPID:node:00000001:00000001:00000000:x::root@pam:",
        type="long_running",
        state=State.RUNNING,
        params={"seconds": 3600},
        created_at=now,
        updated_at=now,
        attempt=1,
    )
    ctx = Context(task, Recorder())
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            op.handler(ctx, seconds=3600)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    ctx._request_cancel()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], TaskCanceled)


def test_convert_image() -> None:
    result = run("convert_image", {"source": "disk.raw", "format": "qcow2", "size_mib": 2})
    assert result["target"] == "disk.qcow2"
    assert len(result["sha256"]) == 64


def test_flaky_fails_then_succeeds() -> None:
    for attempt in (1, 2):
        with pytest.raises(ConnectionError):
            run("flaky", {"failures": 2}, attempt=attempt)
    assert run("flaky", {"failures": 2}, attempt=3) == {"attempts": 3}


def test_vzdump_holds_its_guest_and_a_place_on_its_storage() -> None:
    op = app.get("vzdump")
    assert op.exclusive == ("guest:{vmid}",)
    [limit] = op.limits
    assert (limit.max, limit.per, limit.name) == (2, "{storage}", "backups-per-storage")


async def test_backup_all_spawns_a_backup_per_guest_and_waits() -> None:
    service = TaskService(connect("memory://"), app)
    await service.open()
    settings = Settings(database="memory://", concurrency=8, claim_batch=8, poll_interval=0.2)
    worker = Worker(service, settings)
    job = asyncio.create_task(worker.run())
    try:
        parent = await service.submit("backup_all", {"vmids": [100, 101, 102], "duration": 0})
        done = await service.wait(parent.id, 30, until_ended=True)
        assert done.state is State.SUCCEEDED, done.error
        children = await service.children(parent.id)
        assert [c.object_id for c in children] == ["100", "101", "102"]
        assert done.result == {"archives": [c.result["archive"] for c in children]}
        assert done.progress == 100 and done.message == "3 of 3 done"
    finally:
        worker.request_stop()
        await asyncio.wait_for(job, 30)
        await service.close()
