"""SQLite's value rules in Python, for the memory backend's queries: type affinity,
comparisons with NULL, JSON functions, parameter binding and LIMIT."""

from __future__ import annotations

from typing import Any

import orjson

from taskgate.errors import StorageError
from taskgate.storage.connector import Params


def affinity(kind: str, value: Any) -> Any:
    """What SQLite stores for ``value`` in a column of type ``kind``."""
    if value is None or isinstance(value, bytes):
        return value
    if kind == "INTEGER":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if kind == "REAL":
        return float(value) if isinstance(value, int) else value
    if kind == "TEXT" and isinstance(value, int | float):
        return str(value)
    return value


def sql_eq(a: Any, b: Any) -> bool:
    """SQL ``a = b``: never true when either side is NULL."""
    return a is not None and b is not None and a == b


def sql_le(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a <= b


def sql_lt(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a < b


def sql_is_not(a: Any, b: Any) -> bool:
    """SQL ``a IS NOT b``: NULLs compare equal to each other."""
    if a is None or b is None:
        return (a is None) != (b is None)
    return bool(a != b)


def sql_value(value: Any) -> Any:
    """A JSON value as SQLite's JSON functions hand it to SQL."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def json_value(text: Any) -> Any:
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        raise StorageError("malformed JSON") from None


def json_each(text: Any) -> list[tuple[Any, Any]]:
    """SQLite's ``json_each(text)``: (key, value) per member (a scalar is its own row)."""
    data = json_value(text)
    if isinstance(data, dict):
        return [(k, sql_value(v)) for k, v in data.items()]
    if isinstance(data, list):
        return [(i, sql_value(v)) for i, v in enumerate(data)]
    return [(None, sql_value(data))]


def json_extract(text: Any, key: Any) -> Any:
    """``json_extract(text, '$."key"')``."""
    if text is None:
        return None
    data = json_value(text)
    if not isinstance(data, dict):
        return None
    return sql_value(data.get(str(key)))


class Bound:
    """A statement's parameters, checked as sqlite3 checks them when it binds."""

    __slots__ = ("_data", "_query")

    def __init__(self, query: str, data: Params) -> None:
        self._query = query
        self._data = data

    def __getitem__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise StorageError(
                f"{self._query}: you did not supply a value for binding parameter :{name}"
            ) from None
        if isinstance(value, bool):
            return int(value)
        if value is None or isinstance(value, int | float | str | bytes):
            return value
        raise StorageError(
            f"{self._query}: error binding parameter :{name}:"
            f" type {type(value).__name__!r} is not supported"
        )


def sql_limit(value: Any) -> int | None:
    """SQLite's ``LIMIT``: a negative limit means none."""
    if not isinstance(value, int):
        raise StorageError("datatype mismatch: LIMIT needs an integer")
    return None if value < 0 else value
