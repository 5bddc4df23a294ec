"""Recurring jobs on django-q2's ``Schedule`` that run through the manager.

A schedule made by ``AsyncManager.schedule_async_task`` stores ``run_scheduled`` (below) as its
``func`` and what to launch as its keyword arguments. When django-q2's scheduler (inside the
qcluster) finds it due, ``run_scheduled`` launches the real job with ``launch_async_task``: locks,
registry, progress, lifecycle records and the schedule's manager class. A run whose objects are
locked by another task does not run: it is recorded as a cancelled job naming the holder, and the
schedule stays for its next time.

django-q2 has no paused state. Pausing sets ``repeats`` to 0 (its scheduler skips such rows) and
keeps the exact ``repeats`` and ``next_run`` in ``ScheduleState``; resuming puts them back, the
trigger itself (type, minutes, cron) is never touched.

The dotted path of ``run_scheduled`` is stored in ``Schedule`` rows: it must never move.
"""

from __future__ import annotations

import ast
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .callables import resolve_func
from .conflicts import normalize_conflict_ids, to_json
from .exceptions import ConflictError, InvalidSchedule, InvalidTaskName, UnknownSchedule
from .models import ScheduleState
from .statuses import TaskStatus
from .stores import get_store

if TYPE_CHECKING:
    from django_q.models import Schedule

    from .async_manager import AsyncManager

__all__ = [
    "ENTRY_POINT", "RunOutcome", "create_schedule", "describe_trigger", "pause_schedule",
    "remove_schedule", "resume_schedule", "run_schedule_now", "run_scheduled", "update_schedule",
]

ENTRY_POINT = "powercrud_async.scheduling.run_scheduled"
NAME_MAX_LENGTH = 100  # Schedule.name
MAX_MINUTES = 32767  # Schedule.minutes is a PositiveSmallIntegerField
LAUNCHED, BLOCKED, ERROR = "launched", "blocked", "error"
#: django-q2's scheduler passes each run's due time under this keyword (``intended_date_kwarg``).
DUE_KWARG = "scheduled_for"

#: Trigger types in words (django-q2's ``Schedule.TYPE`` codes).
EVERY = {
    "O": "once", "H": "every hour", "D": "every day", "W": "every week", "BW": "every 2 weeks",
    "M": "every month", "BM": "every 2 months", "Q": "every quarter", "Y": "every year",
}
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _schedule_model() -> type[Schedule]:
    from django_q.models import Schedule

    return Schedule


def trigger_types() -> dict[str, str]:
    """``{code: label}`` of django-q2's schedule types."""
    return {code: str(label) for code, label in _schedule_model().TYPE}


def croniter_class() -> Any:
    try:
        from croniter import croniter
    except ImportError:
        return None
    return croniter


# -- describing --------------------------------------------------------------------------------
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


# -- validating ----------------------------------------------------------------------------------
def _is_literal(value: Any) -> bool:
    """django-q2's scheduler reads a schedule's arguments back with ``ast.literal_eval``."""
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def clean_name(name: Any, *, exclude_pk: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidSchedule("A schedule needs a name (a non-empty string).")
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidSchedule(f"The name is longer than {NAME_MAX_LENGTH} characters.")
    taken = _schedule_model().objects.filter(name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise InvalidSchedule(f"A schedule named {name!r} already exists; choose another name.")
    return name


def clean_trigger(schedule_type: Any, minutes: Any, cron: Any, repeats: Any, next_run: Any) -> dict[str, Any]:
    """The trigger fields, checked the way django-q2's scheduler will use them."""
    types = trigger_types()
    if schedule_type not in types:
        choices = ", ".join(f"{code!r} ({label})" for code, label in types.items())
        raise InvalidSchedule(f"schedule_type {schedule_type!r} is not one of {choices}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < -1:
        raise InvalidSchedule(f"repeats must be -1 (forever) or a number of runs from 0, got {repeats!r}.")
    if schedule_type == "I":
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
            raise InvalidSchedule(
                f"An interval needs minutes between 1 and {MAX_MINUTES}, got {minutes!r}."
            )
    elif minutes is not None:
        raise InvalidSchedule(f"minutes only applies to the 'I' (Minutes) type, not {types[schedule_type]}.")
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
        raise InvalidSchedule(f"cron only applies to the 'C' (Cron) type, not {types[schedule_type]}.")
    else:
        cron = None
    if next_run is not None and (not isinstance(next_run, datetime) or timezone.is_naive(next_run)):
        raise InvalidSchedule(f"next_run must be an aware datetime, got {next_run!r}.")
    return {"schedule_type": schedule_type, "minutes": minutes if schedule_type == "I" else None,
            "cron": cron, "repeats": repeats}


def clean_manager(manager: AsyncManager, manager_class: Any) -> tuple[str, dict[str, Any] | None]:
    """The manager path the runs resolve, checked now so a typo fails here, not at 03:00."""
    from .async_manager import AsyncManager

    if manager_class is None:
        path, config = manager.class_path(), manager.config or None
    elif isinstance(manager_class, type) and issubclass(manager_class, AsyncManager):
        path, config = manager_class.class_path(), None
    elif isinstance(manager_class, str):
        try:
            found = import_string(manager_class)
        except ImportError as exc:
            raise InvalidSchedule(f"manager_class {manager_class!r} cannot be imported.") from exc
        if not (isinstance(found, type) and issubclass(found, AsyncManager)):
            raise InvalidSchedule(f"manager_class {manager_class!r} is not an AsyncManager subclass.")
        path, config = manager_class, None
    else:
        raise InvalidSchedule(f"manager_class must be a dotted path or a class, got {manager_class!r}.")
    if config is not None and not _is_literal(config):
        raise InvalidSchedule("The manager's config must hold only literals to be stored in a schedule.")
    return path, config


def clean_call(args: Sequence[Any], kwargs: Mapping[str, Any], affected_objects: Any) -> None:
    for what, value in (("args", list(args)), ("kwargs", dict(kwargs)), ("affected_objects", affected_objects)):
        if not _is_literal(value):
            raise InvalidSchedule(
                f"Scheduled {what} must be Python literals (numbers, strings, lists, dicts, ...): "
                "django-q2 stores them as text."
            )


def user_pk(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


# -- creating and editing -----------------------------------------------------------------------
def _store_spec(schedule: Schedule, spec: dict[str, Any]) -> None:
    # ack_failure: a failed run is reported once, never redelivered by the broker.
    schedule.kwargs = repr({"spec": spec, "q_options": {"ack_failure": True}})


def create_schedule(
    manager: AsyncManager,
    func: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: Any,
    schedule_type: Any,
    minutes: Any = None,
    cron: Any = None,
    repeats: Any = -1,
    next_run: Any = None,
    conflict_ids: Any = None,
    user: Any = None,
    affected_objects: Any = None,
    manager_class: Any = None,
) -> Schedule:
    """See ``AsyncManager.schedule_async_task``. Everything is checked before a row is written."""
    name = clean_name(name)
    func_path, _ = resolve_func(func)
    trigger = clean_trigger(schedule_type, minutes, cron, repeats, next_run)
    normalized = to_json(normalize_conflict_ids(conflict_ids))
    clean_call(args, kwargs, affected_objects)
    manager_path, manager_config = clean_manager(manager, manager_class)
    spec = {
        "func": func_path, "args": list(args), "kwargs": dict(kwargs), "conflict_ids": normalized,
        "affected_objects": affected_objects, "user": user_pk(user),
        "manager_class": manager_path, "manager_config": manager_config,
    }
    Schedule = _schedule_model()
    schedule = Schedule(name=name, func=ENTRY_POINT, next_run=next_run or timezone.now(),
                        intended_date_kwarg=DUE_KWARG, **trigger)
    with transaction.atomic(using=router.db_for_write(Schedule)):
        _store_spec(schedule, spec)
        _full_clean(schedule)
        schedule.save()  # a cron schedule computes its first next_run here
        spec["schedule"] = schedule.pk
        _store_spec(schedule, spec)
        schedule.save(update_fields=["kwargs"])
    return schedule


def _full_clean(schedule: Schedule) -> None:
    try:
        schedule.full_clean(exclude=["kwargs", "args"])
    except ValidationError as exc:
        raise InvalidSchedule("; ".join(exc.messages)) from exc


def is_ours(schedule: Schedule) -> bool:
    return bool(schedule.func == ENTRY_POINT)


def spec_of(schedule: Schedule) -> dict[str, Any]:
    """What a run launches: our stored spec, or a plain schedule's own func and arguments."""
    args, kwargs = parse_arguments(schedule)
    if is_ours(schedule):
        spec = kwargs.get("spec")
        if not isinstance(spec, dict):
            raise InvalidSchedule(f"Schedule {schedule.pk} lost what it should launch.")
        return spec
    kwargs.pop("q_options", None)
    return {"func": schedule.func, "args": list(args), "kwargs": kwargs, "conflict_ids": {},
            "affected_objects": None, "user": None, "manager_class": None, "manager_config": None}


def parse_arguments(schedule: Schedule) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A schedule's args and kwargs, read as django-q2's scheduler reads them."""
    kwargs: dict[str, Any] = {}
    text = (schedule.kwargs or "").strip()
    if text:
        try:
            found = ast.literal_eval(text)
            kwargs = dict(found) if isinstance(found, dict) else {}
        except (SyntaxError, ValueError):
            try:
                call = ast.parse(f"f({text})").body[0].value  # type: ignore[attr-defined]
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            except (SyntaxError, ValueError, AttributeError):
                kwargs = {}
    args: Any = ()
    if (schedule.args or "").strip():
        try:
            args = ast.literal_eval(schedule.args)
        except (SyntaxError, ValueError):
            args = ()
        if not isinstance(args, tuple):
            args = (args,)
    return tuple(args), kwargs


def update_schedule(pk: Any, *, name: Any, schedule_type: Any, minutes: Any = None, cron: Any = None,
                    repeats: Any = -1, next_run: Any = None, func: Any = None,
                    args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                    conflict_ids: Any = None) -> Schedule:
    """Change a schedule's name and trigger (and, for ours, what it launches).

    A paused schedule stays paused: the new ``repeats`` and ``next_run`` are what resuming restores.
    """
    Schedule = _schedule_model()
    using = router.db_for_write(Schedule)
    with transaction.atomic(using=using):
        schedule = _locked(pk)
        name = clean_name(name, exclude_pk=schedule.pk)
        trigger = clean_trigger(schedule_type, minutes, cron, repeats, next_run)
        if is_ours(schedule):
            spec = spec_of(schedule)
            if func is not None:
                spec["func"], _ = resolve_func(func)
            if args is not None or kwargs is not None:
                new_args = list(spec["args"] if args is None else args)
                new_kwargs = dict(spec["kwargs"] if kwargs is None else kwargs)
                clean_call(new_args, new_kwargs, spec.get("affected_objects"))
                spec["args"], spec["kwargs"] = new_args, new_kwargs
            if conflict_ids is not None:
                spec["conflict_ids"] = to_json(normalize_conflict_ids(conflict_ids))
            _store_spec(schedule, spec)
        elif func is not None:
            schedule.func, _ = resolve_func(func)
        retimed = trigger["schedule_type"] != schedule.schedule_type or trigger["cron"] != schedule.cron
        schedule.name = name
        schedule.schedule_type = trigger["schedule_type"]
        schedule.minutes = trigger["minutes"]
        schedule.cron = trigger["cron"]
        when = next_run
        if trigger["schedule_type"] == "C" and (retimed or when is None):
            when = cron_next(schedule.cron, timezone.now())
        state = ScheduleState.objects.using(using).filter(schedule_id=schedule.pk, paused_at__isnull=False).first()
        if state is not None:
            state.saved_repeats = trigger["repeats"]
            if when is not None:
                state.saved_next_run = when
            state.save(update_fields=["saved_repeats", "saved_next_run"])
        else:
            schedule.repeats = trigger["repeats"]
            if when is not None:
                schedule.next_run = when
        _full_clean(schedule)
        schedule.save()
    return schedule


# -- running ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What one run did: launched job ``task``, or was ``blocked`` by ``holders``."""

    task: str
    outcome: str
    message: str = ""
    holders: tuple[str, ...] = ()


def run_scheduled(spec: dict[str, Any], scheduled_for: str | None = None) -> dict[str, Any]:
    """What django-q2's scheduler runs (its dotted path is stored in ``Schedule`` rows).

    Launches the schedule's job through its manager and returns what happened. A lock held by
    another task is an outcome, not an error: the schedule simply runs again next time. The job's
    key comes from the schedule and its due time, so a redelivered run finds its job already
    registered and launches nothing.
    """
    pk = spec.get("schedule")
    if pk is not None and not _schedule_model().objects.filter(pk=pk).exists():
        return {"task": "", "outcome": "removed", "message": f"Schedule {pk} was removed before this run."}
    user = None
    if spec.get("user"):
        user = get_user_model()._default_manager.filter(pk=spec["user"]).first()
    key = run_key(pk, scheduled_for)
    found = launch_spec(spec, schedule_pk=pk, user=user, manual=False, key=key)
    return {"task": found.task, "outcome": found.outcome, "message": found.message}


def run_key(schedule_pk: Any, scheduled_for: str | None) -> str | None:
    """``schedule-<id>-<due time, UTC>``: one key per scheduled run."""
    if schedule_pk is None or not scheduled_for:
        return None
    try:
        due = datetime.fromisoformat(scheduled_for)
    except ValueError:
        return None
    if timezone.is_aware(due):
        due = due.astimezone(dt_timezone.utc)
    return f"schedule-{schedule_pk}-{due:%Y%m%dT%H%M%S}Z"


def launch_spec(spec: Mapping[str, Any], *, schedule_pk: Any, user: Any, manual: bool,
                key: str | None = None) -> RunOutcome:
    """Launch one run through the manager and note it on the schedule."""
    from .async_manager import AsyncManager

    manager = AsyncManager.resolve_manager(spec.get("manager_class") or None, spec.get("manager_config"))
    if key is not None and get_store().get(key) is not None:
        return RunOutcome(task=key, outcome=LAUNCHED, message="Already launched")
    key = key or str(uuid.uuid4())
    name = _schedule_name(schedule_pk)
    try:
        manager.launch_async_task(
            spec["func"], *spec.get("args", []), task_key=key, task_kwargs=spec.get("kwargs") or {},
            conflict_ids=spec.get("conflict_ids") or None, user=user,
            affected_objects=spec.get("affected_objects"), task_label=name,
        )
    except ConflictError as exc:
        how = "Run now" if manual else "Scheduled run"
        message = f"{how} of {name!r} skipped: objects locked by task {', '.join(exc.holders)}."
        record_blocked(manager, key, spec, user=user, message=message, label=name)
        note_run(schedule_pk, key, BLOCKED, message)
        return RunOutcome(task=key, outcome=BLOCKED, message=message, holders=tuple(exc.holders))
    except InvalidTaskName:
        if get_store().get(key) is None:
            raise
        return RunOutcome(task=key, outcome=LAUNCHED, message="Already launched")  # a racing redelivery
    except Exception as exc:
        note_run(schedule_pk, "", ERROR, f"{type(exc).__name__}: {exc}")
        raise
    note_run(schedule_pk, key, LAUNCHED, "Run now" if manual else "")
    return RunOutcome(task=key, outcome=LAUNCHED)


def record_blocked(manager: AsyncManager, key: str, spec: Mapping[str, Any], *, user: Any, message: str,
                   label: str = "") -> None:
    """A run that did not run still gets a record and a timeline, naming the lock holder."""
    now = timezone.now()
    manager.emit(
        "create", key, status=TaskStatus.PENDING, message="Scheduled run", user=user, label=label,
        affected_objects=spec.get("affected_objects"), task_args=list(spec.get("args", [])),
        task_kwargs=dict(spec.get("kwargs") or {}), func_path=spec["func"],
        conflict_ids=spec.get("conflict_ids") or None, created_at=now,
    )
    manager.emit("cancel", key, status=TaskStatus.CANCELLED, message=message, result=message,
                 reason=message, cancelled_at=now)


def _schedule_name(pk: Any) -> str:
    if pk is None:
        return "schedule"
    name = _schedule_model().objects.filter(pk=pk).values_list("name", flat=True).first()
    return str(name or f"schedule {pk}")


def note_run(schedule_pk: Any, task: str, outcome: str, message: str) -> None:
    """Remember the last run on the schedule (unless the schedule was removed meanwhile)."""
    if schedule_pk is None or not _schedule_model().objects.filter(pk=schedule_pk).exists():
        return
    values = {"last_task": task, "last_outcome": outcome, "last_message": message[:10000],
              "last_run_at": timezone.now()}
    try:
        ScheduleState.objects.update_or_create(schedule_id=schedule_pk, defaults=values)
    except IntegrityError:
        pass  # removed between the check and the write


def run_schedule_now(pk: Any, *, user: Any = None) -> RunOutcome:
    """Run once now through the manager; the regular ``next_run`` and ``repeats`` stay as they are."""
    schedule = _get(pk)
    return launch_spec(spec_of(schedule), schedule_pk=schedule.pk, user=user, manual=True)


# -- pausing ----------------------------------------------------------------------------------------
def _get(pk: Any) -> Schedule:
    schedule = _schedule_model().objects.filter(pk=pk).first() if str(pk).isdigit() else None
    if schedule is None:
        raise UnknownSchedule(f"No schedule with id {pk!r}.")
    return schedule


def _locked(pk: Any) -> Schedule:
    Schedule = _schedule_model()
    schedule = Schedule.objects.select_for_update().filter(pk=pk).first() if str(pk).isdigit() else None
    if schedule is None:
        raise UnknownSchedule(f"No schedule with id {pk!r}.")
    return schedule


def is_paused(schedule: Schedule) -> bool:
    state = getattr(schedule, "powercrud_state", None)
    return bool(state is not None and state.paused_at is not None)


def pause_schedule(pk: Any, *, user: Any = None) -> bool:
    """Stop a schedule from running, keeping its ``repeats`` and ``next_run`` to resume with.

    Returns False if it was already paused. Raises ``InvalidSchedule`` for a finished schedule.
    """
    Schedule = _schedule_model()
    with transaction.atomic(using=router.db_for_write(Schedule)):
        schedule = _locked(pk)
        state, _ = ScheduleState.objects.get_or_create(schedule_id=schedule.pk)
        if state.paused_at is not None:
            return False
        if schedule.repeats == 0:
            raise InvalidSchedule(f"Schedule {schedule.name or schedule.pk} has no runs left; nothing to pause.")
        state.paused_at = timezone.now()
        state.paused_by = str(user.get_username())[:255] if user_pk(user) else ""
        state.saved_repeats = schedule.repeats
        state.saved_next_run = schedule.next_run
        state.save()
        schedule.repeats = 0  # django-q2's scheduler skips rows with no repeats left
        schedule.save(update_fields=["repeats"])
    return True


def cron_next(expression: str, after: datetime) -> datetime:
    """The next match of ``expression``, read in django-q2's time zone as its scheduler does."""
    from django_q.utils import localtime

    found: datetime = croniter_class()(expression, localtime(after)).get_next(datetime)
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


def resume_schedule(pk: Any, *, now: datetime | None = None) -> bool:
    """Put back the exact ``repeats`` and the next run of the unchanged trigger.

    Returns False if the schedule was not paused.
    """
    Schedule = _schedule_model()
    now = now or timezone.now()
    with transaction.atomic(using=router.db_for_write(Schedule)):
        schedule = _locked(pk)
        state = ScheduleState.objects.filter(schedule_id=schedule.pk, paused_at__isnull=False).first()
        if state is None:
            return False
        schedule.repeats = state.saved_repeats if state.saved_repeats is not None else -1
        schedule.next_run = next_run_after(schedule, state.saved_next_run, now)
        schedule.save(update_fields=["repeats", "next_run"])
        state.paused_at, state.paused_by = None, ""
        state.saved_repeats = state.saved_next_run = None
        state.save()
    return True


def remove_schedule(pk: Any) -> None:
    """Delete the schedule (its state goes with it). Jobs it launched are not touched."""
    _get(pk).delete()
