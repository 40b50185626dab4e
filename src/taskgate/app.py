"""`App`: where an API builder registers its operations.

    app = taskgate.App()

    @app.operation("vzdump", timeout=3600, object_id="vmid")
    def vzdump(ctx: taskgate.Context, vmid: int, mode: str = "snapshot") -> dict[str, str]:
        ctx.progress(10, "starting backup")
        ...

The handler's first parameter receives the `Context`; the others are the operation's
parameters, validated by pydantic from their type hints at submit (HTTP 422 naming the
field) and passed again, typed, to the handler. A handler may instead take one parameter
annotated with a pydantic model, which then is the schema.
"""

from __future__ import annotations

import inspect
import math
import random
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import pydantic

from taskgate.errors import ConfigurationError, InvalidParameters

Isolation = Literal["thread", "async", "process"]
Handler = Callable[..., Any]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
TASK_FIELDS = ("tenant", "user", "object_id", "type")
"""What a resource or limit template may name besides the operation's parameters."""
MAX_RESOURCES = 32
"""Most resources and limits one task may reserve."""
MAX_RESOURCE = 255
"""Longest resource name."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**(n-1)."""

    max_attempts: int = 1
    backoff: float = 1.0
    backoff_max: float = 300.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the attempt after ``attempt`` (1-based)."""
        # the exponent is capped: 2.0 ** 1100 overflows, and the ceiling is reached long before
        ceiling = float(min(self.backoff_max, self.backoff * 2.0 ** min(max(attempt - 1, 0), 64)))
        if not self.jitter:
            return ceiling
        return float((rng or random).uniform(ceiling / 2, ceiling))


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most ``max`` tasks under this limit run at once, across every worker and node.

    ``per`` splits the limit by a template over the task (``"{tenant}"``, a parameter
    such as ``"{remote}"``): each value has a limit of its own. ``name`` lets several
    operations share one limit (default: the operation's name). Waiting tasks under one
    limit start in submit order.
    """

    max: int
    per: str = ""
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    """How long an ended task is kept: ``archive_after`` seconds in the hot table, then
    in history until ``purge_after`` seconds after its end (`math.inf`: for ever; None:
    the store's setting)."""

    archive_after: float | None = None
    purge_after: float | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """A registered operation: its handler, its parameter schema and its options."""

    name: str
    handler: Handler
    params_model: type[pydantic.BaseModel]
    model_param: str | None
    """Name of the handler's single pydantic-model parameter, if it takes one."""
    is_async: bool
    isolation: Isolation
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_on_worker_loss: bool = False
    priority: int = 0
    object_id: str | None = None
    """The parameter whose value becomes the task's ``object_id``."""
    description: str | None = None
    exclusive: tuple[str, ...] = ()
    """Resources each task holds alone while it runs: templates over the task
    (``"repository:{repository_id}"``); a template naming a parameter that is None
    reserves nothing."""
    shared: tuple[str, ...] = ()
    """Resources each task holds shared: any number of sharers, but not beside a task
    that holds one exclusively."""
    limits: tuple[ConcurrencyLimit, ...] = ()
    retention: Retention = field(default_factory=Retention)

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``params``; return them in their JSON form. Raises `InvalidParameters`."""
        try:
            # a non-mapping (a JSON array, a number) goes to pydantic whole: it answers
            # with a clear "should be a valid dictionary" error instead of a TypeError
            data = dict(params) if isinstance(params, Mapping) else params
            model = self.params_model.model_validate(data)
        except pydantic.ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(part) for part in err["loc"]) or None,
                    "message": err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors(include_url=False, include_input=False)
            ]
            fields = ", ".join(str(e["field"]) for e in errors if e["field"])
            raise InvalidParameters(
                f"invalid parameters for {self.name}: {fields or 'body'} ({errors[0]['message']})",
                errors=errors,
            ) from None
        dumped: dict[str, Any] = model.model_dump(mode="json")
        return dumped

    def arguments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The handler's keyword arguments for stored (JSON) parameters."""
        model = self.params_model.model_validate(dict(params))
        if self.model_param is not None:
            return {self.model_param: model}
        return {name: getattr(model, name) for name in type(model).model_fields}

    def json_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def object_id_of(self, params: Mapping[str, Any]) -> str | None:
        if self.object_id is None:
            return None
        value = params.get(self.object_id)
        return None if value is None else str(value)

    @property
    def reserves(self) -> bool:
        """Its tasks reserve resources or count against limits."""
        return bool(self.exclusive or self.shared or self.limits)

    def render(self, template: str, values: Mapping[str, Any]) -> str | None:
        """``template`` filled from ``values`` (the parameters and `TASK_FIELDS`); None
        when a field it names is None."""
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        if any(values.get(n) is None for n in names if n):
            return None
        return template.format_map(values)


class App:
    """A set of operations, and the import path workers use to load them again."""

    def __init__(self, name: str = "taskgate") -> None:
        self.name = name
        self.operations: dict[str, Operation] = {}
        self.import_path: str | None = None

    def operation(
        self,
        name: str | None = None,
        *,
        timeout: float | None = None,
        max_attempts: int = 1,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 300.0,
        retry_jitter: bool = True,
        retry_on_worker_loss: bool = False,
        isolation: Isolation | None = None,
        priority: int = 0,
        object_id: str | None = None,
        description: str | None = None,
        exclusive: Iterable[str] = (),
        shared: Iterable[str] = (),
        concurrency: int | None = None,
        limits: Iterable[ConcurrencyLimit] = (),
        archive_after: float | None = None,
        purge_after: float | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as operation ``name`` (default: its name).

        ``exclusive`` and ``shared`` name the resources its tasks reserve, as templates
        over the task (``"repository:{repository_id}"``); ``concurrency`` is at most that
        many of its tasks running at once (a `ConcurrencyLimit` with no ``per``), and
        ``limits`` more limits. ``archive_after`` and ``purge_after`` (seconds after a
        task's end; `math.inf`: never) override the store's retention for its tasks.
        """

        def register(fn: Handler) -> Handler:
            op_name = name or fn.__name__
            self.operations[op_name] = build_operation(
                op_name,
                fn,
                timeout=timeout,
                retry=RetryPolicy(max_attempts, retry_backoff, retry_backoff_max, retry_jitter),
                retry_on_worker_loss=retry_on_worker_loss,
                isolation=isolation,
                priority=priority,
                object_id=object_id,
                description=description,
                exclusive=tuple(exclusive),
                shared=tuple(shared),
                limits=(
                    *(() if concurrency is None else (ConcurrencyLimit(concurrency),)),
                    *limits,
                ),
                retention=Retention(archive_after, purge_after),
            )
            return fn

        return register

    def get(self, name: str) -> Operation:
        from taskgate.errors import OperationNotFound

        try:
            return self.operations[name]
        except KeyError:
            raise OperationNotFound(f"no operation named {name!r}") from None


def build_operation(
    name: str,
    fn: Handler,
    *,
    timeout: float | None,
    retry: RetryPolicy,
    retry_on_worker_loss: bool,
    isolation: Isolation | None,
    priority: int,
    object_id: str | None,
    description: str | None,
    exclusive: tuple[str, ...] = (),
    shared: tuple[str, ...] = (),
    limits: tuple[ConcurrencyLimit, ...] = (),
    retention: Retention = Retention(),
) -> Operation:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"operation name {name!r}: use letters, digits, '_', '.', '-' (at most 100)"
        )
    if retry.max_attempts < 1:
        raise ConfigurationError(f"operation {name}: max_attempts must be at least 1")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"operation {name}: timeout must be positive")
    is_async = inspect.iscoroutinefunction(fn)
    chosen: Isolation = isolation or ("async" if is_async else "thread")
    if chosen == "async" and not is_async:
        raise ConfigurationError(f"operation {name}: isolation='async' needs an async handler")
    if chosen == "thread" and is_async:
        raise ConfigurationError(f"operation {name}: an async handler runs with 'async'")
    if chosen == "process" and (fn.__qualname__ != fn.__name__ or "<locals>" in fn.__qualname__):
        raise ConfigurationError(
            f"operation {name}: a process-isolated handler must be a module-level function"
        )
    model, model_param = _params_model(name, fn)
    if object_id is not None and object_id not in model.model_fields:
        raise ConfigurationError(f"operation {name}: object_id names no parameter {object_id!r}")
    fields = {*model.model_fields, *TASK_FIELDS}
    for template in (*exclusive, *shared, *(lim.per for lim in limits)):
        _check_template(name, template, fields)
    for lim in limits:
        if isinstance(lim.max, bool) or not isinstance(lim.max, int) or lim.max < 1:
            raise ConfigurationError(f"operation {name}: a concurrency limit is at least 1")
        if lim.name is not None and not _NAME.match(lim.name):
            raise ConfigurationError(f"operation {name}: limit name {lim.name!r} is not a name")
    if len(exclusive) + len(shared) + len(limits) > MAX_RESOURCES:
        raise ConfigurationError(f"operation {name}: at most {MAX_RESOURCES} reservations")
    _check_retention(name, retention)
    return Operation(
        name=name,
        handler=fn,
        params_model=model,
        model_param=model_param,
        is_async=is_async,
        isolation=chosen,
        timeout=timeout,
        retry=retry,
        retry_on_worker_loss=retry_on_worker_loss,
        priority=priority,
        object_id=object_id,
        description=description or inspect.getdoc(fn),
        exclusive=exclusive,
        shared=shared,
        limits=limits,
        retention=retention,
    )


def _check_template(name: str, template: str, fields: set[str]) -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(f"operation {name}: template {template!r}: {exc}") from None
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in fields or spec or conversion:
            raise ConfigurationError(
                f"operation {name}: template {template!r} may name only a parameter or"
                f" {', '.join(TASK_FIELDS)} (as {{name}}), not {{{field_name}}}"
            )


def _check_retention(name: str, retention: Retention) -> None:
    for label, value in (
        ("archive_after", retention.archive_after),
        ("purge_after", retention.purge_after),
    ):
        if value is not None and (math.isnan(value) or value < 0):
            raise ConfigurationError(f"operation {name}: {label} must be >= 0 seconds")
    archive, purge = retention.archive_after, retention.purge_after
    if archive is not None and purge is not None and purge < archive:
        raise ConfigurationError(f"operation {name}: purge_after is before archive_after")


def _params_model(name: str, fn: Handler) -> tuple[type[pydantic.BaseModel], str | None]:
    """The pydantic model of a handler's parameters (all but the first, the context)."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if not params:
        raise ConfigurationError(f"operation {name}: the handler must take a context first")
    try:
        # include_extras keeps Annotated[int, Field(ge=1)] constraints for pydantic
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(f"operation {name}: cannot resolve type hints: {exc}") from exc
    rest = params[1:]
    if len(rest) == 1:
        hint = hints.get(rest[0].name)
        if get_origin(hint) is Annotated:
            hint = get_args(hint)[0]
        if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
            return hint, rest[0].name
    fields: dict[str, Any] = {}
    for p in rest:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ConfigurationError(
                f"operation {name}: parameter {p.name} must be a plain keyword parameter"
            )
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{_camel(name)}Params",
        __config__=pydantic.ConfigDict(extra="forbid"),
        **fields,
    )
    return model, None


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_.\-]", name) if part)
