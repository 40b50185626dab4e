"""Named SQL, loaded once per dialect from ``sql/<dialect>.sql``.

The file is a sequence of blocks::

    -- name: get_task
    -- One task by id.
    SELECT * FROM tasks WHERE id = :id

A query may declare optional ``WHERE`` fragments, each its own block named
``<query>.<fragment>``; the query's text holds ``/*where*/`` where the chosen fragments
go, joined with ``AND``. Python chooses fragments by name; it never writes SQL.

A query that filters the same way as another takes that one's fragments with a comment
line ``-- fragments: <query>`` (the history table's list reuses the hot table's filters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from taskgate.errors import ConfigurationError

_BLOCK = re.compile(r"^-- name: (?P<name>[\w.]+)\s*$", re.MULTILINE)
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.MULTILINE | re.IGNORECASE)
"""A statement that writes has a line starting with its verb (after any WITH clause)."""
_SHARES = re.compile(r"^-- fragments: (?P<name>\w+)\s*$", re.MULTILINE)
WHERE_MARK = "/*where*/"


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    fragments: dict[str, str]
    write: bool

    def compose(self, chosen: tuple[str, ...] = ()) -> str:
        if WHERE_MARK not in self.sql:
            if chosen:
                raise ConfigurationError(f"query {self.name} takes no fragments")
            return self.sql
        try:
            parts = [self.fragments[name] for name in chosen]
        except KeyError as exc:
            raise ConfigurationError(f"query {self.name} has no fragment {exc}") from None
        where = " AND ".join(f"({p})" for p in parts) if parts else "1 = 1"
        return self.sql.replace(WHERE_MARK, where)


def parse(text: str) -> dict[str, Query]:
    """Parse a query file into queries by name."""
    blocks: dict[str, str] = {}
    shares: dict[str, str] = {}
    matches = list(_BLOCK.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        block = text[m.end() : end]
        body = "\n".join(line for line in block.splitlines() if not line.startswith("--")).strip()
        blocks[m.group("name")] = body.rstrip(";").strip()
        shared = _SHARES.search(block)
        if shared is not None:
            shares[m.group("name")] = shared.group("name")
    queries: dict[str, Query] = {}
    for name, sql in blocks.items():
        if "." in name:
            continue
        owner = shares.get(name, name)
        if owner not in blocks:
            raise ConfigurationError(f"query {name} takes the fragments of {owner}: no such query")
        fragments = {
            frag.split(".", 1)[1]: body
            for frag, body in blocks.items()
            if frag.startswith(owner + ".")
        }
        write = _WRITE.search(sql) is not None
        queries[name] = Query(name, sql, fragments, write)
    return queries


@cache
def load(dialect: str) -> dict[str, Query]:
    """The queries of one dialect (``sqlite``, ``postgres``), parsed once."""
    text = resources.files("taskgate.storage").joinpath("sql", f"{dialect}.sql").read_text()
    return parse(text)


class Statements:
    """One dialect's queries, composed into SQL text once per (name, fragments)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.queries = load(dialect)
        self._composed: dict[tuple[str, tuple[str, ...]], str] = {}

    def sql(self, name: str, fragments: tuple[str, ...] = ()) -> str:
        """The text of query ``name`` with ``fragments``; `ConfigurationError` if no
        query has that name."""
        key = (name, fragments)
        sql = self._composed.get(key)
        if sql is None:
            try:
                query = self.queries[name]
            except KeyError:
                raise ConfigurationError(f"no query named {name!r} for {self.dialect}") from None
            sql = self._composed[key] = query.compose(fragments)
        return sql


def query_names(dialect: str) -> set[str]:
    return set(load(dialect))
