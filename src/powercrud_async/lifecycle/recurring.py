"""Recurring jobs on django-q2's ``Schedule`` that run through the manager.

A schedule made by ``AsyncManager.schedule_async_task`` stores ``schedules.run_scheduled`` as its
``func`` and what to launch as its keyword arguments. When django-q2's scheduler (inside the
qcluster) finds it due, ``run_scheduled`` launches the real job with ``launch_async_task``: locks,
registry, progress, lifecycle records and the schedule's manager class. A run whose objects are
locked by another task does not run: it is recorded as a cancelled job naming the holder, and the
schedule stays for its next time.

django-q2 has no paused state. Pausing sets ``repeats`` to 0 (its scheduler skips such rows) and
keeps the exact ``repeats`` and ``next_run`` in ``ScheduleState``; resuming puts them back, the
trigger itself (type, minutes, cron) is never touched.

This module creates, edits, pauses, resumes and removes such schedules; ``schedules`` runs them.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.utils import timezone

from .. import broker
from ..callables import resolve_func
from ..conflicts import normalize_conflict_ids, to_json
from ..exceptions import InvalidManagerClass, InvalidSchedule, UnknownSchedule
from ..models import ScheduleState
from .protocol import Manager
from .triggers import Trigger, clean_trigger, cron_next, next_run_after

if TYPE_CHECKING:
    from django_q.models import Schedule

#: What django-q2's scheduler calls for our schedules; stored in ``Schedule`` rows, never moves.
ENTRY_POINT = "powercrud_async.schedules.run_scheduled"
NAME_MAX_LENGTH = 100  # Schedule.name
#: django-q2's scheduler passes each run's due time under this keyword (``intended_date_kwarg``).
DUE_KWARG = "scheduled_for"


def schedule_model() -> type[Schedule]:
    return cast("type[Schedule]", broker.schedule_model())


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
    taken = schedule_model().objects.filter(name=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise InvalidSchedule(f"A schedule named {name!r} already exists; choose another name.")
    return name


def clean_manager(manager: Manager, manager_class: Any) -> tuple[str, dict[str, Any] | None]:
    """The manager path the runs resolve, checked now so a typo fails here, not at 03:00."""
    if manager_class is None:
        path, config = manager.class_path(), manager.config or None
    elif isinstance(manager_class, type | str):
        path = (
            manager_class
            if isinstance(manager_class, str)
            else (f"{manager_class.__module__}.{manager_class.__qualname__}")
        )
        try:
            manager.import_class(path)
        except InvalidManagerClass as exc:
            raise InvalidSchedule(f"manager_class: {exc}") from exc
        config = None
    else:
        raise InvalidSchedule(
            f"manager_class must be a dotted path or a class, got {manager_class!r}."
        )
    if config is not None and not _is_literal(config):
        raise InvalidSchedule(
            "The manager's config must hold only literals to be stored in a schedule."
        )
    return path, config


def clean_call(args: Sequence[Any], kwargs: Mapping[str, Any], affected_objects: Any) -> None:
    for what, value in (
        ("args", list(args)),
        ("kwargs", dict(kwargs)),
        ("affected_objects", affected_objects),
    ):
        if not _is_literal(value):
            raise InvalidSchedule(
                f"Scheduled {what} must be Python literals (numbers, strings, lists, dicts, ...): "
                "django-q2 stores them as text."
            )


def user_pk(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def _store_spec(schedule: Schedule, spec: dict[str, Any]) -> None:
    # ack_failure: a failed run is reported once, never redelivered by the broker.
    schedule.kwargs = repr({"spec": spec, "q_options": {"ack_failure": True}})


def create_schedule(
    manager: Manager,
    func: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: Any,
    trigger: Trigger,
    conflict_ids: Any = None,
    user: Any = None,
    affected_objects: Any = None,
    manager_class: Any = None,
) -> Schedule:
    """See ``AsyncManager.schedule_async_task``. Everything is checked before a row is written."""
    name = clean_name(name)
    func_path, _ = resolve_func(func)
    fields = clean_trigger(trigger)
    normalized = to_json(normalize_conflict_ids(conflict_ids))
    clean_call(args, kwargs, affected_objects)
    manager_path, manager_config = clean_manager(manager, manager_class)
    spec = {
        "func": func_path,
        "args": list(args),
        "kwargs": dict(kwargs),
        "conflict_ids": normalized,
        "affected_objects": affected_objects,
        "user": user_pk(user),
        "manager_class": manager_path,
        "manager_config": manager_config,
    }
    Schedule = schedule_model()
    schedule = Schedule(
        name=name,
        func=ENTRY_POINT,
        next_run=trigger.next_run or timezone.now(),
        intended_date_kwarg=DUE_KWARG,
        **fields,
    )
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
    return {
        "func": schedule.func,
        "args": list(args),
        "kwargs": kwargs,
        "conflict_ids": {},
        "affected_objects": None,
        "user": None,
        "manager_class": None,
        "manager_config": None,
    }


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


def update_schedule(
    pk: Any,
    *,
    name: Any,
    trigger: Trigger,
    func: Any = None,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    conflict_ids: Any = None,
) -> Schedule:
    """Change a schedule's name and trigger (and, for ours, what it launches).

    A paused schedule stays paused: the new ``repeats`` and ``next_run`` are what resuming restores.
    """
    Schedule = schedule_model()
    using = router.db_for_write(Schedule)
    with transaction.atomic(using=using):
        schedule = _locked(pk)
        name = clean_name(name, exclude_pk=schedule.pk)
        fields = clean_trigger(trigger)
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
        retimed = (
            fields["schedule_type"] != schedule.schedule_type or fields["cron"] != schedule.cron
        )
        schedule.name = name
        schedule.schedule_type = fields["schedule_type"]
        schedule.minutes = fields["minutes"]
        schedule.cron = fields["cron"]
        when = trigger.next_run
        if fields["schedule_type"] == "C" and (retimed or when is None):
            when = cron_next(schedule.cron, timezone.now())
        state = (
            ScheduleState.objects.using(using)
            .filter(schedule_id=schedule.pk, paused_at__isnull=False)
            .first()
        )
        if state is not None:
            state.saved_repeats = fields["repeats"]
            if when is not None:
                state.saved_next_run = when
            state.save(update_fields=["saved_repeats", "saved_next_run"])
        else:
            schedule.repeats = fields["repeats"]
            if when is not None:
                schedule.next_run = when
        _full_clean(schedule)
        schedule.save()
    return schedule


def get_schedule(pk: Any) -> Schedule:
    schedule = schedule_model().objects.filter(pk=pk).first() if str(pk).isdigit() else None
    if schedule is None:
        raise UnknownSchedule(f"No schedule with id {pk!r}.")
    return schedule


def _locked(pk: Any) -> Schedule:
    Schedule = schedule_model()
    schedule = (
        Schedule.objects.select_for_update().filter(pk=pk).first() if str(pk).isdigit() else None
    )
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
    Schedule = schedule_model()
    with transaction.atomic(using=router.db_for_write(Schedule)):
        schedule = _locked(pk)
        state, _ = ScheduleState.objects.get_or_create(schedule_id=schedule.pk)
        if state.paused_at is not None:
            return False
        if schedule.repeats == 0:
            raise InvalidSchedule(
                f"Schedule {schedule.name or schedule.pk} has no runs left; nothing to pause."
            )
        state.paused_at = timezone.now()
        state.paused_by = str(user.get_username())[:255] if user_pk(user) else ""
        state.saved_repeats = schedule.repeats
        state.saved_next_run = schedule.next_run
        state.save()
        schedule.repeats = 0  # django-q2's scheduler skips rows with no repeats left
        schedule.save(update_fields=["repeats"])
    return True


def resume_schedule(pk: Any, *, now: datetime | None = None) -> bool:
    """Put back the exact ``repeats`` and the next run of the unchanged trigger.

    Returns False if the schedule was not paused.
    """
    Schedule = schedule_model()
    now = now or timezone.now()
    with transaction.atomic(using=router.db_for_write(Schedule)):
        schedule = _locked(pk)
        state = ScheduleState.objects.filter(
            schedule_id=schedule.pk, paused_at__isnull=False
        ).first()
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
    get_schedule(pk).delete()
