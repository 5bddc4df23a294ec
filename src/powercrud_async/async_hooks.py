"""django-q2 glue: the completion hook and the ``post_execute`` receiver.

Both are safety nets: the runner finishes a job itself in its ``finally``. These catch the cases it
cannot reach (a timeout that killed the worker process, a crash after the function returned),
and completion stays exactly-once because finishing is a compare-and-set.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from .async_manager import AsyncManager
from .broker import RUNNER_PATH

__all__ = ["progress_update_decorator", "task_completion_hook"]

logger = logging.getLogger("powercrud_async.hooks")

F = TypeVar("F", bound=Callable[..., Any])


def _envelope(func: Any, args: Any) -> dict[str, Any] | None:
    """The runner's envelope of a job launched through ``AsyncManager``; ``None`` for other jobs."""
    envelope = args[0] if isinstance(args, (list, tuple)) and args else None
    if func != RUNNER_PATH or not isinstance(envelope, dict) or "task_name" not in envelope:
        return None
    return envelope


def _manager_for(func: Any, args: Any) -> AsyncManager | None:
    """The manager a job launched through ``AsyncManager`` ran under; ``None`` for other jobs."""
    envelope = _envelope(func, args)
    if envelope is None:
        return None
    return AsyncManager.resolve_manager(
        envelope.get("manager_class"), envelope.get("manager_config")
    )


@lru_cache(maxsize=256)
def _class_overrides_completion(path: str | None, default_path: str | None) -> bool:
    manager_cls = type(AsyncManager.resolve_manager(path, {}))
    return manager_cls.handle_task_completion is not AsyncManager.handle_task_completion


def _overrides_completion(envelope: dict[str, Any]) -> bool:
    """Whether the job's manager class has its own ``handle_task_completion`` (cached per class
    path, so a successful job without one costs the hook nothing but this lookup)."""
    default_path, _ = AsyncManager.default_manager_setting()
    return _class_overrides_completion(envelope.get("manager_class") or None, default_path)


@lru_cache(maxsize=256)
def _takes_task_name(method: Any) -> bool:
    """``handle_task_completion(task, task_name)`` (ours, PowerCRUD's) or an older ``(task)``."""
    try:
        inspect.signature(method).bind(None, None, None)
    except TypeError:
        return False
    return True


def call_completion(manager: AsyncManager, task: Any) -> Any:
    """Call the manager's ``handle_task_completion`` with the arguments its signature takes."""
    if _takes_task_name(type(manager).handle_task_completion):
        return manager.handle_task_completion(task, str(task.name))
    return manager.handle_task_completion(task)


def task_completion_hook(task: Any) -> None:
    """The ``hook`` every job is launched with (called by django-q2 with its ``Task``).

    A failure may be one the runner never reached (a timeout killed the worker), so the manager
    always hears of it. A success means the runner's ``finally`` already finished the task: only
    a manager that overrides ``handle_task_completion`` (as PowerCRUD projects do, to act on every
    completion) is resolved and called; otherwise the hook returns without reading anything.
    """
    envelope = _envelope(task.func, task.args)
    if envelope is None or (task.success and not _overrides_completion(envelope)):
        return
    try:
        manager = AsyncManager.resolve_manager(
            envelope.get("manager_class"), envelope.get("manager_config")
        )
        call_completion(manager, task)
    except Exception:
        logger.exception("Completing task %s from django-q2's hook failed", task.name)


def progress_update_decorator(func: F) -> F:
    """Give a worker a ``progress_callback(message)`` keyword that reports under the job it runs
    in (a no-op outside a job). Unlike PowerCRUD's, it needs no ``task_name`` keyword: the runner's
    task context knows the job."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["progress_callback"] = _report_progress
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _report_progress(message: str) -> None:
    from .async_context import update_progress

    update_progress(message)


def on_post_execute(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """``django_q.signals.post_execute`` receiver for the failures django-q2 saves no ``Task`` row
    for (``cached`` jobs), and so sends to no hook."""
    if task.get("success") or not task.get("cached"):
        return
    manager = _manager_for(task.get("func"), task.get("args"))
    if manager is None:
        return
    try:
        manager.complete_from_broker(str(task.get("name")), False, task.get("result"))
    except Exception:
        logger.exception("Completing task %s from post_execute failed", task.get("name"))
