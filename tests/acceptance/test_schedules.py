"""Schedules through a running server, on each store: runs on time, run now, pause."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .server import wait_ended

pytestmark = pytest.mark.acceptance


def runs(client: httpx.Client, schedule_id: str) -> list[dict[str, Any]]:
    response = client.get("/v1/tasks", params={"schedule_id": schedule_id, "limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda t: t["id"])


def test_a_schedule_runs_its_runs_through_a_server(client: httpx.Client) -> None:
    name = f"every-{time.monotonic_ns()}"  # the server is shared by other tests
    start = datetime.now(UTC) + timedelta(seconds=3)
    response = client.post(
        "/v1/schedules",
        json={
            "name": name,
            "type": "noop",
            # a start a little ahead: the server's workers may still be electing the
            # scheduler, and runs it finds already missed would run once, not three times
            "recurrence": f"R3/{start:%Y-%m-%dT%H:%M:%S.%fZ}/PT0.5S",
            "options": {"labels": {"from": "schedule"}},
        },
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    deadline = time.monotonic() + 30
    while len(done := [t for t in runs(client, schedule["id"]) if t["finished_at"]]) < 3:
        assert time.monotonic() < deadline, "the schedule did not run three times"
        time.sleep(0.1)
    assert [t["state"] for t in done] == ["succeeded"] * 3
    assert all(t["labels"] == {"from": "schedule"} for t in done)
    assert [t["scheduled_at"] for t in done] == [
        (start + timedelta(seconds=0.5 * k)).isoformat().replace("+00:00", "Z") for k in range(3)
    ]
    after = client.get(f"/v1/schedules/{name}").json()
    assert after["total_run_count"] == 3 and after["remaining_runs"] == 0
    assert after["next_run"] is None

    paused = client.post(f"/v1/schedules/{name}/pause").json()
    assert paused["enabled"] is False
    manual = client.post(f"/v1/schedules/{name}/run")
    assert manual.status_code == 202, manual.text
    assert wait_ended(client, manual.json()["id"])["state"] == "succeeded"
    assert client.delete(f"/v1/schedules/{name}").status_code == 204
    assert len(runs(client, schedule["id"])) == 4  # its tasks stay
