"""Crontab expressions with crontab's meaning, built on APScheduler 3 triggers.

APScheduler's own ``CronTrigger.from_crontab`` differs from cron in two ways
that would move people's backups: it reads day-of-week ``0`` as Monday, and it
requires *both* day-of-month and day-of-week to match when both are
restricted, where cron fires on *either*. This module translates cron's
meaning into triggers that APScheduler evaluates correctly.

Accepted syntax:

* five fields ``minute hour day-of-month month day-of-week``;
* six fields, with a leading *seconds* field (``*/10 * * * * *``), mainly for
  tests and demos that must fire within seconds;
* ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``,
  ``@yearly`` (``@annually``);
* day-of-week 0 and 7 are Sunday; names (``sun``, ``Mon`` …) and month names
  (``jan`` …) are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_APS_DAY_NAMES = {0: "sun", 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat"}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_TICK = timedelta(microseconds=1)
_LOOKBACKS = (
    timedelta(minutes=2),
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=9),
    timedelta(days=63),
    timedelta(days=733),
    timedelta(days=366 * 8),
)
_FIELD_NAMES = ("second", "minute", "hour", "day", "month", "day_of_week")


class CrontabError(ValueError):
    """A crontab expression that cron would not accept."""


@dataclass(frozen=True)
class Crontab:
    """A parsed crontab expression, with the six fields in APScheduler's terms."""

    expression: str
    second: str
    minute: str
    hour: str
    day: str
    month: str
    days_of_week: frozenset[int] | None  # cron numbering, 0 = Sunday; None = any day
    weekday_starred: bool  # the field began with '*', which cron reads as unrestricted

    @property
    def day_restricted(self) -> bool:
        return not self.day.startswith("*")

    @property
    def weekday_restricted(self) -> bool:
        return not self.weekday_starred

    def trigger(self, timezone: tzinfo, jitter: int | None = None) -> BaseTrigger:
        """The APScheduler trigger that fires when cron would."""
        common = {
            "second": self.second,
            "minute": self.minute,
            "hour": self.hour,
            "month": self.month,
            "timezone": timezone,
        }
        weekdays = _aps_weekdays(self.days_of_week)
        if self.day_restricted and self.weekday_restricted:
            # cron: a day matching either field fires.
            return OrTrigger(
                [
                    CronTrigger(day=self.day, day_of_week="*", **common),
                    CronTrigger(day="*", day_of_week=weekdays, **common),
                ],
                jitter=jitter or None,
            )
        return CronTrigger(day=self.day, day_of_week=weekdays, jitter=jitter or None, **common)

    def next_fire_times(self, timezone: tzinfo, after: datetime, count: int) -> list[datetime]:
        trigger = self.trigger(timezone)
        times: list[datetime] = []
        previous: datetime | None = None
        moment = after
        while len(times) < count:
            fire = trigger.get_next_fire_time(previous, moment)
            if fire is None:
                break
            times.append(fire)
            previous = fire
            moment = fire
        return times

    def previous_fire_time(self, timezone: tzinfo, now: datetime) -> datetime | None:
        """The latest time at or before ``now`` when this schedule fired (no jitter)."""
        trigger = self.trigger(timezone)
        for lookback in _LOOKBACKS:
            start = now - lookback
            fire = trigger.get_next_fire_time(None, start)
            if fire is None or fire > now:
                continue
            latest = fire
            while True:
                following = trigger.get_next_fire_time(latest, latest + _TICK)
                if following is None or following > now:
                    return latest
                latest = following
        return None

    def describe(self) -> str:
        """A short description in words, for ``--check`` and ``--status``."""
        parts: list[str] = []
        if self.second == "0" and _is_number(self.minute) and _is_number(self.hour):
            parts.append(f"at {int(self.hour):02d}:{int(self.minute):02d}")
        elif self.second == "0" and _is_number(self.minute) and self.hour == "*":
            parts.append(f"every hour at minute {int(self.minute)}")
        else:
            time_fields = f"{self.minute} {self.hour}"
            if self.second != "0":
                time_fields = f"{self.second} {time_fields}"
            parts.append(f"at times matching '{time_fields}'")
        if not self.day_restricted and not self.weekday_restricted and self.month == "*":
            parts.append("every day")
        days: list[str] = []
        if self.day_restricted:
            days.append(f"on day-of-month {self.day}")
        if self.days_of_week is not None:
            names = ",".join(_DAY_NAMES[d].capitalize() for d in sorted(self.days_of_week))
            days.append(f"on {names}")
        if days:
            parts.append(" or ".join(days))
        if self.month != "*":
            parts.append(f"in month {self.month}")
        return " ".join(parts)


def parse_crontab(expression: str) -> Crontab:
    """Parse ``expression``; raise :class:`CrontabError` with the reason."""
    if not isinstance(expression, str) or not expression.strip():
        raise CrontabError("empty schedule; expected five crontab fields such as '0 6 * * *'")
    text = " ".join(expression.split())
    lowered = text.lower()
    if lowered.startswith("@"):
        if lowered not in _MACROS:
            known = ", ".join(sorted(_MACROS))
            raise CrontabError(f"unknown macro '{text}'; use one of {known}")
        fields = ["0", *_MACROS[lowered].split()]
    else:
        fields = text.split(" ")
        if len(fields) == 5:
            fields = ["0", *fields]
        elif len(fields) != 6:
            raise CrontabError(
                f"'{text}' has {len(fields)} fields; expected 5 (minute hour day-of-month "
                "month day-of-week), or 6 with a leading seconds field"
            )
    second, minute, hour, day, month, weekday = fields
    month = _replace_names(month, _MONTH_NAMES, start=1)
    days_of_week = _parse_weekdays(weekday)
    crontab = Crontab(
        expression=text,
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        days_of_week=days_of_week,
        weekday_starred=weekday.startswith("*"),
    )
    for name, value in zip(_FIELD_NAMES[:5], (second, minute, hour, day, month), strict=True):
        try:
            CronTrigger(**{name: value})
        except ValueError as exc:
            label = name.replace("_", "-")
            raise CrontabError(f"bad {label} field '{value}' in '{text}': {exc}") from None
    return crontab


def _is_number(field: str) -> bool:
    return field.isdigit()


def _replace_names(field: str, names: tuple[str, ...], start: int) -> str:
    def swap(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        if word in names:
            return str(names.index(word) + start)
        raise CrontabError(f"unknown name '{match.group(0)}' in field '{field}'")

    return re.sub(r"[A-Za-z]+", swap, field)


def _parse_weekdays(field: str) -> frozenset[int] | None:
    """Cron day-of-week to a set of days (0 = Sunday), or None for 'any'."""
    numeric = _replace_names(field, _DAY_NAMES, start=0)
    days: set[int] = set()
    for item in numeric.split(","):
        days.update(_expand_weekday_item(item, field))
    return None if days == set(range(7)) else frozenset(days)


def _expand_weekday_item(item: str, field: str) -> set[int]:
    match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", item)
    if not match:
        raise CrontabError(f"bad day-of-week field '{field}'")
    low_text, high_text, step_text = match.groups()
    if low_text == "*":
        if high_text is not None:
            raise CrontabError(f"bad day-of-week field '{field}'")
        low, high = 0, 6
    else:
        low = int(low_text)
        high = int(high_text) if high_text is not None else (7 if step_text else low)
        if step_text and high_text is None:
            high = 7
    step = int(step_text) if step_text else 1
    if not (0 <= low <= 7 and 0 <= high <= 7) or low > high or step < 1:
        raise CrontabError(
            f"bad day-of-week field '{field}': days run from 0 to 7 (0 and 7 are Sunday)"
        )
    return {day % 7 for day in range(low, high + 1, step)}


def _aps_weekdays(days: frozenset[int] | None) -> str:
    if days is None:
        return "*"
    return ",".join(_APS_DAY_NAMES[d] for d in sorted(days))
