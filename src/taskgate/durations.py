"""Durations as people write them: ``90``, ``1.5``, ``250ms``, ``90s``, ``5m``, ``2h``,
``7d``; and ``never`` where a setting allows it."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
NEVER = ("never", "inf", "infinity")


def parse_duration(text: str, *, never: bool = False) -> float:
    """Seconds in ``text``; with ``never``, ``never`` is `math.inf`. ValueError if it is
    not a duration."""
    if never and text.strip().lower() in NEVER:
        return math.inf
    match = _DURATION.match(text)
    if match is None:
        example = "30, 30s, 5m, 2h, 7d" + (" or never" if never else "")
        raise ValueError(f"{text!r} is not a duration (like {example})")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is too long")
    return seconds
