"""Acting on one task from outside it: cancel, retry, release its locks, and end it from
django-q2's failure report. Each is a compare-and-set on the task as it was read."""

from __future__ import annotations

from typing import Any

from .. import broker
from ..callables import loads_call
from ..exceptions import TaskNotRetryable, TaskStillLive, UnknownTask
from ..statuses import TaskStatus
from ..stores import get_store
from . import reservations
from .finish import Outcome, finish
from .liveness import judged, liveness
from .protocol import Manager


def cancel(manager: Manager, task_key: str, reason: str) -> str:
    """See ``AsyncManager.cancel_task``."""
    store = get_store()
    info = store.get(task_key)
    if info is None:
        raise UnknownTask(f"No task with key {task_key!r}.")
    if info.status == TaskStatus.PENDING:
        broker.remove_queued(task_key)
        # Only while still queued: a job a worker started meanwhile is asked to stop instead.
        if finish(
            manager,
            task_key,
            Outcome(TaskStatus.CANCELLED, reason=reason),
            expect={"status": TaskStatus.PENDING},
        ):
            return "cancelled"
        info = store.get(task_key) or info  # it started meanwhile: ask it to stop
    if info.status == TaskStatus.IN_PROGRESS and store.update(
        task_key, only_statuses=[TaskStatus.IN_PROGRESS], cancel_requested=True
    ):
        return "requested"
    return "finished"


def retry(manager: Manager, task_key: str, user: Any) -> str:
    """See ``AsyncManager.retry_task``."""
    info = get_store().get(task_key)
    if info is None:
        raise UnknownTask(f"No task with key {task_key!r} (it may have been purged).")
    if info.is_active:
        raise TaskNotRetryable(f"Task {task_key} is still {info.status}; cancel it first.")
    call = loads_call(info.call)
    if call is None or not info.func_path:
        raise TaskNotRetryable(f"Task {task_key} kept no callable or arguments to run again.")
    args, kwargs = call
    owner = manager.resolve_manager(info.manager_class or None, info.manager_config)
    return owner.launch_async_task(
        info.func_path,
        *args,
        conflict_ids=info.conflict_ids or None,
        user=user,
        task_kwargs=kwargs,
        group=info.group or None,
        retry_of=task_key,
        task_label=info.label or None,
    )


def release_locks(manager: Manager, task_key: str, reason: str) -> int:
    """See ``AsyncManager.release_task_locks``."""
    store = get_store()
    info = store.get(task_key)
    if info is not None and info.is_active:
        alive, why = liveness(info)
        if alive:
            raise TaskStillLive(f"Task {task_key} is {why}; its locks stay until it ends.")
        count = len(store.locks(task_name=task_key))
        if not finish(
            manager,
            task_key,
            Outcome(TaskStatus.FAILED, error=reason, reason=reason),
            expect=judged(info),
        ):
            # It moved since it was judged dead (a new attempt took over, or it ended).
            now = store.get(task_key)
            if now is not None and now.is_active:
                raise TaskStillLive(
                    f"Task {task_key} changed while its locks were being "
                    "released (a new attempt took it over); they stay."
                )
            return 0
        return count
    reservations.forget([task_key])
    return store.release(task_key)


def fail_from_report(manager: Manager, task_name: str, result: Any) -> bool:
    """End a still-active task ``failed`` from django-q2's failure report (a timeout may have
    killed the worker before its runner could), as a compare-and-set on the attempt read here."""
    info = get_store().get(task_name)
    if info is None or not info.is_active:
        return False
    error = str(result) if result is not None else "The worker failed"
    first_line = error.split(" : ")[0].strip() or error
    outcome = Outcome(TaskStatus.FAILED, error=first_line, traceback=error, reason=first_line)
    return finish(manager, task_name, outcome, info=info, expect=judged(info))
