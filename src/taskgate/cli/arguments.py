"""Command-line values of the client commands: task parameters, labels, durations, ids.

``taskgate submit vzdump vmid=100 storage=local tags='["a"]' note:='"007"'``

- ``key=value``: the value as JSON when it parses as JSON (``100`` is a number,
  ``true`` a boolean, ``["a"]`` a list, ``null`` null), else the text as it is;
- ``key:=json``: the value must be JSON (for a string that looks like a number,
  ``key:='"007"'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import click
import orjson

from taskgate import durations

_KEY = re.compile(r"^[A-Za-z_][\w.\-]*$")


def parse_value(text: str) -> Any:
    """``text`` as JSON if it is JSON, else ``text`` itself."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``key=value`` / ``key:=json`` arguments as one parameters object."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(
                f"{item!r} is not key=value (or key:=json)", param_hint="PARAMS"
            )
        strict = key.endswith(":")
        key = key.removesuffix(":")
        if not _KEY.match(key):
            raise click.BadParameter(
                f"{key!r} in {item!r} is not a parameter name", param_hint="PARAMS"
            )
        if key in params:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="PARAMS")
        if strict:
            try:
                params[key] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise click.BadParameter(
                    f"{key}:= needs JSON, got {raw!r}", param_hint="PARAMS"
                ) from None
        else:
            params[key] = parse_value(raw)
    return params


def parse_labels(items: Iterable[str], *, option: str = "--label") -> dict[str, str]:
    """``k=v`` options as a dict of labels."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint=option)
        labels[key] = value
    return labels


def parse_duration(text: str, *, option: str) -> float:
    """Seconds from ``90``, ``1.5``, ``250ms``, ``90s``, ``5m``, ``2h`` or ``1d``."""
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def duration_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> float | None:
    """A click option callback: the option's text as seconds (`parse_duration`).

    A callback rather than a ``click.ParamType``, whose typing differs between click
    versions."""
    if value is None:
        return None
    return parse_duration(value, option=param.opts[0] if param.opts else "duration")


def not_blank(
    ctx: click.Context, param: click.Parameter, value: str | tuple[str, ...] | None
) -> str | tuple[str, ...] | None:
    """A click callback: the value (or each of a repeated option's), stripped; an empty
    one is refused here rather than sent (``--group ""``, ``groups show " "``)."""
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else value
    if any(not v.strip() for v in values):
        raise click.BadParameter("must not be empty")
    stripped = tuple(v.strip() for v in values)
    return stripped[0] if isinstance(value, str) else stripped
