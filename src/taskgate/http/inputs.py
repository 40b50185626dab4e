"""Text values from a query string: typed values out, a clear reason otherwise.

The converters raise `ValueError` with a message meant for the client; `param` turns
that into a 400 naming the query parameter, and the submit options (422) reuse the
same converters with their own error shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from taskgate.http.problems import HTTPProblem
from taskgate.model import State

T = TypeVar("T")

_INT = re.compile(r"^[+-]?[0-9]{1,18}$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
STATE_NAMES = ", ".join(s.value for s in State)


def invalid(name: str, message: str) -> HTTPProblem:
    return HTTPProblem(
        400,
        f"query parameter {name!r}: {message}",
        slug="invalid-query-parameter",
        title="Invalid query parameter",
        parameter=name,
    )


def param(name: str, convert: Callable[[str], T], raw: str) -> T:
    """``convert(raw)``, or a 400 naming query parameter ``name``."""
    try:
        return convert(raw)
    except ValueError as exc:
        raise invalid(name, str(exc)) from None


def to_int(raw: str, lo: int, hi: int) -> int:
    text = raw.strip()
    if not _INT.match(text):
        raise ValueError(f"{raw!r} is not an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise ValueError(f"must be between {lo} and {hi}, not {value}")
    return value


def int_param(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    """Query parameter ``name`` as an integer in ``lo..hi``; ``default`` when absent."""
    if raw is None:
        return default
    return param(name, lambda r: to_int(r, lo, hi), raw)


def to_number(raw: str) -> float:
    """A finite decimal number."""
    text = raw.strip()
    if not _NUMBER.match(text):
        raise ValueError(f"{raw!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def to_bool(raw: str) -> bool:
    """``true`` or ``false`` (also ``1`` / ``0``), in any case."""
    text = raw.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{raw!r} is not true or false")


def to_time(raw: str) -> datetime:
    """An RFC 3339 timestamp with a zone (``2025-01-31T12:00:00Z``)."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)") from None
    if value.tzinfo is None or "T" not in raw.upper():
        raise ValueError(f"{raw!r} needs a date, a time and a zone (e.g. a trailing Z)")
    return value


def to_label(raw: str) -> tuple[str, str]:
    """``key=value``."""
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise ValueError(f"{raw!r} is not key=value")
    return key, value


def split_values(name: str, values: Iterable[str]) -> list[str]:
    """Repeated and comma-separated values, flattened: ``x=a,b&x=c`` -> a, b, c."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                raise invalid(name, "an empty value")
            out.append(part)
    return out


def parse_states(name: str, values: Iterable[str]) -> tuple[State, ...]:
    states: list[State] = []
    for value in split_values(name, values):
        try:
            state = State(value)
        except ValueError:
            raise invalid(name, f"unknown state {value!r}; valid states: {STATE_NAMES}") from None
        if state not in states:
            states.append(state)
    return tuple(states)
