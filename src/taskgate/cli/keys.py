"""``taskgate keys create|list|revoke``: API keys, managed on the task store directly.

These commands open the store (``--db``, or the ``database`` setting) as ``serve`` does,
so they need no running server and no key of their own: whoever may read the database
file may manage keys. A revocation is announced to every server on the same store,
which refuses the key from its next request on.

    KEY=$(taskgate keys create --tenant acme --user alice --user-id 42 --role write)
    curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8006/v1/tasks
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import click
import orjson

from taskgate.auth.keys import ROLES, ApiKey, NewKey
from taskgate.auth.service import KeyService
from taskgate.cli import options
from taskgate.errors import ConfigurationError
from taskgate.settings import Settings
from taskgate.storage import connect
from taskgate.storage.connector import Connector

T = TypeVar("T")

_DURATION = re.compile(r"(\d+)\s*([smhdw])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NO_EXPIRY = ("never", "none", "")


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` from now; an ISO 8601 date (midnight
    UTC) or time (UTC unless it says otherwise); ``never``. `click.BadParameter` else."""
    text = text.strip()
    if text.lower() in NO_EXPIRY:
        return None
    now = now or datetime.now(UTC)
    m = _DURATION.match(text.lower())
    if m is not None:
        amount = int(m.group(1))
        if amount <= 0:
            raise click.BadParameter("a duration must be more than 0", param_hint="--expires")
        return now + timedelta(seconds=amount * _UNITS[m.group(2)])
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (30d, 12h, 90m, 2w) nor an ISO 8601 time",
            param_hint="--expires",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def _with_keys(settings: Settings, use: Callable[[KeyService], Awaitable[T]]) -> T:
    """Run ``use`` with a `KeyService` on the store; closing the store sends any
    notification (a revocation) before this returns."""
    connector = connect(settings.database, synchronous=settings.synchronous)
    await connector.open()
    keys = KeyService(connector)
    try:
        return await use(keys)
    finally:
        keys.close()
        await connector.close()


def _run(flags: dict[str, Any], use: Callable[[KeyService], Awaitable[T]]) -> T:
    settings = options.settings_from(flags)
    if settings.database.lower().startswith("memory:"):
        raise ConfigurationError(
            "a memory:// store lives inside one process: keys made here would vanish;"
            " give the server's database with --db"
        )
    return asyncio.run(_with_keys(settings, use))


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def describe(key: ApiKey) -> str:
    """One line about a key, for people."""
    user = key.user if key.user_id is None else f"{key.user} (id {key.user_id})"
    return (
        f"API key {key.id}: tenant {key.tenant}, user {user}, role {key.role},"
        f" expires {_when(key.expires_at)}"
    )


def _json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


STORE = options.apply(options.DATABASE, options.CONFIG)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


@click.group()
def keys() -> None:
    """Make, list and revoke API keys (on the task store; no server needed).

    A key is bound to a tenant, a user and a role: read (see its tenant's tasks), write
    (also submit, cancel, acknowledge, delete them) or admin (every tenant). Clients send
    it as 'Authorization: Bearer <key>'. Only a hash of it is stored.
    """


@keys.command()
@click.option(
    "--tenant", default="default", show_default=True, help="The tenant whose tasks it sees."
)
@click.option("--user", required=True, help="The user it acts as (recorded on their tasks).")
@click.option("--user-id", type=click.IntRange(min=0), help="The user's numeric id, if any.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What it may do.")
@click.option(
    "--expires",
    metavar="WHEN",
    help="When it stops working: 30d, 12h, 90m, 2w, an ISO 8601 date or time (UTC unless"
    " given), or never [default: never].",
)
@click.option("--description", metavar="TEXT", help="A note for `keys list`.")
@JSON
@STORE
def create(
    tenant: str,
    user: str,
    user_id: int | None,
    role: str,
    expires: str | None,
    description: str | None,
    as_json: bool,
    **flags: Any,
) -> int:
    """Make an API key and print it, once: it cannot be shown again.

    The key alone goes to stdout (KEY=$(taskgate keys create ...)); what it is bound to
    goes to stderr.
    """
    expires_at = None if expires is None else parse_expiry(expires)

    async def make(service: KeyService) -> NewKey:
        return await service.create(
            tenant=tenant,
            user=user,
            user_id=user_id,
            role=role,
            expires_at=expires_at,
            description=description,
        )

    new = _run(flags, make)
    if as_json:
        _json({"key": new.token, **new.key.to_dict(new.key.created_at.timestamp())})
        return 0
    click.echo(new.token)
    click.echo(
        f"Created {describe(new.key)}.\n"
        "This is the only time the key is shown: store it now. Send it as\n"
        "  Authorization: Bearer <key>",
        err=True,
    )
    return 0


@keys.command(name="list")
@click.option("--tenant", help="Only this tenant's keys.")
@JSON
@STORE
def list_keys(tenant: str | None, as_json: bool, **flags: Any) -> int:
    """List API keys, oldest first, with their status (active, expired, revoked).

    Keys themselves cannot be shown: only their ids, which `keys revoke` takes.
    """

    async def read(service: KeyService) -> list[ApiKey]:
        return await service.list(tenant=tenant)

    found = _run(flags, read)
    now = datetime.now(UTC).timestamp()
    if as_json:
        _json([k.to_dict(now) for k in found])
        return 0
    if not found:
        click.echo(
            "no API keys" + (f" for tenant {tenant}" if tenant else "") + "; make one with:\n"
            "  taskgate keys create --tenant default --user NAME --role write",
            err=True,
        )
        return 0
    header = ("ID", "TENANT", "USER", "USER ID", "ROLE", "STATUS", "CREATED", "EXPIRES", "NOTE")
    rows = [
        (
            k.id,
            k.tenant,
            k.user,
            "-" if k.user_id is None else str(k.user_id),
            k.role,
            k.status(now),
            _when(k.created_at),
            _when(k.expires_at),
            (k.description or "").replace("\n", " "),
        )
        for k in found
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    return 0


@keys.command()
@click.argument("key_id", metavar="ID")
@JSON
@STORE
def revoke(key_id: str, as_json: bool, **flags: Any) -> int:
    """Revoke the API key ID (its 12-character id, or the whole key).

    Every server on this store refuses it from its next request on.
    """

    async def drop(service: KeyService) -> ApiKey:
        return await service.revoke(key_id)

    key = _run(flags, drop)
    if as_json:
        _json(key.to_dict(datetime.now(UTC).timestamp()))
    else:
        click.echo(f"Revoked {describe(key)}.")
    return 0


# -- serve's first key ------------------------------------------------------------------

FIRST_TENANT = "default"
FIRST_USER = "admin"
FIRST_USER_ID = 1


async def first_key(connector: Connector) -> NewKey | None:
    """An admin key (tenant ``default``, user ``admin``, user id 1) when the store has no
    key at all, else None. ``serve`` prints it once, so a new user can call the API."""
    service = KeyService(connector)
    try:
        return await service.create_first(
            tenant=FIRST_TENANT,
            user=FIRST_USER,
            user_id=FIRST_USER_ID,
            role="admin",
            description="made by taskgate serve on its first start",
        )
    finally:
        service.close()


def create_command(settings: Settings) -> str:
    """The command that makes a key on the store ``settings`` names."""
    return (
        f"taskgate keys create --db {settings.database} --tenant default --user NAME --role write"
    )


__all__ = ["create_command", "first_key", "keys", "parse_expiry"]
