"""Ending a job: exactly once, whichever path gets there first.

The runner's ``finally``, django-q2's hook, its ``post_execute`` signal and cleanup all call
``finish``; the registry's compare-and-set picks the one that ends the task, and only that caller
releases what the task held and emits its final events.
"""

from __future__ import annotations

import logging
import traceback as traceback_module
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from .. import progress
from ..statuses import ACTIVE, FINISH_EVENTS, Event, TaskStatus
from ..stores import TaskInfo, get_store
from . import reservations
from .protocol import Manager

logger = logging.getLogger("powercrud_async.lifecycle.finish")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended: its terminal status and what its events report."""

    status: TaskStatus
    result: Any = None
    error: str = ""
    traceback: str = ""
    reason: str = ""


def finish(
    manager: Manager,
    task_name: str,
    outcome: Outcome,
    *,
    info: TaskInfo | None = None,
    expect: Mapping[str, Any] | None = None,
) -> bool:
    """End ``task_name`` with ``outcome`` if it is still queued or running (``AsyncManager.finish``).

    The durable part (registry row terminal with its events marked due if the manager has a
    lifecycle handler, locks released) is one
    store call and decides the outcome; each side effect after it is attempted on its own, so a
    failing cache can neither undo the ending nor cost the events that report it. A worker that
    dies before the events went out leaves them due, and cleanup sends them (``redeliver``).
    """
    store = get_store()
    now = timezone.now()
    due = manager.hears_events()
    released = store.finish(
        task_name,
        ACTIVE,
        outcome.status,
        expect=expect,
        finished_at=now,
        reason=outcome.reason[:10000],
        events_due=due,
    )
    if released is None:
        return False
    if info is None:
        info = _side_effect("read its row", task_name, lambda: store.get(task_name))
    _side_effect("drop its progress entry", task_name, lambda: progress.delete(task_name))
    _side_effect("forget its reservations", task_name, lambda: reservations.forget([task_name]))
    payload = final_payload(outcome, now, info.started_at if info else None)
    _deliver(manager, task_name, payload, released, marked=due)
    return True


def redeliver(manager: Manager, info: TaskInfo) -> None:
    """Send the final events of a task whose worker ended it and died before they went out.

    Delivery is at least once: a worker paused (not dead) past the grace sends them too, so
    the payload says ``redelivered=True`` and a handler with effects outside this package keys
    them by task name and event.
    """
    outcome = Outcome(TaskStatus(info.status), error=info.reason, reason=info.reason)
    payload = final_payload(outcome, info.finished_at or timezone.now(), info.started_at)
    payload["redelivered"] = True
    _deliver(manager, info.task_name, payload, None, marked=True)


def final_payload(outcome: Outcome, now: datetime, started: datetime | None) -> dict[str, Any]:
    """The payload of a terminal event, as PowerCRUD's handlers read it."""
    status, result, error, reason = outcome.status, outcome.result, outcome.error, outcome.reason
    message = {
        TaskStatus.SUCCESS: "Completed",
        TaskStatus.FAILED: f"Failed: {reason or error}".strip().rstrip(":"),
        TaskStatus.CANCELLED: reason or "Cancelled",
    }[status]
    duration = (now - started).total_seconds() if started else None
    payload: dict[str, Any] = {"status": status, "message": message, "duration": duration}
    if status is TaskStatus.SUCCESS:
        payload.update(result=result, completed_at=now)
    elif status is TaskStatus.FAILED:
        payload.update(
            result=error or reason,
            error=error or reason,
            traceback=outcome.traceback,
            reason=reason,
            failed_at=now,
        )
    else:
        payload.update(result=reason or "Cancelled", cancelled_at=now)
    return payload


def _deliver(
    manager: Manager,
    task_name: str,
    payload: dict[str, Any],
    released: int | None,
    *,
    marked: bool,
) -> None:
    """Emit the terminal event and ``cleanup``. ``marked``: the end is marked due in the
    registry, and the batch clears the mark once the events are handled (a manager whose events
    go nowhere is never marked, so they cost no write)."""
    status = payload["status"]
    extra = {"redelivered": True} if payload.get("redelivered") else {}
    with manager.event_batch(task_name, marked=marked):
        manager.emit(FINISH_EVENTS[status], task_name, **payload)
        manager.emit(
            Event.CLEANUP, task_name, status=None, cleaned_up=True, locks_released=released, **extra
        )


def mark_delivered(task_names: Collection[str]) -> None:
    """Clear the events-due mark of tasks whose final events were handled (written, for a
    manager that writes them later), so cleanup does not send them again."""
    if task_names:
        _side_effect(
            "mark its final events delivered",
            ", ".join(task_names),
            lambda: get_store().mark_delivered(task_names),
        )


def _side_effect(what: str, task_name: str, action: Callable[[], Any]) -> Any:
    """Run one after-the-fact step of ending a task; a failure is logged once and ignored."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - the task has ended; nothing here may change that
        logger.warning(
            "Task %s ended, but could not %s: %s: %s", task_name, what, type(exc).__name__, exc
        )
        return None


def format_exception(exc: BaseException) -> tuple[str, str]:
    """``("ValueError: bad", full traceback)`` for a failure payload."""
    return (
        f"{type(exc).__name__}: {exc}",
        "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__)),
    )
