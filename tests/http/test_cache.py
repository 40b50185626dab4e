"""The render cache keeps within its count and byte budgets."""

from __future__ import annotations

from datetime import UTC, datetime

from taskgate.http.cache import RenderCache
from taskgate.model import State, Task


def task(n: int, result: object = None, version: int = 1) -> Task:
    now = datetime.now(UTC)
    return Task(
        id=f"01900000-0000-7000-8000-{n:012d}",
        upid="UPID:n:00000001:00000001:00000001:noop::u@taskgate:",
        type="noop",
        state=State.QUEUED,
        params={},
        created_at=now,
        updated_at=now,
        result=result,
        version=version,
    )


def test_budgets() -> None:
    cache = RenderCache(max_items=3, max_bytes=100_000, max_item_bytes=5_000)
    for n in range(5):
        cache.put(str(n), task(n))
    assert len(cache) == 3 and cache.get("0") is None and cache.get("4") is not None
    big = cache.put("big", task(9, result="x" * 10_000))
    assert big.body and cache.get("big") is None  # rendered, not kept
    assert cache.bytes == sum(len(r.body) for r in cache._items.values())
    small = RenderCache(max_items=100, max_bytes=2_500, max_item_bytes=5_000)
    for n in range(10):
        small.put(str(n), task(n))
    assert small.bytes <= 2_500 and len(small) >= 1
    assert small.get("9") is not None


def test_a_new_version_replaces_the_old() -> None:
    cache = RenderCache()
    cache.put("a", task(1, version=1))
    size = cache.bytes
    rendered = cache.put("a", task(1, result="more", version=2))
    assert cache.get("a") is rendered and rendered.version == 2
    assert len(cache) == 1 and cache.bytes > size
    cache.discard("a")
    assert cache.bytes == 0 and len(cache) == 0
