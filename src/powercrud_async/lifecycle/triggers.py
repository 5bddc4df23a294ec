"""django-q2 schedule triggers: checked as its scheduler will read them, described in words, and
the next run of a trigger worked out (for resuming a paused schedule)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .. import broker
from ..exceptions import InvalidSchedule

if TYPE_CHECKING:
    from django_q.models import Schedule

MAX_MINUTES = 32767  # Schedule.minutes is a PositiveSmallIntegerField
#: Trigger types in words (django-q2's ``Schedule.TYPE`` codes).
EVERY = {
    "O": "once",
    "H": "every hour",
    "D": "every day",
    "W": "every week",
    "BW": "every 2 weeks",
    "M": "every month",
    "BM": "every 2 months",
    "Q": "every quarter",
    "Y": "every year",
}
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _schedule_types() -> Any:
    return broker.schedule_model().TYPE


def trigger_types() -> dict[str, str]:
    """``{code: label}`` of django-q2's schedule types."""
    return {code: str(label) for code, label in _schedule_types()}


def croniter_class() -> Any:
    try:
        from croniter import croniter
    except ImportError:
        return None
    return croniter


def _cron_field(value: str, unit: str) -> str | None:
    if value.isdigit():
        return value
    if value.startswith("*/") and value[2:].isdigit():
        return f"every {value[2:]} {unit}s"
    return None


def describe_cron(expression: str) -> str:
    """Common five-field expressions in words ("at 03:00 every day"); ``""`` for the rest."""
    fields = expression.split()
    if len(fields) != 5:
        return ""
    minute, hour, dom, month, dow = fields
    if (dom, month, dow) == ("*", "*", "*") and hour == "*":
        if minute == "*":
            return "every minute"
        step = _cron_field(minute, "minute")
        if step and not minute.isdigit():
            return step
        if minute.isdigit():
            return f"at minute {minute} of every hour"
        return ""
    if not (minute.isdigit() and hour.isdigit()):
        return ""
    at = f"at {int(hour):02d}:{int(minute):02d}"
    if month != "*":
        return ""
    if dom == "*" and dow == "*":
        return f"{at} every day"
    if dom == "*":
        if dow.isdigit() and int(dow) <= 7:
            return f"{at} every {DAYS[int(dow)]}"
        first, _, last = dow.partition("-")
        if first.isdigit() and last.isdigit() and int(last) <= 7:
            return f"{at} {DAYS[int(first)]} to {DAYS[int(last)]}"
        return ""
    if dow == "*" and dom.isdigit():
        return f"{at} on day {dom} of every month"
    return ""


def describe_trigger(schedule: Schedule) -> str:
    """The trigger in words: "every 15 minutes", "cron 0 3 * * * — at 03:00 every day"."""
    kind = schedule.schedule_type
    if kind == "I":
        minutes = schedule.minutes or 1
        return "every minute" if minutes == 1 else f"every {minutes} minutes"
    if kind == "C":
        words = describe_cron(schedule.cron or "")
        return f"cron {schedule.cron} — {words}" if words else f"cron {schedule.cron}"
    return EVERY.get(kind, kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """When a schedule runs, as ``django_q.tasks.schedule`` takes it (unchecked)."""

    schedule_type: Any
    minutes: Any = None
    cron: Any = None
    repeats: Any = -1
    next_run: Any = None


def clean_trigger(trigger: Trigger) -> dict[str, Any]:
    """The trigger fields, checked the way django-q2's scheduler will use them."""
    schedule_type, minutes, cron = trigger.schedule_type, trigger.minutes, trigger.cron
    repeats, next_run = trigger.repeats, trigger.next_run
    types = trigger_types()
    if schedule_type not in types:
        choices = ", ".join(f"{code!r} ({label})" for code, label in types.items())
        raise InvalidSchedule(f"schedule_type {schedule_type!r} is not one of {choices}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < -1:
        raise InvalidSchedule(
            f"repeats must be -1 (forever) or a number of runs from 0, got {repeats!r}."
        )
    if schedule_type == "I":
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 1 <= minutes <= MAX_MINUTES
        ):
            raise InvalidSchedule(
                f"An interval needs minutes between 1 and {MAX_MINUTES}, got {minutes!r}."
            )
    elif minutes is not None:
        raise InvalidSchedule(
            f"minutes only applies to the 'I' (Minutes) type, not {types[schedule_type]}."
        )
    if schedule_type == "C":
        cron = (cron or "").strip() if isinstance(cron, str) or cron is None else cron
        if not isinstance(cron, str) or not cron:
            raise InvalidSchedule("A cron schedule needs a cron expression such as '0 3 * * *'.")
        checker = croniter_class()
        if checker is None:
            raise InvalidSchedule(
                "Cron schedules need croniter: pip install 'django-powercrud-async[cron]'."
            )
        if len(cron.split()) != 5 or not checker.is_valid(cron):
            raise InvalidSchedule(
                f"{cron!r} is not a valid cron expression: five fields, minute hour day-of-month "
                "month day-of-week, e.g. '0 3 * * *' (03:00 every day)."
            )
    elif cron:
        raise InvalidSchedule(
            f"cron only applies to the 'C' (Cron) type, not {types[schedule_type]}."
        )
    else:
        cron = None
    if next_run is not None and (not isinstance(next_run, datetime) or timezone.is_naive(next_run)):
        raise InvalidSchedule(f"next_run must be an aware datetime, got {next_run!r}.")
    return {
        "schedule_type": schedule_type,
        "minutes": minutes if schedule_type == "I" else None,
        "cron": cron,
        "repeats": repeats,
    }


def cron_next(expression: str, after: datetime) -> datetime:
    """The next match of ``expression``, read in django-q2's time zone as its scheduler does."""
    found: datetime = croniter_class()(expression, broker.scheduler_time(after)).get_next(datetime)
    return found


def next_run_after(schedule: Schedule, planned: datetime | None, now: datetime) -> datetime:
    """The first run of the schedule's own trigger after ``now`` (``planned`` if still ahead).

    A one-off whose time passed while paused runs at once.
    """
    if planned is not None and planned > now:
        return planned
    kind = schedule.schedule_type
    if kind == "C":
        return cron_next(schedule.cron, now)
    if planned is None or kind == "O":
        return now
    fixed = {"I": timedelta(minutes=schedule.minutes or 1), "H": timedelta(hours=1)}.get(kind)
    if fixed is not None:
        steps = math.floor((now - planned) / fixed) + 1
        return planned + steps * fixed
    when = planned
    while when <= now:
        when = schedule.calculate_next_run(when)
    return when
