"""What ``cleanup_completed_tasks`` does to records: a finished task whose end was never
written gets it from the registry, a task the registry forgot is failed, and records of tasks
holding no locks are flagged ``cleaned_up``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..lifecycle.finish import Outcome, final_payload
from ..lifecycle.liveness import dead_after
from ..statuses import FINISH_EVENTS, TaskStatus
from ..stores import get_store
from . import sql
from .changes import TERMINAL_VALUES, changes_for, event_row
from .config import TrackedManager, Tracking

logger = logging.getLogger("powercrud_async.tracking.cleanup")


def mark_cleaned(tracking: Tracking, task_names: list[str]) -> int:
    """``cleaned_up = True`` on the records of ``task_names`` that are not yet; returns how many."""
    column = tracking.column("cleaned")
    if not column or not task_names:
        return 0
    values: dict[str, Any] = {column: True}
    values.update((f.name, value) for f, value, _ in sql.assignments(tracking, {}, timezone.now()))
    total = 0
    for start in range(0, len(task_names), 500):
        chunk = task_names[start : start + 500]
        total += (
            tracking.manager()
            .filter(**{f"{tracking.task_column}__in": chunk, column: False})
            .update(**values)
        )
    return total


def reconcile(
    manager: TrackedManager, *, dry_run: bool = False, batch_size: int = 500
) -> dict[str, Any]:
    """Bring records in line with the registry: a finished task's record gets its terminal
    status (if an event write was lost), a task the registry no longer knows gets ``failed``,
    and records of tasks that hold no locks get ``cleaned_up = True``. A record the registry
    does not know yet is left alone for as long as a worker may stay silent, and so is one whose
    final events are still due: its worker writes them, or cleanup sends them again."""
    grace = timedelta(seconds=dead_after())

    tracking = manager.get_tracking()
    summary: dict[str, Any] = {"repaired": [], "cleaned": 0}
    status_column = tracking.status_column
    cleaned_column = tracking.column("cleaned")
    if status_column is None and cleaned_column is None:
        return summary
    query = Q()
    if status_column:
        query |= ~Q(**{f"{status_column}__in": TERMINAL_VALUES}) | Q(
            **{f"{status_column}__isnull": True}
        )
    if cleaned_column:
        query |= Q(**{cleaned_column: False})
    seen_column = tracking.datetime_column("updated_at", "created_at")
    wanted = [tracking.task_column] + [c for c in (status_column, seen_column) if c]
    store = get_store()
    owners = store.lock_owners()
    now = timezone.now()
    to_clean: list[str] = []
    for rows in sql.keyset_pages(tracking.manager().filter(query), batch_size, *wanted):
        infos = store.get_many([r[tracking.task_column] for r in rows])
        for row in rows:
            name = row[tracking.task_column]
            info = infos.get(name)
            if info is not None and (info.is_active or info.events_due):
                continue  # running, or its end is on its way (from its worker, or redelivery)
            status = row.get(status_column) if status_column else None
            record_terminal = status in TERMINAL_VALUES
            if status_column and not record_terminal:
                payload = repair_payload(
                    info, row.get(seen_column) if seen_column else None, now, grace
                )
                if payload is None:
                    continue
                event, values = payload
                if name not in owners:
                    values["cleaned_up"] = True
                summary["repaired"].append(
                    {"task_name": name, "status": values["status"], "reason": values["message"]}
                )
                if not dry_run:
                    repair(manager, tracking, event, name, values)
                continue
            if name not in owners:
                to_clean.append(name)
    summary["cleaned"] = len(to_clean) if dry_run else mark_cleaned(tracking, to_clean)
    return summary


def repair_payload(
    info: Any, seen: datetime | None, now: datetime, grace: timedelta
) -> tuple[str, dict[str, Any]] | None:
    """The event (and its payload) that gives a record the end the registry knows; ``None``
    while a record too fresh to judge may still be getting registered."""
    if info is None:
        if seen is not None and now - seen < grace:
            return None  # just written: its registration may still be on its way
        status, ended, started = TaskStatus.FAILED, now, None
        reason = "No longer registered (removed or purged) before its end was recorded."
    else:
        status, ended, started = TaskStatus(info.status), info.finished_at or now, info.started_at
        reason = info.reason or ("The worker failed" if status is TaskStatus.FAILED else "")
    return FINISH_EVENTS[status], final_payload(
        Outcome(status, error=reason, reason=reason), ended, started
    )


def repair(
    manager: TrackedManager, tracking: Tracking, event: str, task_name: str, payload: dict[str, Any]
) -> None:
    """Write a terminal state found by cleanup (no lifecycle hook is called: the event already
    happened; only its record was lost). The timeline notes who recorded it."""
    changes = changes_for(manager, tracking, event, payload)
    try:
        sql.write_record(tracking, task_name, changes)
        if tracking.timeline_limit() > 0:
            row = event_row(
                event,
                task_name,
                {  # stamped now: when the repair happened
                    "status": payload["status"],
                    "message": f"{payload['message']} (recorded by cleanup)",
                },
            )
            sql.insert_rows([row])
    except Exception:  # noqa: BLE001
        logger.exception("Cleanup could not repair the record of task %s", task_name)
