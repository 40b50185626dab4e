"""Process-wide logging for the taskgate commands: text or one JSON object per line.

Records logged about a task or an HTTP request carry its fields (`taskgate.logcontext`):
JSON gets ``task_id``, ``task_type``, ``tenant`` and ``request_id`` keys, text a suffix
``[task=... type=... tenant=... request=...]``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from taskgate.logcontext import ContextFilter, record_fields
from taskgate.settings import Settings

HANDLER_NAME = "taskgate"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d] %(message)s"
_SHORT = {"task_id": "task", "task_type": "type", "tenant": "tenant", "request_id": "request"}


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "pid": ..., "message": ...}``, plus
    ``task_id``, ``task_type``, ``tenant`` and ``request_id`` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(record_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, then ``[task=... type=... tenant=... request=...]`` when the record
    is about a task or a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = record_fields(record)
        if not fields:
            return text
        return f"{text} [{' '.join(f'{_SHORT[k]}={v}' for k, v in fields.items())}]"


def configure_logging(settings: Settings) -> None:
    """Send every log record at or above ``settings.log_level`` to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in root.handlers[:]:
        if old.get_name() == HANDLER_NAME:  # configured twice in one process (tests)
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
