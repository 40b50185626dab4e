"""Process-wide logging for the taskgate commands: text or one JSON object per line."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from taskgate.settings import Settings

HANDLER_NAME = "taskgate"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d] %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "pid": ..., "message": ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(settings: Settings) -> None:
    """Send every log record at or above ``settings.log_level`` to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in root.handlers[:]:
        if old.get_name() == HANDLER_NAME:  # configured twice in one process (tests)
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
