"""The statements the database store writes out by hand, and the PostgreSQL lock wait around them.

Written out rather than through the ORM where the ORM cannot say it (``INSERT … ON CONFLICT DO
NOTHING`` with a row count) or where query compilation was most of the cost (the registry
``UPDATE`` runs twice per job). Each function takes the connection of the store's database.
Also how rows become the contract's ``TaskInfo`` and ``LockInfo``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, TypeVar, cast

from django.db import OperationalError, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q

from ..conflicts import LockKey
from ..inserts import Statement
from ..models import LiveTask, TaskLock
from .base import LockInfo, RowChange, TaskInfo

T = TypeVar("T")
#: How long acquisition waits, on PostgreSQL, for a lock row that another transaction has
#: written but not committed (a launch inside a caller's ``transaction.atomic()``).
LOCK_WAIT_MS = 100
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout
LOCK_COLUMNS = ("model_label", "object_pk", "task_name", "acquired_at", "expires_at")


class Uncommitted(Exception):
    """A row of ``keys`` is held by a transaction that has not committed within LOCK_WAIT_MS."""

    def __init__(self, keys: Sequence[LockKey]):
        self.keys = keys


def lock_not_available(exc: OperationalError) -> bool:
    """Whether ``exc`` is PostgreSQL giving up a row-lock wait (``lock_timeout``)."""
    cause = exc.__cause__
    return (
        getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    ) == LOCK_NOT_AVAILABLE


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chunk_size(conn: BaseDatabaseWrapper) -> int:
    """Keys per statement: as many as the backend's parameter limit allows, up to 1000."""
    if conn.vendor == "sqlite":
        conn.ensure_connection()
        import sqlite3

        limit = conn.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return max(50, min(1000, limit // 5 - 1))
    return 1000


@contextmanager
def bounded_lock_wait(conn: BaseDatabaseWrapper) -> Iterator[None]:
    """On PostgreSQL, make a lock row held by another open transaction a conflict after
    ``LOCK_WAIT_MS`` instead of a wait until that transaction ends.

    ``SET LOCAL`` lasts to the end of the transaction, so inside a caller's transaction the
    previous value is put back; a failure rolls back our savepoint, which undoes it too.
    SQLite has no row locks to bound: a transaction open elsewhere holds its single write
    lock, and every writer waits for it (up to the busy timeout).
    """
    if conn.vendor != "postgresql":
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
            [f"{LOCK_WAIT_MS}ms"],
        )
        previous = cursor.fetchone()[0]
    yield
    if conn.savepoint_ids:
        with conn.cursor() as cursor:  # inside a caller's transaction: leave it as it was
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def insert_ignore(
    conn: BaseDatabaseWrapper, chunk: Sequence[LockKey], task_name: str, now: Any, expires: Any
) -> int:
    """Insert a lock row per key that has none; returns how many were inserted. A key whose row
    another open transaction holds past the lock wait raises ``Uncommitted``."""
    if conn.vendor not in ("sqlite", "postgresql"):
        manager = TaskLock.objects.using(conn.alias)
        before = manager.filter(task_name=task_name).count()
        manager.bulk_create(
            [
                TaskLock(
                    model_label=label,
                    object_pk=pk,
                    task_name=task_name,
                    acquired_at=now,
                    expires_at=expires,
                )
                for label, pk in chunk
            ],
            ignore_conflicts=True,
        )
        return manager.filter(task_name=task_name).count() - before
    try:
        return _rowcount(conn, *lock_insert(conn, chunk, task_name, now, expires))
    except OperationalError as exc:
        if lock_not_available(exc):
            raise Uncommitted(chunk) from exc
        raise


def lock_insert(
    conn: BaseDatabaseWrapper, chunk: Sequence[LockKey], task_name: str, now: Any, expires: Any
) -> Statement:
    """``INSERT … ON CONFLICT DO NOTHING`` of a lock row per key (SQLite, PostgreSQL): its row
    count is how many keys were free."""
    qn = conn.ops.quote_name
    table = qn(TaskLock._meta.db_table)
    cols = ", ".join(qn(c) for c in LOCK_COLUMNS)
    acquired = conn.ops.adapt_datetimefield_value(now)
    expiry = conn.ops.adapt_datetimefield_value(expires)
    params: list[Any] = []
    for label, pk in chunk:
        params.extend((label, pk, task_name, acquired, expiry))
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
    sql = (
        f"INSERT INTO {table} ({cols}) VALUES {values} "
        f"ON CONFLICT ({qn('model_label')}, {qn('object_pk')}) DO NOTHING"
    )
    return sql, params


def owned_keys(conn: BaseDatabaseWrapper, task_name: str) -> set[tuple[str, str]]:
    """Every key ``task_name`` has a lock row for, expired or not (one indexed read)."""
    qn = conn.ops.quote_name
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn('model_label')}, {qn('object_pk')} FROM {qn(TaskLock._meta.db_table)} "
            f"WHERE {qn('task_name')} = %s",
            [task_name],
        )
        return {(label, pk) for label, pk in cursor.fetchall()}


def delete_locks(conn: BaseDatabaseWrapper, task_name: str) -> int:
    """One statement: no signals or cascades hang off locks."""
    return _rowcount(conn, *delete_locks_statement(conn, task_name))


def delete_locks_statement(conn: BaseDatabaseWrapper, task_name: str) -> Statement:
    """``delete_locks``'s DELETE, built now to run later."""
    qn = conn.ops.quote_name
    return f"DELETE FROM {qn(TaskLock._meta.db_table)} WHERE {qn('task_name')} = %s", [task_name]


def delete_expired_locks(
    conn: BaseDatabaseWrapper, task_name: str, now: Any, active: Sequence[str]
) -> int:
    """One statement, so nothing can register or renew in between: ``task_name``'s locks that
    expired by ``now``, unless ``task_name`` is a queued or running task."""
    qn = conn.ops.quote_name
    locks, tasks = qn(TaskLock._meta.db_table), qn(LiveTask._meta.db_table)
    marks = ", ".join(["%s"] * len(active))
    return _rowcount(
        conn,
        f"DELETE FROM {locks} WHERE {qn('task_name')} = %s AND {qn('expires_at')} <= %s "
        f"AND NOT EXISTS (SELECT 1 FROM {tasks} WHERE {tasks}.{qn('task_name')} = %s "
        f"AND {tasks}.{qn('status')} IN ({marks}))",
        [task_name, conn.ops.adapt_datetimefield_value(now), task_name, *active],
    )


def update_row(conn: BaseDatabaseWrapper, change: RowChange) -> int:
    """``UPDATE … SET changes WHERE task_name = … [AND status IN statuses] [AND field = value
    for each expected field]``: one statement (``statuses=None``: any status; an empty list
    matches nothing)."""
    statement = update_statement(conn, change)
    return 0 if statement is None else _rowcount(conn, *statement)


def update_statement(conn: BaseDatabaseWrapper, change: RowChange) -> Statement | None:
    """``update_row``'s UPDATE, built now to run later; ``None`` if it could match nothing."""
    task_name, statuses, changes, expect = (
        change.task_name,
        change.statuses,
        change.changes,
        change.expect,
    )
    if statuses is not None and not statuses:
        return None
    qn = conn.ops.quote_name
    sets, params = [], []
    for name, value in changes.items():
        column, prepared = _column_value(conn, name, value)
        sets.append(f"{column} = %s")
        params.append(prepared)
    sql = f"UPDATE {qn(LiveTask._meta.db_table)} SET {', '.join(sets)} WHERE {qn('task_name')} = %s"
    params.append(task_name)
    if statuses is not None:
        sql += f" AND {qn('status')} IN ({', '.join(['%s'] * len(statuses))})"
        params.extend(statuses)
    for name, value in expect.items():
        column, prepared = _column_value(conn, name, value)
        if value is None:
            sql += f" AND {column} IS NULL"
        else:
            sql += f" AND {column} = %s"
            params.append(prepared)
    return sql, params


def _column_value(conn: BaseDatabaseWrapper, name: str, value: Any) -> tuple[str, Any]:
    """The quoted column of ``LiveTask.<name>`` and ``value`` as the database takes it."""
    field = cast(models.Field, LiveTask._meta.get_field(name))
    return conn.ops.quote_name(cast(str, field.column)), field.get_db_prep_save(value, conn)


def run(conn: BaseDatabaseWrapper, statement: Statement) -> int:
    """Run a statement built earlier; returns how many rows it changed."""
    return _rowcount(conn, *statement)


def _rowcount(conn: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> int:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


INFO_FIELDS = [f.name for f in fields(TaskInfo)]


def to_info(row: LiveTask) -> TaskInfo:
    """A registry row as the store contract hands it out."""
    values = {name: getattr(row, name) for name in INFO_FIELDS}
    values["call"] = bytes(row.call) if row.call is not None else None
    values["conflict_ids"] = row.conflict_ids or {}
    values["user_id"] = row.user_id
    return TaskInfo(**values)


def as_judged(rows: Sequence[TaskLock]) -> Q:
    """Rows whose owner and expiry are still those that were read: a compare-and-set."""
    match = Q(pk__in=[])
    for row in rows:
        match |= Q(pk=row.pk, task_name=row.task_name, expires_at=row.expires_at)
    return match


def to_lock(row: TaskLock) -> LockInfo:
    """A lock row as the store contract hands it out."""
    return LockInfo(
        model_label=row.model_label,
        object_pk=row.object_pk,
        task_name=row.task_name,
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
    )
