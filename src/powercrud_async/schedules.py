"""Schedules, as a project uses them: pause, resume, run now, edit, remove (the work is in
``lifecycle.recurring``), and what django-q2's scheduler calls: ``run_scheduled`` for schedules
made by ``AsyncManager.schedule_async_task``, ``cleanup_async_artifacts`` for the cleanup one.

Both dotted paths are stored in ``Schedule`` rows: they must never move.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.utils import timezone

from . import broker, conf
from .async_manager import AsyncManager
from .exceptions import ConflictError, InvalidTaskName
from .lifecycle.protocol import Manager
from .lifecycle.recurring import (
    get_schedule,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    schedule_model,
    spec_of,
    update_schedule,
)
from .lifecycle.triggers import Trigger
from .models import ScheduleState
from .statuses import Event, TaskStatus
from .stores import get_store

__all__ = [
    "RunOutcome",
    "Trigger",
    "cleanup_async_artifacts",
    "ensure_cleanup_schedule",
    "pause_schedule",
    "remove_schedule",
    "resume_schedule",
    "run_schedule_now",
    "run_scheduled",
    "update_schedule",
]

SCHEDULE_NAME = "powercrud_async cleanup"
LAUNCHED, BLOCKED, ERROR = "launched", "blocked", "error"


def cleanup_async_artifacts(manager_class: str | None = None) -> dict[str, Any]:
    """What the schedule runs: ``cleanup_completed_tasks`` on the project's manager."""
    return AsyncManager.resolve_manager(manager_class).cleanup_completed_tasks()


def ensure_cleanup_schedule() -> Any:
    """Create (or update) the django-q2 ``Schedule`` running cleanup every
    ``CLEANUP_SCHEDULE_INTERVAL`` seconds. Idempotent; returns the ``Schedule``."""
    Schedule = broker.schedule_model()
    minutes = max(1, round(conf.get("CLEANUP_SCHEDULE_INTERVAL") / 60))
    schedule, _ = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "powercrud_async.schedules.cleanup_async_artifacts",
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
    )
    return schedule


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
    if pk is not None and not schedule_model().objects.filter(pk=pk).exists():
        return {
            "task": "",
            "outcome": "removed",
            "message": f"Schedule {pk} was removed before this run.",
        }
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


def launch_spec(
    spec: Mapping[str, Any], *, schedule_pk: Any, user: Any, manual: bool, key: str | None = None
) -> RunOutcome:
    """Launch one run through the manager and note it on the schedule."""
    manager = AsyncManager.resolve_manager(
        spec.get("manager_class") or None, spec.get("manager_config")
    )
    if key is not None and get_store().get(key) is not None:
        return RunOutcome(task=key, outcome=LAUNCHED, message="Already launched")
    key = key or str(uuid.uuid4())
    name = _schedule_name(schedule_pk)
    try:
        manager.launch_async_task(
            spec["func"],
            *spec.get("args", []),
            task_key=key,
            task_kwargs=spec.get("kwargs") or {},
            conflict_ids=spec.get("conflict_ids") or None,
            user=user,
            affected_objects=spec.get("affected_objects"),
            task_label=name,
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
        return RunOutcome(
            task=key, outcome=LAUNCHED, message="Already launched"
        )  # a racing redelivery
    except Exception as exc:
        note_run(schedule_pk, "", ERROR, f"{type(exc).__name__}: {exc}")
        raise
    note_run(schedule_pk, key, LAUNCHED, "Run now" if manual else "")
    return RunOutcome(task=key, outcome=LAUNCHED)


def record_blocked(
    manager: Manager, key: str, spec: Mapping[str, Any], *, user: Any, message: str, label: str = ""
) -> None:
    """A run that did not run still gets a record and a timeline, naming the lock holder."""
    now = timezone.now()
    manager.emit(
        Event.CREATE,
        key,
        status=TaskStatus.PENDING,
        message="Scheduled run",
        user=user,
        label=label,
        affected_objects=spec.get("affected_objects"),
        task_args=list(spec.get("args", [])),
        task_kwargs=dict(spec.get("kwargs") or {}),
        func_path=spec["func"],
        conflict_ids=spec.get("conflict_ids") or None,
        created_at=now,
    )
    manager.emit(
        Event.CANCEL,
        key,
        status=TaskStatus.CANCELLED,
        message=message,
        result=message,
        reason=message,
        cancelled_at=now,
    )


def _schedule_name(pk: Any) -> str:
    if pk is None:
        return "schedule"
    name = schedule_model().objects.filter(pk=pk).values_list("name", flat=True).first()
    return str(name or f"schedule {pk}")


def note_run(schedule_pk: Any, task: str, outcome: str, message: str) -> None:
    """Remember the last run on the schedule (unless the schedule was removed meanwhile)."""
    if schedule_pk is None or not schedule_model().objects.filter(pk=schedule_pk).exists():
        return
    values = {
        "last_task": task,
        "last_outcome": outcome,
        "last_message": message[:10000],
        "last_run_at": timezone.now(),
    }
    try:
        ScheduleState.objects.update_or_create(schedule_id=schedule_pk, defaults=values)
    except IntegrityError:
        pass  # removed between the check and the write


def run_schedule_now(pk: Any, *, user: Any = None) -> RunOutcome:
    """Run once now through the manager; the regular ``next_run`` and ``repeats`` stay as they are."""
    schedule = get_schedule(pk)
    return launch_spec(spec_of(schedule), schedule_pk=schedule.pk, user=user, manual=True)
