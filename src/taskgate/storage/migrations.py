"""Schema migrations: ``sql/migrations/<dialect>/NNNN_name.sql``, applied in order.

Each database keeps a ``schema_version`` table; `taskgate migrate` and every start apply
what is missing, in one transaction per run.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available(dialect: str) -> list[Migration]:
    folder = resources.files("taskgate.storage").joinpath("sql", "migrations", dialect)
    found = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name[:-4], entry.read_text()))
    return sorted(found, key=lambda mig: mig.version)


def pending(dialect: str, current: int) -> list[Migration]:
    return [m for m in available(dialect) if m.version > current]


def latest(dialect: str) -> int:
    migs = available(dialect)
    return migs[-1].version if migs else 0


def statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (comments and blank lines dropped)."""
    result: list[str] = []
    buffer = ""
    for line in script.splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("--")):
            continue
        buffer += line + "\n"
        # a $$-quoted body (a PostgreSQL function) holds semicolons of its own
        if buffer.count("$$") % 2 == 0 and sqlite3.complete_statement(buffer):
            result.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        result.append(buffer.strip())
    return result
