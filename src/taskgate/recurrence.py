"""When a recurring schedule runs: ISO 8601 repeating intervals and cron expressions.

Pure computation, no I/O: `parse_recurrence` reads a schedule's text once, and the
scheduler asks the result `next_after(now)` for each due schedule. Runs that fell due
while nothing was asking are skipped, not replayed: ``next_after`` answers with the first
run strictly after the moment it is given, never one before it.

ISO 8601 repeating intervals, as Pulp 2 writes them::

    R5/2026-01-01T00:00:00Z/PT1H    5 runs, hourly from the start
    R/2026-01-01T00:00:00Z/P1D      unbounded
    2026-01-01T00:00:00Z/P1D        unbounded (no R)
    PT1H, R3/PT10M                  starting when the schedule is created

Run k (from 0) is at ``start + k * duration``, each computed from the start rather than
from the run before, so calendar months do not drift: years and months are added to the
start's date with the day clamped to the month's length (Jan 31 + P1M = Feb 28 or 29,
Jan 31 + P2M = Mar 31), at the UTC offset the start was written with; the other parts
are exact lengths of time (a day is 24 hours). The start needs ``Z`` or ``±HH:MM``: a
time without an offset means different instants on different servers.

Cron expressions have five fields (minute hour day-of-month month day-of-week) or are
one of ``@yearly @annually @monthly @weekly @daily @midnight @hourly``; they are read and
iterated by ``cronsim``, which follows Debian's cron (Vixie cron), and evaluated in an
IANA time zone. cronsim also accepts ``L`` and ``LW`` as the day of month, and ``5L``
(last Friday) and ``MON#2`` (second Monday) as the day of week. Two rules from Debian's
cron are worth knowing:

- Day of month and day of week: when both fields are restricted, a day matches if
  *either* does (``0 0 13 * FRI`` runs on every 13th and on every Friday); when either
  field starts with ``*`` (``*``, ``*/2``), a day must match *both*.
- Daylight saving time: an expression whose minute and hour fields both name specific
  values (``30 2 * * *``, ``0 9,17 * * *``, ``@daily``) is matched against the local wall
  clock. A run that falls in the spring-forward gap happens at the first minute after
  the gap (02:30 Europe/Berlin on 2026-03-29 runs at 03:00 CEST, and merges with a run
  due at 03:00 anyway); a wall-clock time that the fall-back night repeats runs once, at
  its first occurrence (02:30 CEST on 2026-10-25, not 02:30 CET). An expression whose
  minute or hour field starts with ``*`` (``0 * * * *``, ``*/15 * * * *``, ``0 */3 * * *``,
  ``@hourly``) is matched against each real instant instead: the gap's times are simply
  absent, and the repeated hour's matches run twice, once per offset. Hourly schedules
  therefore keep one run per UTC hour through both changes.
"""

from __future__ import annotations

import calendar
import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import ClassVar, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError


class RecurrenceError(ValueError):
    """A schedule text that cannot be understood; the message says what is wrong, for the
    API user."""


_EXAMPLES = (
    "an ISO 8601 repeating interval (R5/2026-01-01T00:00:00Z/PT1H, R/2026-01-01T00:00:00Z/P1D,"
    " PT1H) or a cron expression of 5 fields ('30 2 * * *', '0 0 * * MON-FRI', @daily)"
)


# -- ISO 8601 repeating intervals --------------------------------------------------------

_INTERVAL_SHAPE = re.compile(r"[RP]|\d{4}-", re.IGNORECASE)

_START = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?\Z"
)

_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:(?P<t>T)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d{1,6})?)S)?)?\Z"
)

_AVERAGE_MONTH = timedelta(seconds=2_629_746)
"""A Gregorian month on average (146,097 days per 4,800 months): the first guess of how
many month-long steps fit in a span, corrected by a step or two."""


@dataclass(frozen=True, slots=True)
class IntervalRecurrence:
    """An ISO 8601 repeating interval: run k at ``start + k * (months, step)``, k < total_runs."""

    text: str
    start: datetime
    """Aware, at the offset it was written with: month arithmetic keeps that wall clock."""
    months: int
    """The calendar part of the duration (years count 12)."""
    step: timedelta
    """The exact part of the duration (weeks, days, hours, minutes, seconds)."""
    total_runs: int | None
    """Rn's n; None when unbounded."""

    kind: ClassVar[Literal["interval"]] = "interval"
    timezone: ClassVar[str] = "UTC"

    def first_run(self) -> datetime:
        """The start, in UTC."""
        return self.start.astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after ``moment``, in UTC; None when none is left."""
        k = self._runs_through(_aware(moment, "moment"))
        if self.total_runs is not None and k >= self.total_runs:
            return None
        run = self._run(k)
        return None if run is None else run.astimezone(UTC)

    def runs_through(self, moment: datetime) -> int:
        """How many runs fall at or before ``moment``: a bounded schedule whose next run
        is ``next_run`` has ``total_runs - runs_through(next_run) + 1`` runs to go."""
        k = self._runs_through(_aware(moment, "moment"))
        return k if self.total_runs is None else min(k, self.total_runs)

    def _run(self, k: int) -> datetime | None:
        """Run k, or None past the end of `datetime`'s range."""
        try:
            return _add_months(self.start, k * self.months) + k * self.step
        except (OverflowError, ValueError):
            return None

    def _runs_through(self, moment: datetime) -> int:
        """The number of runs at or before ``moment``, ignoring total_runs: arithmetic,
        so a schedule that has run for years costs no more than a new one."""
        if moment < self.start:
            return 0
        if not self.months:
            return (moment - self.start) // self.step + 1
        # Month lengths vary, so guess from the average and correct: the guess is off by
        # a few days at most, which is at most a step or two either way.
        k = max((moment - self.start) // (self.months * _AVERAGE_MONTH + self.step), 0)
        while k > 0 and _after(self._run(k - 1), moment):
            k -= 1
        while not _after(self._run(k), moment):
            k += 1
        return k


def _after(run: datetime | None, moment: datetime) -> bool:
    return run is None or run > moment  # None: past datetime's range, after everything


def _add_months(start: datetime, months: int) -> datetime:
    if not months:
        return start
    years, month0 = divmod(start.month - 1 + months, 12)
    year = start.year + years
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return start.replace(year=year, month=month0 + 1, day=day)


def _parse_interval(text: str, created_at: datetime) -> IntervalRecurrence:
    parts = text.split("/")
    total_runs: int | None = None
    if parts[0][:1] in ("R", "r"):
        total_runs = _parse_repeat(parts.pop(0), text)
        if not parts:
            raise RecurrenceError(f"{text!r}: a repeat count needs a duration after it (R5/PT1H)")
    if len(parts) > 2:
        raise RecurrenceError(
            f"{text!r}: expected [Rn/][start/]duration, as in R5/2026-01-01T00:00:00Z/PT1H"
        )
    if len(parts) == 2:
        if parts[1][:1] not in ("P", "p"):
            raise RecurrenceError(
                f"{text!r}: expected start/duration (an end time is not supported),"
                " as in 2026-01-01T00:00:00Z/P1D"
            )
        start = _parse_start(parts[0])
    else:
        start = created_at
    months, step = _parse_duration(parts[-1])
    return IntervalRecurrence(text, start, months, step, total_runs)


def _parse_repeat(part: str, text: str) -> int | None:
    count = part[1:]
    if not count:
        return None
    if not count.isascii() or not count.isdigit():
        raise RecurrenceError(
            f"{text!r}: the repeat count must be R followed by a whole number of runs"
            f" (R5), or R alone for no limit; got {part!r}"
        )
    if int(count) == 0:
        raise RecurrenceError(f"{text!r}: R0 means no runs at all; use R1 or more, or R")
    return int(count)


def _parse_start(part: str) -> datetime:
    m = _START.match(part.upper())
    if m is None:
        raise RecurrenceError(
            f"start time {part!r} is not of the form 2026-01-01T00:00:00Z"
            " (YYYY-MM-DDTHH:MM[:SS[.ffffff]] then Z or ±HH:MM)"
        )
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    if offset is None:
        raise RecurrenceError(
            f"start time {part!r} has no UTC offset: add Z for UTC or ±HH:MM"
            f" (e.g. {part}Z or {part}+02:00)"
        )
    try:
        if offset == "Z":
            zone: tzinfo = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours >= 24 or minutes >= 60:
                raise ValueError(f"offset {offset} out of range")
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError as e:
        raise RecurrenceError(f"start time {part!r} is not a valid date and time: {e}") from None


def _parse_duration(part: str) -> tuple[int, timedelta]:
    """(months, exact part) of an ISO 8601 duration."""
    upper = part.upper()
    m = _DURATION.match(upper)
    if m is None:
        raise RecurrenceError(f"duration {part!r}: {_duration_hint(upper)}")
    g = m.groupdict()
    if g["t"] and not (g["hours"] or g["minutes"] or g["seconds"]):
        raise RecurrenceError(
            f"duration {part!r}: T must be followed by hours, minutes or seconds (PT1H, PT5M)"
        )
    if not any(g[name] for name in ("years", "months", "weeks", "days", "t")):
        raise RecurrenceError(
            f"duration {part!r} has no parts: give at least one, as in PT1H, P1D or P1M"
        )
    months = int(g["years"] or 0) * 12 + int(g["months"] or 0)
    micros = int(Decimal((g["seconds"] or "0").replace(",", ".")) * 1_000_000)
    try:
        step = timedelta(
            weeks=int(g["weeks"] or 0),
            days=int(g["days"] or 0),
            hours=int(g["hours"] or 0),
            minutes=int(g["minutes"] or 0),
            microseconds=micros,
        )
        _add_months(datetime.min, months) + step  # raises when no start has a second run
    except (OverflowError, ValueError):
        raise RecurrenceError(f"duration {part!r} is too long") from None
    if not months and not step:
        raise RecurrenceError(f"duration {part!r} is zero: a schedule must move forward")
    return months, step


def _duration_hint(upper: str) -> str:
    """Why a duration does not parse, as precisely as a guess allows."""
    if not upper.startswith("P"):
        return "a duration starts with P, as in PT1H, P1D, P1M or P2W"
    date_part, _, time_part = upper.partition("T")
    if re.search(r"\d[HS]", date_part):
        return "hours, minutes and seconds go after a T (PT1H, not P1H)"
    if re.search(r"[.,]\d*[YMWDH]", upper) or re.search(r"[.,]\d*M", time_part):
        return "only the seconds may have a fraction (PT0.5S, PT1M30S)"
    if re.search(r"[.,]\d{7,}S", upper):
        return "seconds have at most 6 decimal places (microseconds)"
    return (
        "expected PnYnMnWnDTnHnMnS with the parts in that order, each at most once"
        " (PT1H, P1D, P1M, P2W, P1DT12H, PT0.5S)"
    )


# -- cron --------------------------------------------------------------------------------

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or LW, and a day that a month of the month field has"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, where 0 and 7 are Sunday"),
)


@dataclass(frozen=True, slots=True)
class CronRecurrence:
    """A cron expression in an IANA time zone; its first run is the first match after
    ``origin`` (when the schedule was created)."""

    text: str
    timezone: str
    origin: datetime
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _template: CronSim = field(init=False, repr=False, compare=False)
    """Parsed once; each `next_after` iterates a shallow copy of it."""

    kind: ClassVar[Literal["cron"]] = "cron"
    total_runs: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        _aware(self.origin, "origin")
        expression = _expand(self.text)
        zone = _zone(self.timezone)
        try:
            template = CronSim(expression, self.origin.astimezone(zone))
        except CronSimError as e:
            raise RecurrenceError(_cron_message(self.text, expression, str(e))) from None
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_template", template)
        if self.next_after(self.origin) is None:
            raise RecurrenceError(f"cron expression {self.text!r} matches no time in 50 years")

    def first_run(self) -> datetime | None:
        """The first match after ``origin``, in UTC."""
        return self.next_after(self.origin)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first match strictly after ``moment``, in UTC; None if cronsim finds none
        within 50 years."""
        moment = _aware(moment, "moment")
        it = copy.copy(self._template)
        # What CronSim.__init__ does with its start time, without parsing again. With DST
        # handling (fixup_tz) cronsim walks the naive wall clock, which the fall-back night
        # repeats: a match before `moment` can come first, hence the loop.
        local = moment.astimezone(self._zone).replace(microsecond=0)
        it.dt = local.replace(tzinfo=None) if it.fixup_tz is not None else local
        try:
            while True:
                run = next(it).astimezone(UTC)
                if run > moment:
                    return run
        except StopIteration:
            return None


def _expand(text: str) -> str:
    if text.startswith("@"):
        expression = _ALIASES.get(text.lower())
        if expression is None:
            raise RecurrenceError(
                f"unknown cron alias {text!r}; known: {', '.join(_ALIASES)}"
                + (" (@reboot has no meaning for a schedule)" if text.lower() == "@reboot" else "")
            )
        return expression
    fields = text.split()
    if len(fields) == 1:
        raise RecurrenceError(f"{text!r} is not a schedule: expected {_EXAMPLES}")
    if len(fields) != 5:
        raise RecurrenceError(
            f"cron expression {text!r} has {len(fields)} fields; it needs 5:"
            " minute hour day-of-month month day-of-week"
            + (" (a seconds field is not supported)" if len(fields) == 6 else "")
        )
    return text


def _cron_message(text: str, expression: str, error: str) -> str:
    """cronsim says "Bad minute"; say which value, and what the field allows."""
    fields = expression.split()
    for i, (name, allowed) in enumerate(_CRON_FIELDS):
        if error == f"Bad {name}":
            return (
                f"cron expression {text!r}: bad {name} field {fields[i]!r} (allowed: {allowed};"
                " with * for any, lists a,b, ranges a-b and steps a-b/n or */n)"
            )
    return f"cron expression {text!r}: {error}"


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC  # cronsim skips its DST handling for datetime.UTC only
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RecurrenceError(
            f"unknown time zone {name!r}: use an IANA name such as UTC, Europe/Berlin"
            " or America/New_York"
        ) from None


# -- both --------------------------------------------------------------------------------

Recurrence: TypeAlias = IntervalRecurrence | CronRecurrence
"""A parsed schedule. A closed union rather than a Protocol: callers that need what only
one kind has (an interval's `runs_through`) narrow it with ``isinstance``."""


def parse_recurrence(text: str, *, timezone: str | None = None, created_at: datetime) -> Recurrence:
    """Read a schedule's text.

    Text that starts with ``R``, ``P`` or a date (``2026-``) is an ISO 8601 repeating
    interval; anything else is a cron expression. ``timezone`` applies to cron only
    (default UTC); with an interval it must be absent or ``UTC``, since the interval's
    start carries its own offset. ``created_at`` (aware) is the start of an interval that
    names none, and the origin of a cron schedule's first run.
    """
    created_at = _aware(created_at, "created_at")
    text = text.strip()
    if not text:
        raise RecurrenceError(f"the schedule is empty; expected {_EXAMPLES}")
    if _INTERVAL_SHAPE.match(text):
        if timezone not in (None, "UTC"):
            raise RecurrenceError(
                f"a time zone ({timezone!r}) applies only to cron expressions; an interval's"
                " start carries its own offset (2026-01-01T00:00:00+02:00)"
            )
        return _parse_interval(text, created_at.astimezone(UTC))
    zone = "UTC" if timezone is None else timezone
    return CronRecurrence(" ".join(text.split()), zone, created_at.astimezone(UTC))


def _aware(moment: datetime, name: str) -> datetime:
    """Naive datetimes are the caller's bug, not the user's: a plain ValueError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
    return moment
