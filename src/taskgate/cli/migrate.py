"""``taskgate migrate``: bring the task store's schema up to date."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from taskgate.cli import options
from taskgate.settings import Settings
from taskgate.storage import connect


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: list[str]
    version: int
    location: str
    """Where the store is, for people: an absolute file path, or the URL."""


def describe_database(url: str) -> str:
    """Where ``url`` keeps its data, as a person wants to read it."""
    connector = connect(url, apply_migrations=False)
    path = getattr(connector, "path", None)
    if isinstance(path, Path):
        return str(path.resolve())
    return url


async def migrate_database(settings: Settings) -> MigrationReport:
    """Apply the pending migrations of ``settings.database``."""
    connector = connect(settings.database, apply_migrations=False, synchronous=settings.synchronous)
    await connector.open()
    try:
        applied = await connector.migrate()
        version = await connector.schema_version()
    finally:
        await connector.close()
    return MigrationReport(applied, version, describe_database(settings.database))


@click.command()
@options.apply(options.DATABASE, options.CONFIG, options.SYNCHRONOUS)
def migrate(**flags: Any) -> int:
    """Apply pending schema migrations to the task store and print the schema version.

    `taskgate serve` and `taskgate worker` also do this when they start.
    """
    settings = options.settings_from(flags)
    report = asyncio.run(migrate_database(settings))
    if report.applied:
        for name in report.applied:
            click.echo(f"applied {name}")
    else:
        click.echo("already up to date")
    click.echo(f"schema version {report.version} ({report.location})")
    return 0
