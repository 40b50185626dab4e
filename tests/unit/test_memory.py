"""The memory backend imitates SQLite: the same statements, run side by side on both,
give the same rows (value types included), the same errors, and the same tables."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from taskgate.errors import StorageError, StorageUnavailable, TaskgateError
from taskgate.storage.connector import Connector, Row, Step
from taskgate.storage.memory import TABLES, MemoryConnector
from taskgate.storage.rows import dumps
from taskgate.storage.sqlite import SQLiteConnector

T = 1000  # an int on purpose: REAL columns must store 1000.0 on both


def tid(n: int) -> str:
    """Task ids that sort by ``n``, like UUIDv7s made one after another."""
    return f"0190f2a4-0000-7000-8000-{n:012d}"


def task(n: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": tid(n),
        "upid": f"UPID:n:00000001:{n:08X}:00000001:noop::u@r:",
        "type": "noop",
        "object_id": None,
        "tenant": "default",
        "user_name": "u",
        "user_id": None,
        "node": "n",
        "state": "queued",
        "params": "{}",
        "max_attempts": 1,
        "timeout": None,
        "retry_on_worker_loss": False,
        "priority": 0,
        "idempotency_key": None,
        "request_fingerprint": None,
        "request_id": None,
        "group_id": None,
        "parent_id": None,
        "schedule_id": None,
        "labels": None,
        "resources": None,
        "created_at": T,
        "scheduled_at": None,
        "due_at": T,
        "traceparent": None,
    }
    row.update(values)
    return row


def typed(value: Any) -> Any:
    """A value with its type, so that 1 and 1.0 (or True and 1) differ."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


class Pair:
    """Runs each call on both backends and insists they answer alike."""

    def __init__(self, memory: MemoryConnector, sqlite: SQLiteConnector) -> None:
        self.memory = memory
        self.sqlite = sqlite

    async def _both(self, call: str, *args: Any) -> Any:
        outcomes = []
        for connector in (self.memory, self.sqlite):
            try:
                outcomes.append(("ok", await getattr(connector, call)(*args)))
            except TaskgateError as exc:
                outcomes.append((type(exc).__name__, str(exc)))
        (mem_kind, mem), (sql_kind, sql) = outcomes
        assert mem_kind == sql_kind, (call, args, outcomes)
        if mem_kind != "ok":
            return mem_kind
        if isinstance(mem, list) and mem and isinstance(mem[0], dict) and "id" in mem[0]:
            mem, sql = sorted(mem, key=_key), sorted(sql, key=_key)  # RETURNING's order is free
        if call.startswith("fetch"):
            assert typed(mem) == typed(sql), (call, args)
        else:
            # SQLite's RETURNING may hand back a value before the column's affinity
            # converted it (1000 for a REAL column); what it stores, and what a read then
            # gives, is compared type and all by the reads and by `same_tables`
            assert mem == sql, (call, args)
        return mem

    async def execute(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._both("execute", query, params)

    async def batch(self, steps: Sequence[Step]) -> Any:
        return await self._both("execute_batch", steps)

    async def fetch_all(
        self, query: str, params: Mapping[str, Any], fragments: tuple[str, ...] = ()
    ) -> Any:
        return await self._both("fetch_all", query, params, fragments)

    async def fetch_one(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._both("fetch_one", query, params)

    def same_tables(self) -> None:
        conn = sqlite3.connect(self.sqlite.path)
        conn.row_factory = sqlite3.Row
        for table in TABLES:
            real = [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
            mine: list[Row] = (
                list(self.memory.tasks.values())
                if table == "tasks"
                else [r for lines in self.memory.logs.values() for r in lines.values()]
                if table == "task_logs"
                else list(self.memory.history.values())
                if table == "task_history"
                else [r for held in self.memory.resources.values() for r in held.values()]
                if table == "task_resources"
                else list(getattr(self.memory, table).values())  # a dict named as the table
            )
            assert typed(sorted(mine, key=_key)) == typed(sorted(real, key=_key)), table
            for row in mine:  # every column, in table order
                assert list(row) == [c[0] for c in TABLES[table]]
        conn.close()


def _key(row: Mapping[str, Any]) -> tuple[str, int, str]:
    return (str(row.get("id", row.get("task_id"))), int(row.get("n", 0)), str(row.get("key")))


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    memory = MemoryConnector()
    sqlite = SQLiteConnector(tmp_path / "t.db", bus=False)
    await memory.open()
    await sqlite.open()
    try:
        yield Pair(memory, sqlite)
    finally:
        await sqlite.close()
        await memory.close()


async def test_inserts_and_their_constraints(pair: Pair) -> None:
    first = await pair.execute(
        "insert_task",
        task(1, retry_on_worker_loss=True, timeout=30, labels='{"env": "prod"}', priority=2.0),
    )
    assert first[0]["timeout"] == 30.0 and first[0]["retry_on_worker_loss"] == 1
    stored = await pair.fetch_one("get_task", {"id": tid(1)})
    assert (stored["timeout"], stored["created_at"], stored["priority"]) == (30.0, 1000.0, 2)
    assert await pair.execute("insert_task", task(1, upid="other")) == []  # same id
    assert await pair.execute("insert_task", task(2, upid=task(1)["upid"])) == []  # same upid
    await pair.execute("insert_task", task(3, tenant="t1", idempotency_key="k"))
    assert await pair.execute("insert_task", task(4, tenant="t1", idempotency_key="k")) == []
    await pair.execute("insert_task", task(5, tenant="t2", idempotency_key="k"))
    await pair.execute("insert_task", task(6, object_id=7))  # TEXT affinity: "7"
    await pair.execute("insert_task", task(7, upid=None))  # NOT NULL: an error on both
    await pair.execute("insert_task", {"id": tid(8)})  # missing parameters
    await pair.execute("insert_task", task(9, params={"a": 1}))  # a dict cannot be bound
    await pair.fetch_one("get_task_by_idempotency_key", {"tenant": "t1", "idempotency_key": "k"})
    await pair.fetch_one("get_task_by_idempotency_key", {"tenant": "t1", "idempotency_key": None})
    await pair.fetch_one("get_task_by_upid", {"upid": task(5)["upid"]})
    for n in range(10):
        await pair.fetch_one("get_task", {"id": tid(n)})
    pair.same_tables()


async def test_lists_and_every_fragment(pair: Pair) -> None:
    rows = [
        task(1, labels='{"env": "prod", "team": "db"}', object_id="100"),
        task(2, labels='{"env": "dev"}', type="vzdump", tenant="acme"),
        task(3, state="scheduled", due_at=T + 50, type="vzdump"),
        task(4, labels='{"env": "prod"}', object_id="100"),
        task(5),
    ]
    await pair.batch([Step("insert_task", many=rows)])
    cases: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        ((), {}),
        (("before",), {"before_id": tid(4)}),
        (("since",), {"since_id": tid(2)}),
        (("until",), {"until_id": tid(3)}),
        (("since", "until"), {"since_id": tid(2), "until_id": tid(5)}),
        (("tenant",), {"tenant": "acme"}),
        (("states",), {"states": '["scheduled", "running"]'}),
        (("states",), {"states": '"queued"'}),  # a scalar is one value
        (("states",), {"states": "[]"}),
        (("types",), {"types": '["vzdump"]'}),
        (("object_id",), {"object_id": "100"}),
        (("object_id",), {"object_id": None}),
        (("labels",), {"labels": '{"env": "prod"}'}),
        (("labels",), {"labels": '{"env": "prod", "team": "db"}'}),
        (("labels",), {"labels": '{"missing": null}'}),  # IS NOT: NULL matches NULL
        (("labels",), {"labels": "{}"}),
        (("states",), {"states": "not json"}),
        (("nope",), {}),
        (("tenant", "before"), {"tenant": "default", "before_id": tid(5)}),
        (("types", "object_id"), {"types": '["noop"]', "object_id": "100"}),
    ]
    for fragments, params in cases:
        for limit in (100, 2, 0, -1):
            await pair.fetch_all("list_tasks", {**params, "limit": limit}, fragments)
    await pair.fetch_all("get_task", {"id": tid(1)}, ("tenant",))  # takes no fragments
    await pair.fetch_all("no_such_query", {})
    await pair.fetch_all("claim_tasks", {})  # a write, on a read connection


async def test_a_task_through_its_life(pair: Pair) -> None:
    await pair.batch(
        [
            Step(
                "insert_task",
                many=[
                    task(1, retry_on_worker_loss=True, max_attempts=3, due_at=T - 1),
                    task(2, priority=5),
                    task(3, state="scheduled", scheduled_at=T + 100, due_at=T + 100),
                    task(4, due_at=T + 0.5),
                ],
            )
        ]
    )
    await pair.fetch_one("next_due_at", {"now": T})
    claim = {"worker": "w1", "now": T + 1, "lease_expires_at": T + 31}
    claimed = await pair.execute("claim_tasks", {**claim, "limit": 2})
    assert {r["id"] for r in claimed} == {tid(2), tid(1)}  # priority, then due time
    await pair.execute(
        "renew_leases",
        {"worker": "w1", "lease_expires_at": T + 40, "ids": dumps([tid(2), tid(3)])},
    )
    held = {"worker": "w1", "attempt": 1}
    report = {
        "progress": 50,
        "progress_detail": None,
        "message": "half",
        "detailed_state": None,
        "created_resources": '{"v": ["a"]}',
        "warnings": 2,
        "now": T + 2,
    }
    await pair.execute("update_progress", {"id": tid(1), **held, **report})
    await pair.execute("update_progress", {"id": tid(1), "worker": "w2", "attempt": 1, **report})
    await pair.batch(
        [
            Step("reserve_log_lines", {"task_id": tid(1), "count": 2, "now": T + 2}),
            Step(
                "append_log_line",
                many=[
                    {"task_id": tid(1), "count": 2, "i": i, "ts": T, "level": "info", "text": t}
                    for i, t in ((1, "a"), (2, "b"))
                ],
            ),
        ]
    )
    await pair.fetch_all("get_log", {"task_id": tid(1), "start": 0, "limit": 10})
    await pair.fetch_all("get_log", {"task_id": tid(1), "start": 1, "limit": -1})
    for attempt in range(2):
        await pair.execute("request_cancel", {"id": tid(2), "now": T + 3 + attempt})
    await pair.execute("request_cancel", {"id": tid(3), "now": T + 3})
    await pair.execute("request_cancel", {"id": tid(3), "now": T + 4})  # ended: nothing
    finish = {"result": '{"ok": true}', "error": None, "message": None, "now": T + 5}
    await pair.execute("finish_task", {"id": tid(2), **held, "state": "succeeded", **finish})
    await pair.execute("finish_task", {"id": tid(2), **held, "state": "failed", **finish})
    retry = {"id": tid(1), **held, "error": '{"type": "E"}', "now": T + 6}
    await pair.execute("retry_task", {**retry, "due_at": T + 60})
    await pair.execute(
        "claim_tasks", {"worker": "w2", "now": T + 7, "lease_expires_at": T + 9, "limit": 10}
    )
    await pair.execute(
        "claim_tasks", {"worker": "w2", "now": T + 60, "lease_expires_at": T + 90, "limit": -1}
    )
    await pair.execute("expire_worker_leases", {"worker": "w2", "now": T + 61})
    await pair.execute("recover_lost_tasks", {"now": T + 62, "error": '{"type": "WorkerLost"}'})
    await pair.execute("recover_lost_tasks", {"now": T + 62, "error": '{"type": "WorkerLost"}'})
    await pair.fetch_one("next_due_at", {"now": T})
    pair.same_tables()
    for n in range(1, 5):
        await pair.batch(
            [Step("delete_task", {"id": tid(n)}), Step("delete_task_log", {"id": tid(n)})]
        )
    pair.same_tables()
    await pair.fetch_one("next_due_at", {"now": T})


async def test_a_lost_task_in_each_case(pair: Pair) -> None:
    rows = [
        task(1, retry_on_worker_loss=True, max_attempts=2),  # queued again
        task(2, retry_on_worker_loss=True, max_attempts=1),  # no attempt left: failed
        task(3),  # failed
        task(4),  # canceling: canceled
    ]
    await pair.batch([Step("insert_task", many=rows)])
    await pair.execute(
        "claim_tasks", {"worker": "w", "now": T, "lease_expires_at": T + 5, "limit": 9}
    )
    await pair.execute("request_cancel", {"id": tid(4), "now": T})
    await pair.execute("recover_lost_tasks", {"now": T + 5, "error": "{}"})  # not yet: < now
    await pair.execute("recover_lost_tasks", {"now": T + 6, "error": '{"type": "WorkerLost"}'})
    pair.same_tables()


async def test_workers(pair: Pair) -> None:
    worker = {"id": "w1", "node": "n", "pid": 10, "concurrency": 4, "now": T}
    await pair.execute("upsert_worker", worker)
    await pair.execute("upsert_worker", {**worker, "pid": 99, "now": T + 5})  # heartbeat only
    await pair.execute("upsert_worker", {**worker, "id": "w0", "now": T + 1})
    await pair.fetch_all("list_workers", {})
    await pair.execute("delete_worker", {"id": "w1"})
    await pair.execute("delete_worker", {"id": "nobody"})
    await pair.fetch_all("list_workers", {})
    await pair.execute("upsert_worker", {**worker, "node": None})
    pair.same_tables()


async def test_leaders(pair: Pair) -> None:
    leader = {"name": "scheduler", "holder": "w1", "node": "n", "pid": 10, "now": T}
    held = {"name": "scheduler", "holder": "w1"}
    assert await pair.execute("take_leader", {**leader, "stale_before": T - 5})
    assert await pair.execute("renew_leader", {**held, "now": T + 4, "stale_before": T - 1})
    # another candidate, while the lease runs; then the holder, after it ran out
    w2 = {**leader, "holder": "w2", "pid": 11}
    assert await pair.execute("take_leader", {**w2, "now": T + 8, "stale_before": T + 3}) == []
    renewal = {**held, "now": T + 10, "stale_before": T + 5}
    assert await pair.execute("renew_leader", renewal) == []
    assert await pair.execute("take_leader", {**w2, "now": T + 10, "stale_before": T + 5})
    assert await pair.execute("renew_leader", {**renewal, "holder": "w3", "stale_before": 0}) == []
    await pair.execute("drop_leader", held)  # the old holder's drop leaves the new row
    await pair.execute("take_leader", {**leader, "name": "other", "stale_before": T})
    await pair.execute("take_leader", {**leader, "name": None, "stale_before": T})  # NOT NULL
    await pair.fetch_all("list_leaders", {})
    pair.same_tables()
    await pair.execute("forget_leader", {"holder": "w2"})
    await pair.execute("forget_leader", {"holder": "nobody"})
    assert await pair.fetch_all("list_leaders", {}) == [
        {"name": "other", "holder": "w1", "node": "n", "pid": 10, "since": T, "renewed_at": T}
    ]
    pair.same_tables()


async def test_secrets(pair: Pair) -> None:
    first = {"name": "s", "value": "one", "created_at": T}
    steps = [Step("insert_secret", first), Step("get_secret", {"name": "s"})]
    assert await pair.batch(steps) == [[], [{"value": "one"}]]
    steps[0] = Step("insert_secret", {**first, "value": "two", "created_at": T + 1})
    assert await pair.batch(steps) == [[], [{"value": "one"}]]  # the first one stays
    assert await pair.fetch_one("get_secret", {"name": "none"}) is None
    await pair.execute("insert_secret", {**first, "name": "t", "value": None})  # NOT NULL
    pair.same_tables()


async def test_a_failing_batch_changes_nothing(pair: Pair) -> None:
    await pair.execute("insert_task", task(1))
    line = {"count": 1, "i": 1, "ts": T, "level": "info", "text": "a"}
    steps = [
        Step("insert_task", many=[task(2), task(3)]),
        Step("request_cancel", {"id": tid(1), "now": T}),
        Step("reserve_log_lines", {"task_id": tid(1), "count": 1, "now": T}),
        Step("append_log_line", {"task_id": tid(1), **line}),
        Step("append_log_line", {"task_id": tid(9), **line}),
    ]
    assert await pair.batch(steps) == "StorageError"  # the last line has no task
    pair.same_tables()
    assert list(pair.memory.tasks) == [tid(1)] and pair.memory.logs == {}
    assert pair.memory.tasks[tid(1)]["state"] == "queued"
    duplicate = [Step("insert_task", {**task(5)}), Step("insert_task", {**task(6, upid=None)})]
    assert await pair.batch(duplicate) == "StorageError"
    assert await pair.batch([Step("nope")]) == "ConfigurationError"
    pair.same_tables()
    assert await pair.batch([Step("insert_task", many=[task(5), task(6)])])
    pair.same_tables()


async def test_rows_are_copies() -> None:
    memory = MemoryConnector()
    await memory.open()
    (row,) = await memory.execute("insert_task", task(1))
    row["state"] = "hacked"
    fetched = await memory.fetch_one("get_task", {"id": tid(1)})
    assert fetched is not None and fetched["state"] == "queued"
    fetched["state"] = "hacked"
    assert memory.tasks[tid(1)]["state"] == "queued"


async def test_writes_need_an_open_store_and_data_outlives_a_restart() -> None:
    memory = MemoryConnector()
    with pytest.raises(StorageUnavailable):
        await memory.execute("insert_task", task(1))
    await memory.open()
    await memory.execute("insert_task", task(1))
    await memory.close()
    with pytest.raises(StorageUnavailable):
        await memory.execute("insert_task", task(2))
    await memory.open()
    assert await memory.fetch_one("get_task", {"id": tid(1)}) is not None
    connector: Connector = memory  # it satisfies the protocol
    assert connector.dialect == "memory"


async def test_listeners_hear_notifications_on_a_later_turn() -> None:
    memory = MemoryConnector()
    await memory.open()
    heard: list[tuple[str, str]] = []

    def listener(channel: str, payload: str) -> None:
        heard.append((channel, payload))

    memory.add_listener(listener)
    await memory.notify("changed", "a,b")
    await memory.notify("due")
    assert heard == []
    await asyncio.sleep(0)
    assert heard == [("changed", "a,b"), ("due", "")]
    memory.remove_listener(listener)
    memory.remove_listener(listener)  # twice: no error
    await memory.notify("due")
    await asyncio.sleep(0)
    assert len(heard) == 2


async def test_concurrent_calls_interleave_between_statements() -> None:
    memory = MemoryConnector()
    await memory.open()
    await memory.execute_batch([Step("insert_task", many=[task(n) for n in range(1, 31)])])
    claim = {"now": T, "lease_expires_at": T + 5, "limit": 4}
    results = await asyncio.gather(
        *(memory.execute("claim_tasks", {**claim, "worker": f"w{i}"}) for i in range(10))
    )
    ids = [r["id"] for rows in results for r in rows]
    assert sorted(ids) == [tid(n) for n in range(1, 31)]
    assert sum(1 for rows in results if rows) == 8  # 4 + 4 + ... + 2: every claimer got a turn


def test_storage_errors_are_taskgate_errors() -> None:
    assert issubclass(StorageError, TaskgateError)


def api_key(n: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"{n:012x}",
        "tenant": "default",
        "user_name": "u",
        "user_id": None,
        "role": "read",
        "secret_hash": "scrypt$16384$8$1$c2FsdA$aGFzaA",
        "description": None,
        "created_at": T,
        "expires_at": None,
    }
    row.update(values)
    return row


async def test_api_keys(pair: Pair) -> None:
    assert await pair.execute("insert_first_key", api_key(1, role="admin", user_id=1))
    assert await pair.execute("insert_first_key", api_key(2)) == []  # one exists already
    await pair.execute("insert_key", api_key(3, tenant="acme", user_id=7, expires_at=T + 60))
    await pair.execute("insert_key", api_key(4, created_at=T - 5, description="old"))
    await pair.execute("insert_key", api_key(3))  # the same id: an error on both
    await pair.execute("insert_key", api_key(5, role=None))  # NOT NULL
    await pair.execute("insert_key", {"id": "x"})  # missing parameters
    for n in range(6):
        await pair.fetch_one("get_key", {"id": f"{n:012x}"})
    await pair.fetch_all("list_keys", {})
    await pair.fetch_all("list_keys", {"tenant": "acme"}, ("tenant",))
    await pair.fetch_all("list_keys", {"tenant": None}, ("tenant",))
    await pair.fetch_all("list_keys", {}, ("nope",))
    revoked = await pair.execute("revoke_key", {"id": f"{3:012x}", "now": T + 1})
    assert revoked[0]["revoked_at"] == T + 1
    assert await pair.execute("revoke_key", {"id": f"{3:012x}", "now": T + 2}) == []  # once
    assert await pair.execute("revoke_key", {"id": "nope", "now": T + 2}) == []
    await pair.fetch_all("list_keys", {})
    await pair.fetch_all("revoke_key", {"id": "x", "now": T})  # a write, on a read connection
    pair.same_tables()


async def test_search_labels_and_the_overview(pair: Pair) -> None:
    await pair.batch(
        [
            Step(
                "insert_task",
                many=[
                    task(1, labels='{"team": "db", "env": "prod"}', object_id="100"),
                    task(2, labels='{"env": "dev"}', tenant="acme"),
                    task(3, state="scheduled", due_at=T + 50, object_id="prod"),
                    task(4, labels='{"n": "7", "k": "a=b"}'),
                    task(5, due_at=T - 5),
                ],
            )
        ]
    )
    pair.same_tables()  # task_labels: the triggers' rows and the memory's alike
    none = {"q_id": None, "q_key": None, "q_value": None}
    searches: list[dict[str, Any]] = [
        {**none, "q": "prod"},
        {**none, "q": "100"},
        {**none, "q": "a=b", "q_key": "a", "q_value": "b"},
        {**none, "q": "env=prod", "q_key": "env", "q_value": "prod"},
        {**none, "q": tid(2), "q_id": tid(2)},
        {**none, "q": "nothing", "q_id": tid(9)},
        {**none, "q": None},
    ]
    for search in searches:
        for fragments, extra in (
            ((), {}),
            (("tenant",), {"tenant": "default"}),
            (("before", "states"), {"before_id": tid(3), "states": '["queued"]'}),
        ):
            for limit in (10, 1):
                params = {**search, **extra, "limit": limit}
                await pair.fetch_all("search_tasks", params, fragments)
                await pair.fetch_all("search_history", params, fragments)
    claim = {"worker": "w1", "now": T + 1, "lease_expires_at": T + 31, "limit": 2}
    await pair.execute("claim_tasks", claim)
    await pair.execute("request_cancel", {"id": tid(1), "now": T + 2})
    await pair.fetch_all("running_per_worker", {})
    for fragments, scope in (((), {}), (("tenant",), {"tenant": "acme"})):
        await pair.fetch_all("state_counts", scope, fragments)
        for now in (T, T + 50, T + 60):
            await pair.fetch_all("queue_depth", {**scope, "now": now}, fragments)
            await pair.fetch_all("oldest_waiting", {**scope, "now": now}, fragments)
    held = {"worker": "w1", "attempt": 1, "result": None, "error": None, "message": None}
    for n, state, now in ((1, "canceled", T + 3), (2, "failed", T + 65), (5, "timed_out", T + 7)):
        await pair.execute("finish_task", {"id": tid(n), **held, "state": state, "now": now})
    await pair.batch(
        [
            Step("archive_tasks", {"ids": dumps([tid(1)])}),
            Step("drop_archived", {"ids": dumps([tid(1)])}),
        ]
    )
    pair.same_tables()  # the archived task keeps its labels
    await pair.fetch_all("search_history", {**none, "q": "prod", "limit": 10})
    for fragments, scope in (((), {}), (("tenant",), {"tenant": "default"})):
        for start, size in ((T, 10), (T + 5, 1), (T - 100, 60)):
            span = {"window_start": start, "window_end": start + 100, "bucket_seconds": size}
            await pair.fetch_all("ended_counts", {**scope, **span}, fragments)
            await pair.fetch_all("archived_ended_counts", {**scope, **span}, fragments)
    await pair.batch([Step("delete_archived_task", {"id": tid(1)})])
    await pair.batch([Step("delete_task", {"id": tid(4)})])
    pair.same_tables()  # the deleted tasks' labels are gone
