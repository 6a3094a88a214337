"""Five-field cron expressions, always in UTC: which minutes match, and the next one after a time.

Fields are minute, hour, day of month, month, day of week (0 or 7 = Sunday), each ``*``,
a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; months
and days of the week may be named (``jan``, ``mon``). As in Vixie cron, when both day
fields are restricted a day matching either one matches. ``@hourly``, ``@daily``,
``@weekly``, ``@monthly`` and ``@yearly`` name the usual expressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

#: Named expressions and what they stand for.
NAMED = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
#: How far ahead ``next_after`` looks, in days: long enough for 29 February in any century.
SEARCH_DAYS = 366 * 9

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names numbered from ``lowest``) of each field, in order.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)


def _number(text: str, field: str, low: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + low
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{field}: {text!r} is not a number")
    return int(text)


def _expand(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, field, 1, ()) if step_text else 1
        if step < 1:
            raise ValueError(f"{field}: the step must be at least 1")
        if span == "*":
            start, end = low, high
        else:
            first, _, last = span.partition("-")
            start = _number(first, field, low, names)
            end = _number(last, field, low, names) if last else (high if step_text else start)
        if not low <= start <= end <= high:
            raise ValueError(f"{field}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def floor_minute(moment: datetime) -> datetime:
    """``moment`` in UTC without its seconds: the minute a cron expression speaks about."""
    if moment.tzinfo is None:
        raise ValueError("cron times must carry a time zone")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Cron:
    """A parsed expression; ``Cron.parse("*/5 * * * *")``."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    #: 0 = Sunday … 6 = Saturday (7 is folded into 0).
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """The expression parsed; ``ValueError`` saying which field is wrong."""
        text = NAMED.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) != len(_FIELDS):
            raise ValueError(f"{expression!r}: a cron expression has 5 fields, not {len(parts)}")
        sets = [
            _expand(part, name, low, high, names)
            for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
        ]
        minutes, hours, days, months, weekdays = sets
        cron = cls(
            expression=expression,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=frozenset(d % 7 for d in weekdays),
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )
        cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuses one that never matches
        return cron

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of ``moment`` (in UTC) is one this expression fires at."""
        minute = floor_minute(moment)
        return (
            minute.minute in self.minutes
            and minute.hour in self.hours
            and self.matches_day(minute.date())
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment``, in UTC."""
        start = floor_minute(moment) + timedelta(minutes=1)
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for offset in range(SEARCH_DAYS):
            day = start.date() + timedelta(days=offset)
            if not self.matches_day(day):
                continue
            for hour in hours:
                if offset == 0 and hour < start.hour:
                    continue
                for minute in minutes:
                    if offset == 0 and hour == start.hour and minute < start.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        raise ValueError(f"{self.expression!r} never matches")
