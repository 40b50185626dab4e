"""The official ``gcore`` SDK, sync and async with strict response validation, against a
real ``taskgate serve --dialect gcore`` running the example app.

Keys are made with ``taskgate keys create`` on the server's database, as an operator
would; a tenant named by a number is the Gcore client id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gcore
import httpx
import pytest
from gcore import AsyncGcore, Gcore

from acceptance.server import Server

pytestmark = pytest.mark.acceptance

CLIENT_ID = 3621
USER_ID = 4585


def make_key(server: Server, tenant: str, user: str, user_id: int, role: str = "write") -> str:
    return server.make_key(role, tenant=tenant, user=user, user_id=user_id)


@pytest.fixture(scope="module")
def gcore_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("gcore-serve")
    server = Server(
        folder / "tasks.db",
        folder,
        app="taskgate.example:app",
        args=("--dialect", "gcore"),
    ).start()
    yield server
    assert server.stop() == 0, server.log_text()


@pytest.fixture(scope="module")
def key(gcore_server: Server) -> str:
    return make_key(gcore_server, str(CLIENT_ID), "alice", USER_ID)


@pytest.fixture
def sdk(gcore_server: Server, key: str) -> Iterator[Gcore]:
    with Gcore(
        api_key=key,
        base_url=gcore_server.url,
        _strict_response_validation=True,
        cloud_project_id=1,
        cloud_region_id=2,
        max_retries=0,
    ) as client:
        yield client


def native_submit(server: Server, key: str, type: str, project: int, region: int) -> str:
    """A task started through the native API, labelled as Gcore's kickoff labels it."""
    r = httpx.post(
        f"{server.url}/v1/operations/{type}",
        params=[("label", f"gcore.project_id={project}"), ("label", f"gcore.region_id={region}")],
        json={},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    task_id: str = r.json()["id"]
    return task_id


def test_create_and_poll_get_list(sdk: Gcore, gcore_server: Server) -> None:
    volume = sdk.cloud.volumes.create_and_poll(
        name="data-1", size=2, source="new-volume", polling_interval_seconds=1
    )
    assert (volume.name, volume.size, volume.project_id, volume.region_id) == ("data-1", 2, 1, 2)
    assert volume.creator_task_id is not None
    task = sdk.cloud.tasks.get(volume.creator_task_id)
    assert task.state == "FINISHED"
    assert task.task_type == "create_volume"
    assert (task.user_id, task.client_id, task.project_id, task.region_id) == (
        USER_ID,
        CLIENT_ID,
        1,
        2,
    )
    assert task.created_resources is not None
    assert task.created_resources.volumes == [volume.id]
    assert task.detailed_state == "FINISHED"
    again = sdk.cloud.volumes.get(volume.id)
    assert again.id == volume.id


def test_poll_error_raises_task_error(sdk: Gcore, gcore_server: Server, key: str) -> None:
    task_id = native_submit(gcore_server, key, "fail_demo", 1, 2)
    with pytest.raises(ValueError, match="bad magic number"):
        sdk.cloud.tasks.poll(task_id, polling_interval_seconds=1, polling_timeout_seconds=60)
    task = sdk.cloud.tasks.get(task_id)
    assert task.state == "ERROR" and task.error is not None


def test_list_pages_and_filters(sdk: Gcore, gcore_server: Server, key: str) -> None:
    # a project of its own, so other tests' tasks do not count
    project = 77
    ids = []
    for i in range(7):
        r = sdk.cloud.volumes.create(
            project_id=project, region_id=10 + i % 2, name=f"v{i}", size=1, source="new-volume"
        )
        ids.extend(r.tasks)
    for task_id in ids:
        sdk.cloud.tasks.poll(task_id, polling_interval_seconds=1, polling_timeout_seconds=60)
    failed = native_submit(gcore_server, key, "fail_demo", project, 10)
    with pytest.raises(ValueError):
        sdk.cloud.tasks.poll(failed, polling_interval_seconds=1, polling_timeout_seconds=60)

    page = sdk.cloud.tasks.list(project_id=[project], limit=3)
    assert page.count == 8 and len(page.results) == 3  # type: ignore[attr-defined]
    seen = [t.id for t in page]  # auto-paginates: offset 0, 3, 6
    assert seen == [failed, *reversed(ids)]
    oldest = [t.id for t in sdk.cloud.tasks.list(project_id=[project], limit=5, order_by="asc")]
    assert oldest == [*ids, failed]
    assert [t.id for t in sdk.cloud.tasks.list(project_id=[project], limit=2, offset=6)] == [
        ids[1],
        ids[0],
    ]

    def listed(**params: Any) -> set[str]:
        return {t.id for t in sdk.cloud.tasks.list(project_id=[project], limit=1000, **params)}

    assert listed(state=["ERROR"]) == {failed}
    assert listed(state=["FINISHED"]) == set(ids)
    assert listed(state=["NEW", "RUNNING"]) == set()
    assert listed(task_type="fail_demo") == {failed}
    assert listed(region_id=[11]) == set(ids[1::2])
    assert listed(region_id=[10, 11]) == {*ids, failed}
    first = sdk.cloud.tasks.get(ids[0])
    last = sdk.cloud.tasks.get(failed)
    assert first.created_on is not None and last.created_on is not None
    assert listed(from_timestamp=last.created_on) >= {failed}
    assert listed(to_timestamp=first.created_on) >= {ids[0]}
    assert failed not in listed(to_timestamp=first.created_on)
    assert listed(is_acknowledged=True) == set()
    assert listed(is_acknowledged=False) == {*ids, failed}

    # acknowledge one, then all of a project and region
    acked = sdk.cloud.tasks.acknowledge_one(ids[0])
    assert acked.acknowledged_by == USER_ID and acked.acknowledged_at is not None
    assert acked.state == "FINISHED"
    assert listed(is_acknowledged=True) == {ids[0]}
    sdk.cloud.tasks.acknowledge_all(project_id=project, region_id=11)
    assert listed(is_acknowledged=True) == {ids[0], *ids[1::2]}
    assert sdk.cloud.tasks.acknowledge_all(project_id=project) is None
    assert listed(is_acknowledged=False) == set()


def test_bad_input_and_tenants(sdk: Gcore, gcore_server: Server) -> None:
    with pytest.raises(gcore.NotFoundError) as caught:
        sdk.cloud.tasks.get("not-a-task")
    body = caught.value.body
    assert isinstance(body, dict) and body["exception_class"] == "NotFoundError"
    with pytest.raises(gcore.NotFoundError):
        sdk.cloud.tasks.acknowledge_one("01a20678-6111-70a8-8273-f96d8e24c12d")
    with pytest.raises(gcore.BadRequestError):
        sdk.cloud.tasks.list(limit=5000)
    with pytest.raises(gcore.BadRequestError):
        sdk.cloud.tasks.list(state=["CANCELLED"])  # type: ignore[list-item]
    with (
        Gcore(api_key="tgk_nope_nope", base_url=gcore_server.url, max_retries=0) as bad,
        pytest.raises(gcore.AuthenticationError),
    ):
        bad.cloud.tasks.list()
    # another tenant sees none of this tenant's tasks
    mine = sdk.cloud.volumes.create(name="mine", size=1, source="new-volume").tasks[0]
    other_key = make_key(gcore_server, "9999", "mallory", 1)
    with Gcore(
        api_key=other_key, base_url=gcore_server.url, _strict_response_validation=True
    ) as other:
        with pytest.raises(gcore.NotFoundError):
            other.cloud.tasks.get(mine)
        assert other.cloud.tasks.list().count == 0  # type: ignore[attr-defined]
        with pytest.raises(gcore.NotFoundError):
            other.cloud.tasks.acknowledge_one(mine)


async def test_async_sdk(gcore_server: Server, key: str) -> None:
    async with AsyncGcore(
        api_key=key,
        base_url=gcore_server.url,
        _strict_response_validation=True,
        cloud_project_id=5,
        cloud_region_id=6,
        max_retries=0,
    ) as client:
        volume = await client.cloud.volumes.create_and_poll(
            name="async-1", size=4, source="new-volume", polling_interval_seconds=1
        )
        assert volume.size == 4
        assert volume.creator_task_id is not None
        task = await client.cloud.tasks.get(volume.creator_task_id)
        assert task.state == "FINISHED"
        listed = [t.id async for t in client.cloud.tasks.list(project_id=[5], limit=1)]
        assert volume.creator_task_id in listed
        acked = await client.cloud.tasks.acknowledge_one(task.id)
        assert acked.acknowledged_at is not None
        await client.cloud.tasks.acknowledge_all(project_id=5)
        failed = native_submit(gcore_server, key, "fail_demo", 5, 6)
        with pytest.raises(ValueError, match="bad magic number"):
            await client.cloud.tasks.poll(
                failed, polling_interval_seconds=1, polling_timeout_seconds=60
            )
