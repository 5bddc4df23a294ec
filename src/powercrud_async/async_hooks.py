"""django-q2 glue: the completion hook and the ``post_execute`` receiver.

Both are safety nets: the runner finishes a job itself in its ``finally``. These catch the cases it
cannot reach (a timeout that killed the worker process, a crash after the function returned),
and completion stays exactly-once because finishing is a compare-and-set.
"""

from __future__ import annotations

import logging
from typing import Any

from .async_manager import AsyncManager
from .queue import RUNNER_PATH

__all__ = ["task_completion_hook"]

logger = logging.getLogger("powercrud_async.hooks")


def _manager_for(func: Any, args: Any) -> AsyncManager | None:
    """The manager a job launched through ``AsyncManager`` ran under; ``None`` for other jobs."""
    envelope = args[0] if isinstance(args, (list, tuple)) and args else None
    if func != RUNNER_PATH or not isinstance(envelope, dict) or "task_name" not in envelope:
        return None
    return AsyncManager.resolve_manager(envelope.get("manager_class"), envelope.get("manager_config"))


def task_completion_hook(task: Any) -> None:
    """The ``hook`` every job is launched with (called by django-q2 with its ``Task``).

    A success means the runner returned, so its ``finally`` already finished the task: nothing to
    resolve or read. A failure may be one the runner never reached (a timeout killed the worker).
    """
    manager = None if task.success else _manager_for(task.func, task.args)
    if manager is None:
        return
    try:
        manager.handle_task_completion(task)
    except Exception:
        logger.exception("Completing task %s from django-q2's hook failed", task.name)


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
