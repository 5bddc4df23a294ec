"""``AsyncManager``: launch any callable on django-q2 with conflict locks, progress and lifecycle events.

This module is the public facade; the work is done in ``lifecycle`` (``submit``: validate, lock,
register, enqueue; ``finish``: exactly-once ending; ``reclaim``: cleanup; ``liveness``), on
``stores`` (locks, registry), ``progress`` (cache) and ``broker`` (django-q2). ``runner`` runs
a job inside the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.module_loading import import_string

from . import conf, progress
from .compat import PowerCrudSurface
from .conflicts import Normalized, normalize_conflict_ids, originals_by_key, to_keys
from .endpoint import ProgressEndpoint
from .exceptions import (
    ConflictError,
    InvalidManagerClass,
)
from .lifecycle import control, reservations, submit
from .lifecycle.finish import Outcome, mark_delivered
from .lifecycle.finish import finish as end_task
from .progress import ProgressSnapshot
from .statuses import Event, TaskStatus
from .stores import TaskInfo, get_store

__all__ = ["STATUSES", "AsyncManager"]

logger = logging.getLogger("powercrud_async")

STATUSES = TaskStatus
LOCK_OWNER_MAX_LENGTH = 255


@contextmanager
def _handled(task_name: str, marked: bool) -> Iterator[None]:
    """The base ``event_batch``: the events are handled once the block ends."""
    yield
    if marked:
        mark_delivered([task_name])


class _instance_or_class_method:  # noqa: N801
    """Call a method on an instance, or on the class (PowerCRUD calls ``AsyncManager.cleanup_completed_tasks()`` on the class),
    in which case it runs on the project's default manager (or a plain instance of a subclass)."""

    def __init__(self, func: Callable[..., Any]):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: type[AsyncManager]) -> Callable[..., Any]:
        if instance is None:
            instance = owner.resolve_manager(None) if owner is AsyncManager else owner()
        return self.func.__get__(instance, owner)


class AsyncManager(PowerCrudSurface, ProgressEndpoint):
    """Launch jobs under per-object conflict locks, report progress, emit lifecycle events.

    Subclass it and override ``async_task_lifecycle`` to react to events; point
    ``POWERCRUD_SETTINGS["ASYNC_MANAGER_DEFAULT"]`` at the subclass so every launch site, worker
    and hook resolves the same class and config.
    """

    STATUSES: ClassVar[type[TaskStatus]] = TaskStatus

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        self.config: dict[str, Any] = dict(config or {})
        self.config.update(options)

    # -- resolution ------------------------------------------------------------------------
    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @staticmethod
    def default_manager_setting() -> tuple[str | None, dict[str, Any] | None]:
        default = conf.get("ASYNC_MANAGER_DEFAULT") or {}
        return default.get("manager_class"), default.get("config")

    @staticmethod
    def import_class(path: str) -> type[AsyncManager]:
        """The ``AsyncManager`` subclass at dotted ``path``, or ``InvalidManagerClass``."""
        try:
            found = import_string(path)
        except ImportError as exc:
            raise InvalidManagerClass(f"Manager {path!r} cannot be imported ({exc}).") from exc
        if not (isinstance(found, type) and issubclass(found, AsyncManager)):
            raise InvalidManagerClass(f"{path!r} is not an AsyncManager subclass.")
        return found

    @classmethod
    def resolve_manager(
        cls, path: Any = None, config: Mapping[str, Any] | None = None
    ) -> AsyncManager:
        """The manager instance for ``path`` (dotted path, class or instance) and ``config``.

        ``None`` gives the project default. An unimportable path is logged and falls back to the
        default (the system check reports it at startup).
        """
        if isinstance(path, AsyncManager):
            return path
        default_path, default_config = cls.default_manager_setting()
        if path is None:
            path, config = default_path, config if config is not None else default_config
        elif config is None and isinstance(path, str) and path == default_path:
            config = default_config
        if isinstance(path, type) and issubclass(path, AsyncManager):
            return path(config)
        if isinstance(path, str) and path:
            try:
                return cls.import_class(path)(config)
            except InvalidManagerClass as exc:
                logger.error("%s Using the default manager.", exc)
            if path != default_path and default_path:
                return cls.resolve_manager(None)
        return AsyncManager(config)

    # -- lifecycle -----------------------------------------------------------------------------
    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        """Override to react to ``create``, ``start``, ``progress``, ``complete``, ``fail``,
        ``cancel`` and ``cleanup``. The base implementation does nothing."""

    def hears_events(self) -> bool:
        """Whether events go anywhere (``async_task_lifecycle`` is overridden). Only then is a
        job's end kept marked due until its events went out, for cleanup to send them again."""
        return type(self).async_task_lifecycle is not AsyncManager.async_task_lifecycle

    def emit(self, event: str, task_name: str, **payload: Any) -> None:
        """Call ``async_task_lifecycle``; a handler that raises is logged, never propagated.

        Every payload carries ``timestamp`` (when the event was emitted), as PowerCRUD's do.
        """
        payload.setdefault("timestamp", timezone.now())
        try:
            self.async_task_lifecycle(event, task_name, **payload)
        except Exception:
            logger.exception("Lifecycle handler for %r of task %s raised", event, task_name)

    def prepare_within(
        self, using: str, event: str, task_name: str, **payload: Any
    ) -> Callable[[], None] | None:
        """A call that handles ``event`` inside the caller's open transaction on database
        ``using``, to commit or roll back with it (a launch's ``create``), or ``None`` if this
        manager cannot: the caller then emits it after commit. Prepared before the transaction,
        so the work inside is only the writes. Only a handler whose every effect is a write to
        ``using`` may: the transaction can roll back and run the call again. The call raises on
        failure (the caller rolls back and emits the event after commit)."""
        return None

    def event_batch(self, task_name: str, *, marked: bool = False) -> AbstractContextManager[None]:
        """Events emitted inside belong together (a job's end and its clean-up); a subclass that
        persists events may write them together when the block ends, or later with other jobs'.
        ``marked``: the end is marked due in the registry; the mark is cleared once the events
        are handled (here: when the block ends)."""
        return _handled(task_name, marked)

    # -- locks ------------------------------------------------------------------------------------
    def add_conflict_ids(self, task_name: str, conflict_ids: Any) -> bool:
        """Lock every object for ``task_name``, or none and return ``False``.

        Re-entrant for a running task adding locks under its own key, and for a reservation
        this request (thread or asyncio task) made; objects another request reserved under the
        same name are a conflict, so two requests using one fixed name never share rows.
        """
        task_name = submit.validate_name(task_name, "task_name", LOCK_OWNER_MAX_LENGTH)
        normalized = normalize_conflict_ids(conflict_ids)
        keys = to_keys(normalized)
        if not keys:
            return True
        store = get_store()
        info = store.get(task_name)
        reenter = None if info is not None and info.is_active else reservations.reserved(task_name)
        if store.acquire(task_name, keys, conf.get("CONFLICT_TTL"), reenter=reenter):
            return False
        reservations.remember(task_name, keys)
        return True

    def acquire_or_raise(self, task_name: str, normalized: Normalized) -> None:
        """Lock already-normalised ids for ``task_name`` or raise ``ConflictError`` naming holders."""
        keys = to_keys(normalized)
        if not keys:
            return
        conflicts = get_store().acquire(task_name, keys, conf.get("CONFLICT_TTL"))
        if conflicts:
            raise ConflictError(submit.group_conflicts(conflicts))

    def check_conflict(self, object_data: Any, task_name: str | None = None) -> set[Any]:
        """The ids of ``object_data`` (``{"app.Model": [pk, ...]}``) that are locked, exactly as
        given (``1 in check_conflict({"app.Book": [1, 2]})``). Locks held by ``task_name`` do not
        count. ``get_conflict_holders`` names the holders."""
        given = originals_by_key(object_data)
        return {
            pk
            for key, holder in get_store().holders(list(given)).items()
            if holder != task_name
            for pk in given[key]
        }

    def get_conflict_holders(self, conflict_ids: Any) -> dict[str, dict[str, str]]:
        """``{label: {pk: holding task}}`` for every given object that is locked."""
        keys = to_keys(normalize_conflict_ids(conflict_ids))
        return submit.group_conflicts(get_store().holders(keys))

    def remove_conflict_ids(self, task_name: str, conflict_ids: Any = None) -> int:
        """Release every lock ``task_name`` holds; returns how many. ``conflict_ids`` is accepted
        (and ignored) for code written against PowerCRUD, which ignores it too."""
        reservations.forget([task_name])
        return get_store().release(task_name)

    # -- launching --------------------------------------------------------------------------------
    def launch_async_task(
        self,
        func: Callable[..., Any] | str,
        *args: Any,
        conflict_ids: Any = None,
        user: Any = None,
        affected_objects: Any = None,
        task_key: str | None = None,
        group: str | None = None,
        timeout: int | None = None,
        sync: bool | None = None,
        q_options: Mapping[str, Any] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        retry_of: str = "",
        cached: bool | int | None = None,
        broker: Any = None,
        task_label: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Validate, lock, register, enqueue, emit ``create``; returns the task key.

        ``task_label`` is what a person calls the job ("Reprice 6 books"): the dashboard's title
        for it, kept by a retry. It is never passed to the job.

        ``sync=None`` follows django-q2's ``Q_CLUSTER["sync"]``; a sync job runs here, through
        the same runner, locks and records, and its exception (if it fails) is re-raised here
        after the task has been recorded ``failed`` and its locks released. ``cached``,
        ``broker`` and a ``save`` keyword go to django-q2 (as in PowerCRUD), not to the worker.

        Raises ``ConflictError`` if another task holds any object (nothing is locked or queued),
        a ``ValueError``/``TypeError``/``LookupError`` subclass for bad input, and ``EnqueueError``
        if django-q2 refuses the job (everything acquired is rolled back).
        """
        q_options = submit.django_q_options(q_options, cached=cached, broker=broker, kwargs=kwargs)
        return submit.launch(
            self,
            submit.Launch(
                func=func,
                args=args,
                kwargs=kwargs,
                conflict_ids=conflict_ids,
                user=user,
                affected_objects=affected_objects,
                task_key=task_key,
                group=group,
                timeout=timeout,
                sync=sync,
                q_options=q_options,
                task_kwargs=task_kwargs,
                retry_of=retry_of,
                task_label=task_label,
            ),
        )

    def schedule_async_task(
        self,
        func: Callable[..., Any] | str,
        *args: Any,
        name: str,
        schedule_type: str = "O",
        minutes: int | None = None,
        cron: str | None = None,
        repeats: int = -1,
        next_run: Any = None,
        conflict_ids: Any = None,
        user: Any = None,
        affected_objects: Any = None,
        manager_class: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Create a django-q2 ``Schedule`` (same keywords and ``schedule_type`` codes as
        ``django_q.tasks.schedule``) whose every run launches through this manager.

        A run whose objects are locked by another task is recorded and skipped; the schedule
        runs again at its next time. Raises ``InvalidSchedule`` (and the launch errors for a bad
        ``func`` or ``conflict_ids``) before anything is written.
        """
        from .lifecycle.recurring import create_schedule
        from .lifecycle.triggers import Trigger

        return create_schedule(
            self,
            func,
            args,
            kwargs,
            name=name,
            trigger=Trigger(
                schedule_type=schedule_type,
                minutes=minutes,
                cron=cron,
                repeats=repeats,
                next_run=next_run,
            ),
            conflict_ids=conflict_ids,
            user=user,
            affected_objects=affected_objects,
            manager_class=manager_class,
        )

    # -- progress ------------------------------------------------------------------------------
    def update_progress(
        self,
        task_key: str,
        message: str,
        *,
        current: float | None = None,
        total: float | None = None,
    ) -> None:
        """Record the latest progress of ``task_key``, coalesced to one cache write per
        ``PROGRESS_WRITE_INTERVAL`` (inside a running job and outside one alike).

        Raises ``TaskCancelled`` inside a job that was asked to cancel, ``InvalidProgress`` for
        a message that is not text or numbers that are not finite, and ``UnknownTask`` for a key
        that was never launched (or is already purged); nothing is written then.
        """
        progress.report(task_key, message, current, total, self._emit_progress)

    def _emit_progress(self, snapshot: ProgressSnapshot) -> None:
        self.emit(
            Event.PROGRESS,
            snapshot.task_name,
            status=TaskStatus.IN_PROGRESS,
            message=snapshot.message,
            progress={
                "message": snapshot.message,
                "current": snapshot.current,
                "total": snapshot.total,
                "percent": snapshot.percent,
            },
            progress_payload=snapshot.message,  # the key PowerCRUD handlers read
            percent=snapshot.percent,
        )

    def get_progress(self, task_key: str) -> dict[str, Any] | None:
        """The latest progress snapshot of ``task_key`` as a dict, or ``None``."""
        snapshot = (
            progress.buffer.latest(task_key)
            or progress.outside.latest(task_key)
            or progress.resolve(task_key)
        )
        return snapshot.as_dict() if snapshot else None

    def get_status(self, task_key: str) -> str:
        """One of ``STATUSES`` (``unknown`` for a key we never saw or already purged)."""
        snapshot = progress.resolve(task_key)
        return snapshot.status if snapshot else TaskStatus.UNKNOWN

    # -- registry ----------------------------------------------------------------------------------
    def get_active_tasks(self) -> set[str]:
        """Keys of every queued or running task."""
        return {info.task_name for info in get_store().active()}

    def is_active_task(self, task_key: str) -> bool:
        info = get_store().get(task_key)
        return bool(info and info.is_active)

    def get_task_info(self, task_key: str) -> TaskInfo | None:
        return get_store().get(task_key)

    def remove_active_task(self, task_key: str) -> bool:
        """Forget a task: its registry row, its locks and its progress. True if it was known."""
        store = get_store()
        known = store.delete(task_key)
        released = store.release(task_key)
        progress.delete(task_key)
        return bool(known or released)

    # -- completion ---------------------------------------------------------------------------------
    def finish(
        self,
        task_name: str,
        status: TaskStatus,
        *,
        result: Any = None,
        error: str = "",
        traceback: str = "",
        reason: str = "",
        info: TaskInfo | None = None,
        expect: Mapping[str, Any] | None = None,
    ) -> bool:
        """End a task exactly once (compare-and-set from queued/running).

        The caller that wins releases the locks and the progress entry (the registry row now
        answers for the task) and emits ``complete``/``fail``/``cancel`` then ``cleanup``.
        Everyone else gets ``False``. ``info`` spares a read when the caller has the row;
        ``expect`` (``{"attempts": 2, "heartbeat_at": ...}``) ends it only if those fields are
        still what the caller judged, so a task taken over since is left to its new attempt.
        """
        outcome = Outcome(TaskStatus(status), result, error, traceback, reason)
        return end_task(self, task_name, outcome, info=info, expect=expect)

    def handle_task_completion(self, task: Any, task_name: str | None = None) -> bool:
        """What django-q2's hook calls with its ``Task`` (and, as PowerCRUD does, the task key):
        finish the job if the runner could not. Override it (either signature) to act on every
        completion; call ``super()`` to keep the safety net.

        Returns True if this call finished the task (it was still queued or running).
        """
        name = str(task.name) if task_name is None else task_name
        return self.complete_from_broker(name, bool(task.success), task.result)

    def complete_from_broker(self, task_name: str, success: bool, result: Any) -> bool:
        """Finish a job from django-q2's report of it.

        A successful report means the runner returned normally, so its ``finally`` already
        finished the task: nothing to do, no query. A failure may mean the runner never got there
        (a timeout killed the worker process), so the task is ended ``failed`` if still active,
        as a compare-and-set on the attempt read here: an attempt that took over since is left
        alone.
        """
        return False if success else control.fail_from_report(self, task_name, result)

    # -- cancellation --------------------------------------------------------------------------------
    def cancel_task(self, task_key: str, *, reason: str = "Cancelled") -> str:
        """Cancel a queued or running task.

        Returns ``"cancelled"`` (a queued job: it ended now and will not run, even if a worker
        already claimed it), ``"requested"`` (running: it stops at its next progress call) or
        ``"finished"`` (nothing to cancel). Raises ``UnknownTask``.
        """
        return control.cancel(self, task_key, reason)

    def retry_task(self, task_key: str, *, user: Any = None) -> str:
        """Launch a finished task again: same callable, arguments, locks and manager.

        The new task's ``retry_of`` names the original. Raises ``UnknownTask`` or
        ``TaskNotRetryable`` (still live, or its arguments could not be kept).
        """
        return control.retry(self, task_key, user)

    def release_task_locks(
        self, task_key: str, *, reason: str = "Locks released by an operator"
    ) -> int:
        """Free the locks of a task that is dead, finished, or only a reservation.

        A task still queued in the broker or running with a live heartbeat is refused with
        ``TaskStillLive``. A dead task is ended ``failed`` with ``reason`` first.
        """
        return control.release_locks(self, task_key, reason)

    # -- cleanup -------------------------------------------------------------------------------------
    @_instance_or_class_method
    def cleanup_completed_tasks(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Reconcile the registry with django-q2 and reclaim what dead workers left behind.

        Never touches a task still in the broker or running with a live heartbeat.
        """
        from .lifecycle.reclaim import run_cleanup

        return run_cleanup(self, dry_run=dry_run)

    def cleanup_dashboard_data(self, task_name: str) -> int:
        """Override to remove extra artefacts of a purged task; return how many were removed."""
        return 0
