"""`App.operation`: parameter schemas, validation errors, options, retry backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import pytest

from taskgate import App, Context
from taskgate.app import RetryPolicy
from taskgate.errors import ConfigurationError, InvalidParameters, OperationNotFound


def module_level_handler(ctx: Context, n: int) -> int:
    return n


class VolumeParams(pydantic.BaseModel):
    size_gb: int
    name: str = "vol"


@pytest.fixture
def app() -> App:
    app = App()

    @app.operation("vzdump", object_id="vmid", timeout=60, priority=3)
    def vzdump(
        ctx: Context,
        vmid: int,
        mode: str = "snapshot",
        tags: list[int] | None = None,
        when: datetime | None = None,
        copies: Annotated[int, pydantic.Field(ge=1, le=5)] = 1,
    ) -> None:
        """Back up a guest."""

    @app.operation("create_volume")
    async def create_volume(ctx: Context, spec: VolumeParams) -> None: ...

    return app


def errors_of(app: App, type: str, params: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidParameters) as info:
        app.get(type).validate(params)
    assert info.value.status == 422
    return [(e["field"], e["type"]) for e in info.value.errors]


def test_the_schema_comes_from_the_type_hints(app: App) -> None:
    schema = app.get("vzdump").json_schema()
    props = schema["properties"]
    assert props["vmid"]["type"] == "integer"
    assert props["mode"] == {"default": "snapshot", "title": "Mode", "type": "string"}
    assert props["copies"]["minimum"] == 1 and props["copies"]["maximum"] == 5
    assert props["when"]["anyOf"][0] == {"format": "date-time", "type": "string"}
    assert schema["required"] == ["vmid"]
    assert schema["additionalProperties"] is False


def test_valid_parameters_are_stored_in_json_form_and_passed_typed(app: App) -> None:
    op = app.get("vzdump")
    stored = op.validate({"vmid": "100", "when": "2024-01-02T03:04:05Z", "tags": [1, "2"]})
    assert stored == {
        "vmid": 100,
        "mode": "snapshot",
        "tags": [1, 2],
        "when": "2024-01-02T03:04:05Z",
        "copies": 1,
    }
    args = op.arguments(stored)
    assert args["when"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert args["vmid"] == 100 and args["tags"] == [1, 2]
    assert op.object_id_of(stored) == "100"
    assert (op.timeout, op.priority, op.description) == (60, 3, "Back up a guest.")


def test_a_pydantic_model_parameter_is_the_schema(app: App) -> None:
    op = app.get("create_volume")
    assert op.params_model is VolumeParams and op.model_param == "spec"
    assert op.json_schema() == VolumeParams.model_json_schema()
    stored = op.validate({"size_gb": 10})
    assert stored == {"size_gb": 10, "name": "vol"}
    assert op.arguments(stored) == {"spec": VolumeParams(size_gb=10)}
    assert errors_of(app, "create_volume", {"size_gb": "big"}) == [("size_gb", "int_parsing")]


def test_wrong_types_name_the_field(app: App) -> None:
    assert errors_of(app, "vzdump", {"vmid": "abc"}) == [("vmid", "int_parsing")]
    assert errors_of(app, "vzdump", {"vmid": 1, "tags": [1, "x"]}) == [("tags.1", "int_parsing")]
    assert errors_of(app, "vzdump", {"vmid": 1, "copies": 9}) == [("copies", "less_than_equal")]


def test_missing_and_extra_fields_are_named(app: App) -> None:
    assert errors_of(app, "vzdump", {}) == [("vmid", "missing")]
    assert errors_of(app, "vzdump", {"vmid": 1, "color": "red"}) == [("color", "extra_forbidden")]
    assert errors_of(app, "vzdump", {"mode": 5, "bogus": 1}) == [
        ("vmid", "missing"),
        ("mode", "string_type"),
        ("bogus", "extra_forbidden"),
    ]


def test_the_error_message_lists_the_fields(app: App) -> None:
    with pytest.raises(InvalidParameters) as info:
        app.get("vzdump").validate({"mode": 5})
    assert "vmid" in info.value.message and "mode" in info.value.message


@pytest.mark.parametrize("params", [[1, 2], "text", 5, None])
def test_parameters_that_are_not_an_object(app: App, params: Any) -> None:
    assert errors_of(app, "vzdump", params) == [(None, "model_type")]


def test_unknown_operation(app: App) -> None:
    with pytest.raises(OperationNotFound) as info:
        app.get("nope")
    assert info.value.status == 404


def test_isolation_defaults_and_checks() -> None:
    app = App()

    @app.operation()
    def sync_op(ctx: Context) -> None: ...

    @app.operation()
    async def async_op(ctx: Context) -> None: ...

    app.operation("in_process", isolation="process")(module_level_handler)
    assert app.get("sync_op").isolation == "thread" and not app.get("sync_op").is_async
    assert app.get("async_op").isolation == "async" and app.get("async_op").is_async
    assert app.get("in_process").isolation == "process"

    with pytest.raises(ConfigurationError, match="async handler"):
        app.operation("a", isolation="async")(module_level_handler)
    with pytest.raises(ConfigurationError, match="'async'"):
        app.operation("b", isolation="thread")(async_op)
    with pytest.raises(ConfigurationError, match="module-level"):
        app.operation("c", isolation="process")(sync_op)


def untyped(ctx, x):  # type: ignore[no-untyped-def]
    return x


def bad_hint(ctx: Context, x: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
    ...


def star_args(ctx: Context, *items: int) -> None: ...


def positional(ctx: Context, x: int, /) -> None: ...


def no_context() -> None: ...


@pytest.mark.parametrize(
    ("name", "handler", "options", "match"),
    [
        ("has space", module_level_handler, {}, "operation name"),
        ("x" * 101, module_level_handler, {}, "operation name"),
        ("ok", module_level_handler, {"max_attempts": 0}, "max_attempts"),
        ("ok", module_level_handler, {"timeout": 0}, "timeout"),
        ("ok", module_level_handler, {"object_id": "vmid"}, "object_id"),
        ("ok", bad_hint, {}, "type hints"),
        ("ok", star_args, {}, "plain keyword"),
        ("ok", positional, {}, "plain keyword"),
        ("ok", no_context, {}, "context"),
    ],
)
def test_bad_operation_definitions(
    name: str, handler: Any, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        App().operation(name, **options)(handler)


def test_untyped_parameters_accept_anything() -> None:
    app = App()
    app.operation("u")(untyped)
    assert app.get("u").validate({"x": [1, {"a": None}]}) == {"x": [1, {"a": None}]}
    assert app.get("u").name == "u"
    assert App().operation()(untyped) is untyped  # the decorator returns the function


# -- retry backoff ------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, backoff=2.0, backoff_max=30.0, jitter=False)
    assert [policy.delay(n) for n in range(0, 7)] == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay(10_000) == 30.0  # no overflow for absurd attempt numbers


def test_backoff_with_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(max_attempts=10, backoff=1.0, backoff_max=20.0)
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(20.0, 2.0 ** (attempt - 1))
        samples = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not one fixed value
    assert policy.delay(5000) <= 20.0
    assert isinstance(policy.delay(1), float)
