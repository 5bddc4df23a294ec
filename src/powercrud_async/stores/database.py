"""The embedded default store: two tables, atomicity from a unique constraint and transactions.

Acquisition is ``INSERT … ON CONFLICT DO NOTHING`` in canonical key order, in chunks, so locking N
objects costs about N/1000 statements when nothing is in the way; only when a key is taken does it
read the holders, and then it either repairs (own, adopted or reclaimable locks) or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Q
from django.utils import timezone

from .. import inserts
from ..conflicts import LockKey, impossible_name
from ..exceptions import InvalidTaskName
from ..models import LiveTask, TaskLock
from ..statuses import ACTIVE, TaskStatus
from . import sql
from .base import LockInfo, LockRequest, RowChange, TaskInfo, TaskStore
from .retry import retrying

TRANSIENT = (OperationalError,)
#: The holder a conflict names when that transaction has not committed yet, so its task is unknown.
UNCOMMITTED = "(a launch not committed yet)"


class _Conflict(Exception):
    def __init__(self, conflicts: dict[LockKey, str]):
        self.conflicts = conflicts


class DatabaseTaskStore(TaskStore):
    """Locks in ``TaskLock`` (unique on model label + pk), the registry in ``LiveTask``."""

    def __init__(self, using: str | None = None):
        self.using = using or router.db_for_write(TaskLock)

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.using]

    def _run(self, operation: str, func: Any) -> Any:
        return retrying(operation, func, TRANSIENT)

    def _active_names(self, names: Collection[str]) -> set[str]:
        """Which of ``names`` are queued or running: their expired locks still count as held."""
        if not names:
            return set()
        return set(
            LiveTask.objects.using(self.using)
            .filter(task_name__in=names, status__in=ACTIVE)
            .values_list("task_name", flat=True)
        )

    # -- locks -------------------------------------------------------------------------------
    def _lock(self, request: LockRequest) -> dict[LockKey, str]:
        task_name, keys, ttl, register = (
            request.task_name,
            request.keys,
            request.ttl,
            request.register,
        )
        adopt = request.adopt
        allowed = None if request.reenter is None else set(request.reenter)

        def attempt() -> dict[LockKey, str]:
            try:
                with transaction.atomic(using=self.using):
                    if register is not None:
                        self._create_row(register)
                    if keys:
                        with sql.bounded_lock_wait(self.connection):
                            self._acquire(task_name, keys, ttl, set(adopt), allowed)
            except _Conflict as conflict:
                return conflict.conflicts
            except sql.Uncommitted as uncommitted:
                return self._uncommitted_conflicts({task_name, *adopt}, uncommitted.keys)
            except OperationalError as exc:  # a lock wait while adopting or reclaiming rows
                if not sql.lock_not_available(exc):
                    raise
                return self._uncommitted_conflicts({task_name, *adopt}, keys)
            except IntegrityError as exc:  # only the registry insert can collide
                raise self._duplicate(register) from exc
            return {}

        return self._run(f"acquire locks for {task_name}", attempt)

    def _uncommitted_conflicts(self, mine: set[str], keys: Sequence[LockKey]) -> dict[LockKey, str]:
        """Holders of ``keys`` after a lock wait timed out: committed ones by name, the rest
        (written by a transaction still open, so not visible yet) as ``UNCOMMITTED``.
        Never empty: the wait itself proves something is in the way."""
        rows = self._holder_rows(keys, sql.chunk_size(self.connection))
        conflicts = {
            key: rows[key].task_name if key in rows else UNCOMMITTED
            for key in keys
            if key not in rows or rows[key].task_name not in mine
        }
        return conflicts or dict.fromkeys(keys, UNCOMMITTED)

    def _acquire(
        self,
        task_name: str,
        keys: list[LockKey],
        ttl: float,
        adopt: set[str],
        reenter: set[LockKey] | None = None,
    ) -> None:
        now = timezone.now()
        expires = now + timedelta(seconds=ttl)
        conn = self.connection
        size = sql.chunk_size(conn)
        if reenter is None:
            inserted = sum(
                sql.insert_ignore(conn, chunk, task_name, now, expires)
                for chunk in sql.chunks(keys, size)
            )
            if inserted == len(keys):
                return
        # Slow path: some keys are taken (or, with ``reenter``, rows our name already holds must
        # be told apart from rows we insert now: read first). Classify every holder, repair or
        # give up.
        held = self._holder_rows(keys, size)
        conflicts: dict[LockKey, str] = {}
        reclaim: list[TaskLock] = []
        take: list[TaskLock] = []  # our own (re-entrant: renewed) and adopted ones
        owners = {row.task_name for row in held.values()} - {task_name}
        active_owners = self._active_names(owners)
        for key, row in held.items():
            if (
                row.task_name == task_name and (reenter is None or key in reenter)
            ) or row.task_name in adopt:
                take.append(row)
            elif row.expires_at <= now and row.task_name not in active_owners:
                reclaim.append(row)
            else:
                conflicts[key] = row.task_name
        if conflicts:
            raise _Conflict(conflicts)
        # Both statements change only the rows as they were judged (same owner, same expiry):
        # a row another transaction adopted or renewed meanwhile is left alone and conflicts.
        manager = TaskLock.objects.using(self.using)
        for rows in sql.chunks(take, size):
            if manager.filter(sql.as_judged(rows)).update(
                task_name=task_name, expires_at=expires
            ) != len(rows):
                raise _Conflict(self._others(keys, task_name, size, reenter))
        for rows in sql.chunks(reclaim, size):
            manager.filter(sql.as_judged(rows)).delete()
        reclaimed = {row.pk for row in reclaim}
        missing = [key for key in keys if key not in held or held[key].pk in reclaimed]
        got = sum(
            sql.insert_ignore(conn, chunk, task_name, now, expires)
            for chunk in sql.chunks(missing, size)
        )
        if got != len(missing):
            # Someone else committed a lock on one of these keys in the meantime: they won.
            raise _Conflict(self._others(missing, task_name, size, reenter))

    def _others(
        self,
        keys: Sequence[LockKey],
        task_name: str,
        size: int,
        reenter: set[LockKey] | None = None,
    ) -> dict[LockKey, str]:
        """Keys among ``keys`` now held by someone other than ``task_name`` (with ``reenter``,
        also those held under our name that we may not re-enter)."""
        now_held = self._holder_rows(keys, size)
        return {
            k: r.task_name
            for k, r in now_held.items()
            if r.task_name != task_name or (reenter is not None and k not in reenter)
        }

    def _holder_rows(self, keys: Sequence[LockKey], size: int) -> dict[LockKey, TaskLock]:
        by_label: dict[str, list[str]] = {}
        for label, pk in keys:
            by_label.setdefault(label, []).append(pk)
        rows: dict[LockKey, TaskLock] = {}
        for label, pks in by_label.items():
            for chunk in sql.chunks(pks, size):
                for row in TaskLock.objects.using(self.using).filter(
                    model_label=label, object_pk__in=chunk
                ):
                    rows[(row.model_label, row.object_pk)] = row
        return rows

    def holds_all(self, task_name: str, keys: Sequence[LockKey]) -> bool:
        # Its own rows, expired ones included: a running task's expired locks are still its own.
        owned = self._run(
            f"read the locks of {task_name}", lambda: sql.owned_keys(self.connection, task_name)
        )
        return set(keys) <= owned

    def holders(self, keys: Sequence[LockKey]) -> dict[LockKey, str]:
        keys = sorted(set(keys))

        def read() -> dict[LockKey, str]:
            now = timezone.now()
            rows = self._holder_rows(keys, sql.chunk_size(self.connection))
            owners = {r.task_name for r in rows.values() if r.expires_at <= now}
            active = self._active_names(owners)
            return {
                key: row.task_name
                for key, row in rows.items()
                if row.expires_at > now or row.task_name in active
            }

        return self._run("read lock holders", read)

    def release(self, task_name: str) -> int:
        if impossible_name(task_name):
            return 0

        def delete() -> int:
            return sql.delete_locks(self.connection, task_name)

        return self._run(f"release locks of {task_name}", delete)

    def release_expired(self, task_name: str) -> int:
        if impossible_name(task_name):
            return 0
        return self._run(
            f"release expired locks of {task_name}",
            lambda: sql.delete_expired_locks(
                self.connection, task_name, timezone.now(), [str(s) for s in ACTIVE]
            ),
        )

    def renew(self, task_name: str, ttl: float) -> int:
        expires = timezone.now() + timedelta(seconds=ttl)
        return self._run(
            f"renew locks of {task_name}",
            lambda: (
                TaskLock.objects.using(self.using)
                .filter(task_name=task_name)
                .update(expires_at=expires)
            ),
        )

    def locks(
        self,
        *,
        task_name: str | None = None,
        model_label: str | None = None,
        object_pk: str | None = None,
    ) -> list[LockInfo]:
        qs = TaskLock.objects.using(self.using).order_by("acquired_at", "model_label", "object_pk")
        if task_name is not None:
            qs = qs.filter(task_name=task_name)
        if model_label is not None:
            qs = qs.filter(model_label=model_label)
        if object_pk is not None:
            qs = qs.filter(object_pk=object_pk)
        return self._run("list locks", lambda: [sql.to_lock(r) for r in qs])

    def lock_owners(self) -> set[str]:
        return self._run(
            "list lock owners",
            lambda: set(
                TaskLock.objects.using(self.using).values_list("task_name", flat=True).distinct()
            ),
        )

    def lock_counts(self) -> tuple[int, int]:
        """One aggregate instead of loading every lock row."""

        def count() -> tuple[int, int]:
            row = TaskLock.objects.using(self.using).aggregate(
                n=Count("pk"), owners=Count("task_name", distinct=True)
            )
            return int(row["n"] or 0), int(row["owners"] or 0)

        return self._run("count locks", count)

    # -- registry ----------------------------------------------------------------------------
    @staticmethod
    def _row_values(info: TaskInfo) -> dict[str, Any]:
        values = {name: getattr(info, name) for name in sql.INFO_FIELDS}
        if values["created_at"] is None:
            values["created_at"] = timezone.now()
        return values

    @staticmethod
    def _duplicate(info: TaskInfo | None) -> InvalidTaskName:
        name = info.task_name if info else "?"
        return InvalidTaskName(f"A task named {name!r} already exists; task keys must be unique.")

    def prepare_register(
        self, info: TaskInfo, keys: Sequence[LockKey], ttl: float
    ) -> Callable[[], bool] | None:
        """On SQLite, where a transaction holds the one write lock of the whole database, the
        registry row and the lock rows as statements built now, so that the launch's
        transaction only runs them. Elsewhere (or with a registry ``save()`` that does more
        than its INSERT) ``None``: ``acquire`` does the work inside."""
        if self.connection.vendor != "sqlite" or not inserts.saves_by_insert(LiveTask):
            return None
        keys = sorted(set(keys))
        now = timezone.now()
        expires = now + timedelta(seconds=ttl)
        conn = self.connection
        row = inserts.insert_statement([LiveTask(**self._row_values(info))], self.using)
        locks = [
            sql.lock_insert(conn, chunk, info.task_name, now, expires)
            for chunk in sql.chunks(keys, sql.chunk_size(conn))
        ]

        def write() -> bool:
            try:
                inserts.execute(self.using, row)
            except IntegrityError:  # a task of that name exists: acquire() names the error
                return False
            return sum(inserts.execute(self.using, lock) for lock in locks) == len(keys)

        return write

    def _create_row(self, info: TaskInfo) -> None:
        """Insert the registry row of ``info`` (inside the caller's transaction)."""
        inserts.create(LiveTask(**self._row_values(info)), self.using)

    def _insert_task(self, info: TaskInfo) -> None:
        try:
            with transaction.atomic(using=self.using):
                self._create_row(info)
        except IntegrityError as exc:
            raise self._duplicate(info) from exc

    def register(self, info: TaskInfo) -> None:
        self._run(f"register {info.task_name}", lambda: self._insert_task(info))

    def get(self, task_name: str) -> TaskInfo | None:
        if impossible_name(task_name):
            return None

        def read() -> TaskInfo | None:
            row = LiveTask.objects.using(self.using).filter(task_name=task_name).first()
            return sql.to_info(row) if row else None

        return self._run(f"read {task_name}", read)

    def get_many(self, task_names: Iterable[str]) -> dict[str, TaskInfo]:
        names = [name for name in task_names if not impossible_name(name)]
        return self._run(
            "read tasks",
            lambda: {
                r.task_name: sql.to_info(r)
                for r in LiveTask.objects.using(self.using).filter(task_name__in=names)
            },
        )

    def _write(self, change: RowChange) -> bool:
        return bool(
            self._run(f"update {change.task_name}", lambda: sql.update_row(self.connection, change))
        )

    def _finish(self, change: RowChange) -> int | None:
        # Built before the transaction: on SQLite it holds the database's one write lock.
        update = sql.update_statement(self.connection, change)
        if update is None:
            return None
        release = sql.delete_locks_statement(self.connection, change.task_name)

        def both() -> int | None:
            with transaction.atomic(using=self.using):
                if not sql.run(self.connection, update):
                    return None
                return sql.run(self.connection, release)

        return self._run(f"finish {change.task_name}", both)

    def mark_delivered(self, task_names: Collection[str]) -> int:
        names = [name for name in task_names if not impossible_name(name)]
        if not names:
            return 0
        return int(
            self._run(
                "mark final events delivered",
                lambda: (
                    LiveTask.objects.using(self.using)
                    .filter(task_name__in=names, events_due=True)
                    .update(events_due=False)
                ),
            )
        )

    def beat(self, task_name: str, attempt: int, ttl: float, now: Any) -> bool:
        expires = now + timedelta(seconds=ttl)

        def both() -> bool:
            with transaction.atomic(using=self.using):
                beat = RowChange(
                    task_name,
                    [TaskStatus.IN_PROGRESS],
                    {"heartbeat_at": now},
                    {"attempts": attempt},
                )
                if not sql.update_row(self.connection, beat):
                    return False
                TaskLock.objects.using(self.using).filter(task_name=task_name).update(
                    expires_at=expires
                )
                return True

        return bool(self._run(f"heartbeat of {task_name}", both))

    def active(self) -> list[TaskInfo]:
        return self._run(
            "list active tasks",
            lambda: [
                sql.to_info(r)
                for r in LiveTask.objects.using(self.using)
                .filter(status__in=ACTIVE)
                .order_by("created_at")
            ],
        )

    def finished_before(self, when: Any) -> list[str]:
        return self._run(
            "list finished tasks",
            lambda: list(
                LiveTask.objects.using(self.using)
                .exclude(status__in=ACTIVE)
                .filter(Q(finished_at__lt=when) | Q(finished_at__isnull=True, created_at__lt=when))
                .values_list("task_name", flat=True)
            ),
        )

    def undelivered(self, when: Any) -> list[TaskInfo]:
        return self._run(
            "list tasks with events due",
            lambda: [
                sql.to_info(r)
                for r in LiveTask.objects.using(self.using)
                .filter(events_due=True, finished_at__lt=when)
                .exclude(status__in=ACTIVE)
                .order_by("finished_at")
            ],
        )

    def delete(self, task_name: str) -> bool:
        if impossible_name(task_name):
            return False
        return bool(
            self._run(
                f"delete {task_name}",
                lambda: LiveTask.objects.using(self.using).filter(task_name=task_name).delete()[0],
            )
        )
