"""The statements that place a task's record and timeline rows: one guarded UPDATE (or the
INSERT that creates the record), one timeline INSERT, and the timeline trim.

No buffering here (that is ``writer``): each call is the database work of one write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import Subquery
from django.utils import timezone

from .. import inserts
from .changes import ALLOWED_FROM, Change
from .config import Tracking, model_field


class RecordWriteError(Exception):
    """Neither an UPDATE nor an INSERT could place the record (e.g. a required column)."""


#: Databases on which this thread runs our own transaction (``one_transaction``).
_owned: ContextVar[frozenset[str]] = ContextVar("powercrud_async_owned", default=frozenset())


@contextmanager
def one_transaction(using: str) -> Iterator[None]:
    """Our own transaction for several writes. Any failure rolls all of them back and
    propagates (the caller then writes them one by one), so no savepoint is spent on each."""
    with transaction.atomic(using=using), owned(using):
        yield


@contextmanager
def owned(using: str) -> Iterator[None]:
    """Treat the transaction open on ``using`` as ours: a failure inside propagates and rolls
    all of it back, so no savepoint is spent on each write (a launch writing its ``create``)."""
    token = _owned.set(_owned.get() | {using})
    try:
        yield
    finally:
        _owned.reset(token)


def in_callers_transaction(using: str) -> bool:
    """Whether a transaction someone else opened is running on ``using`` in this thread."""
    return connections[using].in_atomic_block and using not in _owned.get()


@contextmanager
def _savepoint_if_atomic(using: str) -> Iterator[None]:
    """Inside a caller's transaction, a failure of ours must not poison it: use a savepoint.
    Outside one (the worker, on_commit callbacks, our own transaction) no extra statements are
    spent."""
    if in_callers_transaction(using):
        with transaction.atomic(using=using):
            yield
    else:
        yield


def assignments(
    tracking: Tracking, changes: Mapping[str, Change], now: datetime
) -> list[tuple[models.Field, Any, int | None]]:
    """``(field, value, guard)`` for every column an UPDATE writes, ``auto_now`` columns included."""
    values: dict[str, tuple[Any, int | None]] = {
        c: (ch.value, ch.guard) for c, ch in changes.items()
    }
    stamped = list(tracking.auto_now)
    updated = tracking.datetime_column("updated_at")
    if updated:
        stamped.append(updated)
    for column in stamped:
        values.setdefault(column, (now, None))
    return [
        (model_field(tracking.model, column), value, guard)
        for column, (value, guard) in values.items()
    ]


def _db_column(tracking: Tracking, name: str) -> str:
    field_obj = model_field(tracking.model, name)
    return field_obj.column or field_obj.attname


def _update_statement(
    tracking: Tracking, task_name: str, changes: Mapping[str, Change], now: datetime
) -> tuple[str, list[Any]] | None:
    """One ``UPDATE … WHERE task = %s`` for ``changes`` (``None`` if there is nothing to set).

    Written as SQL rather than ``QuerySet.update(Case(When(...)))``: the ORM spent more time
    compiling the guard expressions of a job's last write than the database took to run it.
    A guarded column keeps its value unless the status still allows the event's rank, so the
    guard holds across processes without reading the record first."""
    columns = assignments(tracking, changes, now)
    if not columns:
        return None
    conn = connections[tracking.db]
    qn = conn.ops.quote_name
    status = qn(_db_column(tracking, tracking.status_column)) if tracking.status_column else None
    sets: list[str] = []
    params: list[Any] = []
    for field_obj, value, guard in columns:
        column = qn(field_obj.column or field_obj.attname)
        placeholder = conn.ops.unification_cast_sql(field_obj) % "%s"
        prepared = field_obj.get_db_prep_save(value, connection=conn)
        if guard is None or status is None:
            sets.append(f"{column} = %s")
            params.append(prepared)
            continue
        allowed = ALLOWED_FROM[min(guard, 2)]
        sets.append(
            f"{column} = CASE WHEN {status} IN ({', '.join(['%s'] * len(allowed))}) "
            f"OR {status} IS NULL THEN {placeholder} ELSE {column} END"
        )
        params.extend([*allowed, prepared])
    task_column = qn(_db_column(tracking, tracking.task_column))
    sql = (
        f"UPDATE {qn(tracking.model._meta.db_table)} SET {', '.join(sets)} WHERE {task_column} = %s"
    )
    return sql, [*params, task_name]


def _apply(
    tracking: Tracking,
    task_name: str,
    changes: Mapping[str, Change],
    update: inserts.Statement | None = None,
) -> bool:
    """Run the UPDATE for ``changes`` (``update`` if built already); True if the record exists
    (rows matched, even unchanged)."""
    statement = update or _update_statement(tracking, task_name, changes, timezone.now())
    if statement is None:  # nothing to write (a model with only task_name): does it exist?
        return tracking.manager().filter(**{tracking.task_column: task_name}).exists()
    with connections[tracking.db].cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount > 0


def _insert(
    tracking: Tracking, task_name: str, changes: Mapping[str, Change]
) -> IntegrityError | None:
    """Create the record. Returns the ``IntegrityError`` if that failed on a unique task column
    (the record exists already, or a required column has no value); ``None`` if created."""
    try:
        with _savepoint_if_atomic(tracking.db):
            inserts.create(_new_record(tracking, task_name, changes), tracking.db)
    except IntegrityError as exc:
        if not tracking.unique_task:
            raise
        return exc
    return None


def _new_record(tracking: Tracking, task_name: str, changes: Mapping[str, Change]) -> Any:
    """The record ``changes`` create (not saved)."""
    values: dict[str, Any] = dict(tracking.create_defaults)
    for column, change in changes.items():
        values[model_field(tracking.model, column).attname] = change.value
    values[tracking.task_column] = task_name
    return tracking.model(**values)


def record_insert(
    tracking: Tracking, task_name: str, changes: Mapping[str, Change]
) -> inserts.Statement | None:
    """The INSERT that creates the record, built now to run later inside a short transaction;
    ``None`` where creating it takes ``save()`` or the task column is not unique (then a
    second record could not be told from the first)."""
    if not tracking.unique_task or not inserts.saves_by_insert(tracking.model):
        return None
    return inserts.insert_statement([_new_record(tracking, task_name, changes)], tracking.db)


def write_record(
    tracking: Tracking,
    task_name: str,
    changes: Mapping[str, Change],
    *,
    insert_first: bool = False,
    create: bool = True,
    update: inserts.Statement | None = None,
) -> str:
    """Apply ``changes`` in one UPDATE, or create the record; returns ``"updated"``,
    ``"inserted"``, or ``"missing"`` (no record and ``create`` is false).

    ``insert_first`` (a ``create`` event, unique task column, no open transaction) tries the
    INSERT first, so the usual launch costs one statement instead of two. ``update``: that
    UPDATE as ``record_update`` built it before the transaction.
    """
    error: IntegrityError | None = None
    with _savepoint_if_atomic(tracking.db):
        if insert_first and tracking.unique_task and not in_callers_transaction(tracking.db):
            error = _insert(tracking, task_name, changes)
            if error is None:
                return "inserted"
        if _apply(tracking, task_name, changes, update):
            return "updated"
        if not create:
            return "missing"
        if error is None:
            error = _insert(tracking, task_name, changes)
            if error is None:
                return "inserted"
            # Created by another process between our UPDATE and INSERT: apply on top of it.
            if _apply(tracking, task_name, changes):
                return "updated"
    raise RecordWriteError(
        f"the record of task {task_name} could be neither updated nor created: {error}"
    ) from error


def trim_timeline(task_name: str, limit: int) -> int:
    """Delete the oldest ``progress`` rows beyond the newest ``limit`` rows (one DELETE)."""
    from ..models import TaskEvent

    db = router.db_for_write(TaskEvent)
    newest = TaskEvent.objects.using(db).filter(task_name=task_name).order_by("-id").values("id")
    cutoff = Subquery(newest[limit - 1 : limit])
    deleted, _ = (
        TaskEvent.objects.using(db)
        .filter(task_name=task_name, event="progress", id__lt=cutoff)
        .delete()
    )
    return deleted


def timeline_db() -> str:
    """The database timeline rows are written to."""
    from ..models import TaskEvent

    return router.db_for_write(TaskEvent)


def insert_rows(rows: list[Any]) -> None:
    """The timeline rows as one INSERT (``TaskEvent`` is the package's own table)."""
    db = timeline_db()
    with _savepoint_if_atomic(db):
        inserts.insert_objects(rows, db)


def rows_insert(rows: list[Any]) -> inserts.Statement:
    """``insert_rows``'s INSERT, built now to run later on ``timeline_db()``."""
    return inserts.insert_statement(rows, timeline_db())


def record_update(
    tracking: Tracking, task_name: str, changes: Mapping[str, Change]
) -> inserts.Statement | None:
    """``write_record``'s UPDATE, built now to run later (``None``: nothing to set)."""
    return _update_statement(tracking, task_name, changes, timezone.now())


def run(using: str, statement: inserts.Statement) -> None:
    """Run a statement built earlier by ``record_insert`` or ``rows_insert``."""
    inserts.execute(using, statement)


def keyset_pages(
    queryset: models.QuerySet[Any], batch_size: int, *fields: str
) -> Iterator[list[dict[str, Any]]]:
    """``queryset``'s rows (``pk`` plus ``fields``) in pages walking the primary key forward, so
    each row is read once and a table of millions is crossed in linear time."""
    base = queryset.order_by("pk")
    last_pk: Any = None
    while True:
        page = base.filter(pk__gt=last_pk) if last_pk is not None else base
        rows = list(page.values("pk", *fields)[:batch_size])
        if not rows:
            return
        last_pk = rows[-1]["pk"]
        yield rows
