"""How a running handler spawns child tasks and waits for them (`taskgate.context.Family`).

- `WorkerFamily`, in the worker: ``spawn_async``/``wait_async`` call the service on the
  worker's loop; the blocking ``spawn``/``wait`` of a handler thread hand the same
  coroutines to that loop and wait for their answer.
- `PipeFamily`, in a process-isolated task's child: each call is a message to the worker
  over the task's pipe (``("call", n, method, args)``), answered by
  ``("reply", n, ok, value)``, which `answer` computes with the worker's
  `WorkerFamily`. A child's ``async def`` handler runs the blocking call in a thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from taskgate import errors
from taskgate.context import on_loop
from taskgate.errors import ConfigurationError, TaskgateError
from taskgate.model import Task

if TYPE_CHECKING:
    from taskgate.service import TaskService


class WorkerFamily:
    """The children of one attempt, through the worker's service."""

    def __init__(self, service: TaskService, task: Task, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.task = task
        self.loop = loop

    async def spawn_async(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task:
        from taskgate.service import Submission

        return await self.service.spawn(self.task, type, params, Submission(**options), key=key)

    async def wait_async(self, timeout: float | None) -> list[Task]:
        return await self.service.wait_children(self.task.id, timeout)

    def spawn(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task:
        task: Task = self._block(self.spawn_async(type, params, options, key), "spawn")
        return task

    def wait(self, timeout: float | None) -> list[Task]:
        children: list[Task] = self._block(self.wait_async(timeout), "wait_children")
        return children

    def _block(self, coro: Any, name: str) -> Any:
        if on_loop(self.loop):
            coro.close()
            raise ConfigurationError(
                f"ctx.{name}() blocks: an async handler awaits ctx.{name}_async() instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


async def answer(family: WorkerFamily, method: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
    """A `PipeFamily` call, made with the worker's family: (True, result) or (False,
    (error class name, message))."""
    try:
        if method == "spawn":
            return True, await family.spawn_async(*args)
        if method == "wait":
            return True, await family.wait_async(*args)
        raise ConfigurationError(f"no family call {method!r}")
    except TaskgateError as exc:
        return False, (type(exc).__name__, exc.message)
    except Exception as exc:
        return False, ("TaskgateError", f"{type(exc).__name__}: {exc}")


class PipeFamily:
    """The children of a process-isolated attempt, asked of the worker over the pipe."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._gone = False

    def spawn(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task:
        result: Task = self._call("spawn", (type, dict(params), dict(options), key))
        return result

    def wait(self, timeout: float | None) -> list[Task]:
        result: list[Task] = self._call("wait", (timeout,))
        return result

    async def spawn_async(
        self, type: str, params: Mapping[str, Any], options: Mapping[str, Any], key: str | None
    ) -> Task:
        return await asyncio.to_thread(self.spawn, type, params, options, key)

    async def wait_async(self, timeout: float | None) -> list[Task]:
        return await asyncio.to_thread(self.wait, timeout)

    def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            if self._gone:
                raise ConfigurationError("the worker is gone: no child can be spawned")
            n = next(self._numbers)
            self._waiting[n] = (done, box)
        self._send(("call", n, method, args))
        done.wait()
        ok, value = box
        if ok:
            return value
        name, message = value
        cls = getattr(errors, name, TaskgateError)
        if not (isinstance(cls, type) and issubclass(cls, TaskgateError)):
            cls = TaskgateError
        try:
            error = cls(message)
        except TypeError:  # one that takes more than a message (InvalidParameters)
            error = errors.InvalidRequest(message)
        raise error

    def reply(self, n: int, ok: bool, value: Any) -> None:
        """The worker's answer to call ``n`` (from the child's pipe reader)."""
        with self._lock:
            waiting = self._waiting.pop(n, None)
        if waiting is not None:
            done, box = waiting
            box[:] = [ok, value]
            done.set()

    def close(self) -> None:
        """The pipe closed: every waiting call fails."""
        with self._lock:
            self._gone = True
            waiting, self._waiting = self._waiting, {}
        for done, box in waiting.values():
            box[:] = [False, ("ConfigurationError", "the worker is gone")]
            done.set()
