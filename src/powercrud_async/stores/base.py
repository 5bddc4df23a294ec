"""The store contract shared by the database and Redis implementations."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..conflicts import LockKey
from ..statuses import TaskStatus

#: Fields of TaskInfo that ``update``/``transition`` may change.
MUTABLE_FIELDS = frozenset(
    {
        "status",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "cancel_requested",
        "attempts",
        "reason",
        "events_due",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInfo:
    """A registry row: what was launched, by whom, under which manager, and where it stands."""

    task_name: str
    status: str = TaskStatus.PENDING
    func_path: str = ""
    call: bytes | None = None
    manager_class: str = ""
    manager_config: dict[str, Any] | None = None
    user_id: str | None = None
    conflict_ids: dict[str, list[str]] = field(default_factory=dict)
    group: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    attempts: int = 0
    reason: str = ""
    retry_of: str = ""
    #: What a person calls the job ("Reprice 6 books"); the key stays its id.
    label: str = ""
    #: Ended, and its final lifecycle events not yet confirmed delivered: set in the same step
    #: that ends the task, cleared once the events went out, so cleanup can send them again
    #: for a worker that died in between.
    events_due: bool = False

    @property
    def is_active(self) -> bool:
        return self.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    model_label: str
    object_pk: str
    task_name: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LockRequest:
    """One ``acquire`` call, normalised: keys, adopted names and re-entered keys sorted."""

    task_name: str
    keys: list[LockKey]
    ttl: float
    adopt: list[str]
    register: TaskInfo | None
    reenter: list[LockKey] | None


@dataclass(frozen=True, slots=True)
class RowChange:
    """One compare-and-set write of a registry row: ``changes`` (``status`` among them for a
    transition) only while the status is one of ``statuses`` (``None``: any; ``[]``: none
    matches) and each field in ``expect`` still has the value given."""

    task_name: str
    statuses: list[str] | None
    changes: dict[str, Any]
    expect: Mapping[str, Any]


def _row_change(
    task_name: str,
    statuses: list[str] | None,
    changes: dict[str, Any],
    expect: Mapping[str, Any] | None,
    to_status: str | None = None,
) -> RowChange:
    unknown = (set(changes) | set(expect or ())) - MUTABLE_FIELDS
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))} of a registered task.")
    if to_status is not None:
        changes = {"status": to_status, **changes}
    return RowChange(task_name, statuses, changes, dict(expect or {}))


class TaskStore(abc.ABC):
    """Locks plus the live-task registry. Every method is atomic; transient failures are retried
    a bounded number of times and then raise ``LockStoreUnavailable`` (never a false conflict)."""

    # -- locks -------------------------------------------------------------------------------
    def acquire(
        self,
        task_name: str,
        keys: Sequence[LockKey],
        ttl: float,
        *,
        adopt: Collection[str] = (),
        register: TaskInfo | None = None,
        reenter: Collection[LockKey] | None = None,
    ) -> dict[LockKey, str]:
        """Lock every key for ``task_name`` or none of them.

        Keys held by ``task_name`` already are fine (re-entrant) and get the new expiry, so
        re-adding a lock you hold renews it; with ``reenter``, only those keys may be held
        already (another holder of the same name, say a reservation made in another request
        under a fixed name, is a conflict); keys held by a name in
        ``adopt`` change owner; an expired lock whose owner is not an active task is reclaimed.
        With ``register``, the registry row is inserted in the same atomic step.
        Returns ``{}`` on success, else ``{key: holder}`` of the conflicts (nothing changed).
        """
        request = LockRequest(
            task_name=task_name,
            keys=sorted(set(keys)),
            ttl=ttl,
            adopt=sorted(set(adopt)),
            register=register,
            reenter=None if reenter is None else sorted(set(reenter)),
        )
        if not request.keys and register is None:
            return {}
        return self._lock(request)

    def prepare_register(
        self, info: TaskInfo, keys: Sequence[LockKey], ttl: float
    ) -> Callable[[], bool] | None:
        """What ``acquire(info.task_name, keys, ttl, register=info)`` writes when every key is
        free, built now so that it runs later inside the caller's short transaction; ``None``
        where this store offers no such path. The call returns False if a key is taken: the
        caller rolls back and calls ``acquire``, which sorts that case out."""
        return None

    @abc.abstractmethod
    def _lock(self, request: LockRequest) -> dict[LockKey, str]:
        """``acquire`` with its arguments normalised (sorted, deduplicated)."""

    @abc.abstractmethod
    def holders(self, keys: Sequence[LockKey]) -> dict[LockKey, str]:
        """Current (unexpired or still-owned) holder of each locked key among ``keys``."""

    def holds_all(self, task_name: str, keys: Sequence[LockKey]) -> bool:
        """Whether ``task_name`` (a running task) holds every one of ``keys``: what a job checks
        before its body runs. Stores with a cheaper single read override this."""
        held = self.holders(keys)
        return all(held.get(key) == task_name for key in keys)

    @abc.abstractmethod
    def release(self, task_name: str) -> int:
        """Release every lock ``task_name`` holds; returns how many."""

    @abc.abstractmethod
    def release_expired(self, task_name: str) -> int:
        """Release ``task_name``'s expired locks unless it is a queued or running task, in one
        atomic step: a launch that registers the name or renews its locks meanwhile keeps them.
        Returns how many were released."""

    @abc.abstractmethod
    def renew(self, task_name: str, ttl: float) -> int:
        """Push the expiry of ``task_name``'s locks ``ttl`` seconds into the future."""

    @abc.abstractmethod
    def locks(
        self,
        *,
        task_name: str | None = None,
        model_label: str | None = None,
        object_pk: str | None = None,
    ) -> list[LockInfo]:
        """Locks held now, optionally filtered."""

    @abc.abstractmethod
    def lock_owners(self) -> set[str]:
        """Every task name that holds at least one lock."""

    def lock_counts(self) -> tuple[int, int]:
        """(locks held, distinct task names holding them), expired locks included as in
        ``locks()``: the dashboard's totals, which need no row.

        Stores that can count without reading every lock override this.
        """
        held = self.locks()
        return len(held), len({lock.task_name for lock in held})

    # -- registry ----------------------------------------------------------------------------
    @abc.abstractmethod
    def register(self, info: TaskInfo) -> None:
        """Insert a registry row; a name already present raises ``InvalidTaskName``."""

    @abc.abstractmethod
    def get(self, task_name: str) -> TaskInfo | None: ...

    @abc.abstractmethod
    def get_many(self, task_names: Iterable[str]) -> dict[str, TaskInfo]: ...

    def transition(
        self,
        task_name: str,
        from_statuses: Collection[str],
        to_status: str,
        *,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """Compare-and-set: move to ``to_status`` only from one of ``from_statuses``, and only
        while every field in ``expect`` still has the value given (``{"attempts": 2}``: the
        attempt that was judged is still the one that owns the task)."""
        return self._write(_row_change(task_name, list(from_statuses), changes, expect, to_status))

    def finish(
        self,
        task_name: str,
        from_statuses: Collection[str],
        to_status: str,
        *,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> int | None:
        """``transition`` then ``release`` as one step: ``None`` if the transition lost, else
        how many locks were released."""
        return self._finish(_row_change(task_name, list(from_statuses), changes, expect, to_status))

    def update(
        self,
        task_name: str,
        *,
        only_statuses: Collection[str] = (),
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """Change mutable fields (not the status), optionally only while in ``only_statuses``
        and while the fields in ``expect`` have the values given."""
        if "status" in changes:
            raise ValueError("Use transition() to change a task's status.")
        change = _row_change(task_name, list(only_statuses) or None, changes, expect)
        return bool(change.changes) and self._write(change)  # an empty update changes no row

    def mark_delivered(self, task_names: Collection[str]) -> int:
        """Clear the events-due mark of each of ``task_names`` (their final events went out);
        how many were marked. Stores that can clear many in one round trip override this."""
        return sum(
            self.update(name, expect={"events_due": True}, events_due=False) for name in task_names
        )

    @abc.abstractmethod
    def _write(self, change: RowChange) -> bool:
        """Apply ``change`` as one compare-and-set; whether the row matched."""

    def _finish(self, change: RowChange) -> int | None:
        """``_write`` then ``release``; stores that can do both atomically override this."""
        if not self._write(change):
            return None
        return self.release(change.task_name)

    def beat(self, task_name: str, attempt: int, ttl: float, now: datetime) -> bool:
        """Heartbeat and lock renewal of one attempt: both only while the task is running and
        ``attempt`` is still its attempt (the fencing token). False: superseded or ended.

        Stores that can do both in one atomic step override this.
        """
        if not self.update(
            task_name,
            only_statuses=[TaskStatus.IN_PROGRESS],
            expect={"attempts": attempt},
            heartbeat_at=now,
        ):
            return False
        self.renew(task_name, ttl)
        return True

    @abc.abstractmethod
    def active(self) -> list[TaskInfo]:
        """Every queued or running task."""

    @abc.abstractmethod
    def finished_before(self, when: datetime) -> list[str]:
        """Names of terminal tasks that finished before ``when``."""

    @abc.abstractmethod
    def undelivered(self, when: datetime) -> list[TaskInfo]:
        """Terminal tasks that finished before ``when`` with their final events still due."""

    @abc.abstractmethod
    def delete(self, task_name: str) -> bool: ...
