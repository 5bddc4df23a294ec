"""One lifecycle event as column changes of the task's record, and as its timeline row.

Each change is tagged with the rank of the event it came from, so a status never moves
backwards: the writer merges changes with ``merge`` and the UPDATE guards them by that rank.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import redaction
from ..payloads import json_text
from ..statuses import FINISH_EVENTS, TERMINAL, TaskStatus
from .config import UNSET_STATUS, RecordFormatters, Tracking

#: Logical names whose payload key differs; any other logical name is its payload key.
PAYLOAD_KEYS: dict[str, str] = {
    "user": "user",
    "user_id": "user",
    "affected": "affected_objects",
    "args": "task_args",
    "kwargs": "task_kwargs",
    "cleaned": "cleaned_up",
}

#: Fields whose meaning depends on the task's state: written only while the status may still
#: move to the event's status (a late ``progress`` never overwrites a finished record).
GUARDED = frozenset(
    "status message progress percent result completed_at failed_at cancelled_at duration "
    "error traceback reason".split()
)

#: Rank of the status each event moves a task to (``cleanup`` moves nothing).
EVENT_RANK: dict[str, int] = {
    "create": TaskStatus.PENDING.rank,
    "start": TaskStatus.IN_PROGRESS.rank,
    "progress": TaskStatus.IN_PROGRESS.rank,
    "complete": TaskStatus.SUCCESS.rank,
    "fail": TaskStatus.FAILED.rank,
    "cancel": TaskStatus.CANCELLED.rank,
}
TERMINAL_EVENTS = frozenset(FINISH_EVENTS.values())
#: The payload key holding the moment each event happened (others: when it was handled).
EVENT_TIME_KEYS = {
    "create": "created_at",
    "start": "started_at",
    "complete": "completed_at",
    "fail": "failed_at",
    "cancel": "cancelled_at",
}
#: Current statuses a guarded field of an event of each rank may still overwrite.
ALLOWED_FROM: dict[int, tuple[str, ...]] = {
    0: (TaskStatus.PENDING.value, *UNSET_STATUS),
    1: (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, *UNSET_STATUS),
    2: (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, *UNSET_STATUS),
}
TERMINAL_VALUES = tuple(s.value for s in TERMINAL)

#: What a value the column cannot hold becomes (the column is then left alone).
SKIP = object()


@dataclass(frozen=True, slots=True)
class Change:
    """A column value and the rank of the event it came from (``None``: not guarded)."""

    value: Any
    guard: int | None


def merge(into: dict[str, Change], changes: Mapping[str, Change]) -> None:
    """Later changes win, except a guarded value never loses to one from a lower-ranked event."""
    for column, change in changes.items():
        old = into.get(column)
        if (
            old is not None
            and old.guard is not None
            and change.guard is not None
            and change.guard < old.guard
        ):
            continue
        into[column] = change


def coerce(manager: RecordFormatters, field_obj: models.Field, value: Any) -> Any:
    """``value`` in the shape the column takes, or ``SKIP`` if it cannot hold it."""
    if isinstance(field_obj, models.JSONField):
        return manager.format_payload(value)
    if isinstance(field_obj, (models.CharField, models.TextField)):
        text = value if isinstance(value, str) else json_text(manager.format_payload(value))
        text = str(text)
        limit = getattr(field_obj, "max_length", None)
        if limit and len(text) > limit:
            text = text[: limit - 1] + "…"
        return text
    if isinstance(field_obj, models.DateTimeField):
        if isinstance(value, str):
            value = parse_datetime(value)
        return value if isinstance(value, datetime) else SKIP
    if isinstance(field_obj, models.DurationField):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return timedelta(seconds=value)
        return value if isinstance(value, timedelta) else SKIP
    if isinstance(field_obj, models.BooleanField):
        return bool(value)
    if isinstance(field_obj, (models.FloatField, models.IntegerField, models.DecimalField)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return SKIP
        if isinstance(field_obj, models.IntegerField):
            return int(value)
        return value
    if field_obj.is_relation:
        related = field_obj.related_model
        if (
            isinstance(value, models.Model)
            and isinstance(related, type)
            and isinstance(value, related)
        ):
            return value.pk
        return SKIP
    return value


def progress_value(field_obj: models.Field, payload: Mapping[str, Any]) -> Any:
    """The progress column's value: the latest progress text, plus its numbers in a JSON column.

    An empty text is ``SKIP``: a progress call with only numbers keeps the last message.
    """
    raw = payload.get("progress", payload.get("progress_payload"))
    if isinstance(raw, Mapping):
        text = raw.get("message", payload.get("message"))
        numbers = {k: raw[k] for k in ("current", "total", "percent") if k in raw}
    else:
        text, numbers = raw, {}
    if isinstance(field_obj, models.JSONField):
        value = {"message": text, **numbers} if text or numbers else None
        return SKIP if value is None else value
    return text if isinstance(text, str) and text else SKIP


def _user_value(manager: RecordFormatters, field_obj: models.Field, user: Any) -> Any:
    if field_obj.is_relation:
        authenticated = getattr(user, "is_authenticated", False) and getattr(user, "pk", None)
        related = field_obj.related_model
        fits = isinstance(related, type) and isinstance(user, related)
        return user.pk if authenticated and fits else SKIP
    return manager.format_user(user)


def _user_id_value(user: Any) -> Any:
    """The launcher's pk, what dashboard ownership is decided by (never the display label)."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return SKIP
    return str(user.pk)


def changes_for(
    manager: RecordFormatters, tracking: Tracking, event: str, payload: Mapping[str, Any]
) -> dict[str, Change]:
    """The columns ``event`` writes: only the fields it carries, never a ``None``."""
    rank = EVENT_RANK.get(event)
    if rank is None and payload.get("status"):
        try:
            rank = TaskStatus(payload["status"]).rank
        except ValueError:
            rank = None
    out: dict[str, Change] = {}
    for logical, column in tracking.field_map.items():
        if logical in ("task_name", "updated_at"):
            continue
        key = PAYLOAD_KEYS.get(logical, logical)
        if key not in payload and not (logical == "progress" and "progress_payload" in payload):
            continue
        raw = payload.get(key)
        field_obj = tracking.fields[column]
        if logical == "progress":
            value = progress_value(field_obj, payload)
        elif logical == "user":
            value = _user_value(manager, field_obj, raw)
        elif logical == "user_id":
            value = (
                _user_value(manager, field_obj, raw)
                if field_obj.is_relation
                else _user_id_value(raw)
            )
        elif logical == "affected":
            value = manager.format_affected(raw)
        elif logical in ("args", "kwargs") and raw is not None:
            value = redaction.for_record(raw)
        elif raw is None:
            continue
        else:
            value = raw
        if value is SKIP:
            continue
        value = coerce(manager, field_obj, value)
        if value is SKIP:
            continue
        guard = rank if (logical in GUARDED and rank is not None) else None
        merge(out, {column: Change(value, guard)})
    return out


def event_row(event: str, task_name: str, payload: Mapping[str, Any]) -> Any:
    """The unsaved ``TaskEvent`` for one event (time: when it happened, if the payload says)."""
    from ..models import TaskEvent

    when = payload.get(EVENT_TIME_KEYS.get(event, ""), None)
    if not isinstance(when, datetime):
        when = timezone.now()
    status = payload.get("status")
    message = payload.get("message")
    if event == "cleanup" and not message:
        released = payload.get("locks_released")
        message = "Cleaned up" + (f": {released} lock(s) released" if released is not None else "")
    elif event == "progress" and payload.get("percent") is not None:
        message = f"{message or ''} ({payload['percent']:g}%)".strip()
    return TaskEvent(
        task_name=task_name,
        event=str(event)[:20],
        status=str(status) if status else "",
        message=str(message or ""),
        created_at=when,
    )
