"""Retention: delete old finished task records with their timelines and job logs, in batches.

Every batch walks the primary key forward (keyset pagination), so each row is looked at once and
a table of millions of records is pruned in time linear in its size, with short transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from ..statuses import TERMINAL
from .config import Tracking
from .sql import keyset_pages

TERMINAL_VALUES = tuple(s.value for s in TERMINAL)
FINISH_FIELDS = ("completed_at", "failed_at", "cancelled_at")


@dataclass
class PruneSummary:
    cutoff: datetime
    statuses: tuple[str, ...]
    dry_run: bool
    records: int = 0
    events: int = 0
    logs: int = 0
    orphan_events: int = 0
    orphan_logs: int = 0
    batches: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def check_statuses(statuses: Iterable[str] | None) -> tuple[str, ...]:
    """The statuses named (comma-separated or repeated); ``()`` for none. Raises ``ValueError``
    naming the allowed ones: only finished tasks are ever pruned."""
    chosen: list[str] = []
    for item in statuses or ():
        for part in str(item).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in TERMINAL_VALUES:
                raise ValueError(
                    f"Unknown status {part!r}: only finished tasks are pruned, use "
                    f"{', '.join(TERMINAL_VALUES)}."
                )
            if part not in chosen:
                chosen.append(part)
    return tuple(chosen)


def old_records(t: Tracking, cutoff: datetime, statuses: Sequence[str], *, narrowed: bool) -> Q:
    """Finished records whose end (or, lacking one, last update or creation) is before ``cutoff``."""
    finish = [c for c in (t.datetime_column(name) for name in FINISH_FIELDS) if c]
    fallback = t.datetime_column("updated_at", "created_at")
    if not finish and not fallback:
        raise ValueError(
            f"Record model {t.label} has no date column (completed_at, failed_at, cancelled_at, "
            "updated_at or created_at in its field_map) to judge a record's age by."
        )
    if t.status_column:
        finished = Q(**{f"{t.status_column}__in": statuses})
    elif narrowed:
        raise ValueError(f"Record model {t.label} has no status column: --status cannot apply.")
    elif finish:
        finished = Q()
        for column in finish:
            finished |= Q(**{f"{column}__isnull": False})
    else:
        raise ValueError(
            f"Record model {t.label} has neither a status column nor end times: which records "
            "are finished cannot be told."
        )
    age = Q()
    for column in finish:
        age |= Q(**{f"{column}__lt": cutoff})
    if fallback:
        no_end = Q(**{f"{finish[0]}__isnull": True}) if finish else Q()
        for column in finish[1:]:
            no_end &= Q(**{f"{column}__isnull": True})
        age |= no_end & Q(**{f"{fallback}__lt": cutoff})
    return finished & age


def prune(
    tracking: Tracking | None,
    *,
    older_than: timedelta,
    statuses: Iterable[str] | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
) -> PruneSummary:
    """Delete finished records older than ``older_than``, their ``TaskEvent`` and
    ``TaskLogEntry`` rows; then, unless ``statuses`` narrows the choice, timeline and log rows
    older than that of tasks that have no record and are not live (untracked jobs)."""
    if older_than < timedelta(0):
        raise ValueError("older_than must not be negative.")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    named = check_statuses(statuses)
    narrowed = bool(named)
    chosen = named or TERMINAL_VALUES
    summary = PruneSummary(cutoff=timezone.now() - older_than, statuses=chosen, dry_run=dry_run)
    if tracking is not None:
        _prune_records(tracking, summary, chosen, batch_size, narrowed=narrowed)
    else:
        summary.notes.append("The manager keeps no records: only untracked timelines and logs.")
    if not narrowed:
        _prune_orphans(tracking, summary, batch_size)
    return summary


def _prune_records(
    t: Tracking, summary: PruneSummary, statuses: Sequence[str], batch_size: int, *, narrowed: bool
) -> None:
    from ..models import TaskEvent, TaskLogEntry

    query = old_records(t, summary.cutoff, statuses, narrowed=narrowed)
    events_db = router.db_for_write(TaskEvent)
    logs_db = router.db_for_write(TaskLogEntry)
    for rows in keyset_pages(t.manager().filter(query), batch_size, t.task_column):
        pks = [row["pk"] for row in rows]
        names = [row[t.task_column] for row in rows]
        summary.batches += 1
        events = TaskEvent.objects.using(events_db).filter(task_name__in=names)
        logs = TaskLogEntry.objects.using(logs_db).filter(task_name__in=names)
        if summary.dry_run:
            summary.records += len(rows)
            summary.events += events.count()
            summary.logs += logs.count()
            continue
        with (
            transaction.atomic(using=t.db),
            transaction.atomic(using=events_db),
            transaction.atomic(using=logs_db),
        ):
            summary.events += events.delete()[0]
            summary.logs += logs.delete()[0]
            _, per_model = t.manager().filter(pk__in=pks).delete()
            summary.records += per_model.get(t.model._meta.label, 0)


def _prune_orphans(t: Tracking | None, summary: PruneSummary, batch_size: int) -> None:
    from ..models import TaskEvent, TaskLogEntry
    from ..stores import get_store

    live = {info.task_name for info in get_store().active()}
    for model, attr in ((TaskEvent, "orphan_events"), (TaskLogEntry, "orphan_logs")):
        db = router.db_for_write(model)
        base = model.objects.using(db).filter(created_at__lt=summary.cutoff).order_by("id")
        last_id = 0
        while True:
            rows = list(base.filter(id__gt=last_id).values_list("id", "task_name")[:batch_size])
            if not rows:
                break
            last_id = rows[-1][0]
            names = {name for _, name in rows} - live
            if t is not None and names:
                names -= set(
                    t.manager()
                    .filter(**{f"{t.task_column}__in": list(names)})
                    .values_list(t.task_column, flat=True)
                )
            ids = [row_id for row_id, name in rows if name in names]
            if not ids:
                continue
            summary.batches += 1
            if summary.dry_run:
                setattr(summary, attr, getattr(summary, attr) + len(ids))
            else:
                deleted, _ = model.objects.using(db).filter(id__in=ids).delete()
                setattr(summary, attr, getattr(summary, attr) + deleted)
