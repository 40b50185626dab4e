"""Where the client commands find the server and the API key.

Highest priority first: the ``--url`` / ``--api-key`` flags, the ``TASKGATE_URL`` /
``TASKGATE_API_KEY`` environment variables, then a TOML file with ``url`` and
``api_key``::

    # ~/.config/taskgate/client.toml (or --client-config PATH, or $TASKGATE_CLIENT_CONFIG)
    url = "https://tasks.example.org"
    api_key = "tgk_0123456789ab_..."

The default file is ``$XDG_CONFIG_HOME/taskgate/client.toml`` (``~/.config`` when the
variable is unset) and is read only if it exists; a file named by flag or variable must
exist. Without any of them the URL is http://127.0.0.1:8006 (what ``make run`` serves)
and no key is sent.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

DEFAULT_URL = "http://127.0.0.1:8006"
URL_ENV = "TASKGATE_URL"
KEY_ENV = "TASKGATE_API_KEY"
CONFIG_ENV = "TASKGATE_CLIENT_CONFIG"
CONFIG_KEYS = ("url", "api_key")


@dataclass(frozen=True, slots=True)
class Connection:
    """The server's base URL and the API key to send (None: none)."""

    url: str
    api_key: str | None


def default_config_path(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/taskgate/client.toml``, else ``~/.config/taskgate/client.toml``."""
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "taskgate" / "client.toml"


def read_config(path: Path) -> dict[str, str]:
    """``url`` and ``api_key`` from a TOML file; a clear `click.UsageError` otherwise."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.UsageError(f"client config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.UsageError(f"cannot read client config file {path}: {reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"client config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise click.UsageError(
            f"client config file {path}: unknown setting(s) {', '.join(unknown)}"
            f" (known: {', '.join(CONFIG_KEYS)})"
        )
    values: dict[str, str] = {}
    for key in CONFIG_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise click.UsageError(f"client config file {path}: {key} must be a non-empty string")
        values[key] = value
    return values


def check_url(url: str, source: str) -> str:
    """The URL without a trailing slash, if it is http(s)://host[:port][/path]."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.UsageError(
            f"{source}: {url!r} is not a server URL (like http://127.0.0.1:8006)"
        )
    if parts.query or parts.fragment:
        raise click.UsageError(f"{source}: {url!r} must not have a query or a fragment")
    return url.rstrip("/")


def resolve(
    *,
    url: str | None = None,
    api_key: str | None = None,
    config: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """The connection from the flags given (None: not given) over the other sources."""
    env = os.environ if env is None else env
    named = config or env.get(CONFIG_ENV) or None
    path = Path(named).expanduser() if named else default_config_path(env)
    from_file = read_config(path) if named or path.is_file() else {}

    if url:
        chosen, source = url, "--url"
    elif env.get(URL_ENV):
        chosen, source = env[URL_ENV], URL_ENV
    elif "url" in from_file:
        chosen, source = from_file["url"], f"url in {path}"
    else:
        chosen, source = DEFAULT_URL, "the default URL"
    key = api_key or env.get(KEY_ENV) or from_file.get("api_key") or None
    if key is not None and (not key.isprintable() or not key.strip()):
        raise click.UsageError("the API key must be printable text")
    return Connection(check_url(chosen, source), key.strip() if key else None)
