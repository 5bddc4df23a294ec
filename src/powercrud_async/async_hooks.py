"""django-q2 glue: the completion hook and the ``post_execute`` receiver.

Both are safety nets: the runner finishes a job itself in its ``finally``. These catch the cases it
cannot reach (a timeout that killed the worker process, a crash after the function returned),
and completion stays exactly-once because finishing is a compare-and-set.
"""

from __future__ import annotations

import logging
from typing import Any

from .async_manager import AsyncManager
from .queue import HOOK_PATH, RUNNER_PATH

__all__ = ["task_completion_hook"]

logger = logging.getLogger("powercrud_async.hooks")


def _envelope(args: Any) -> dict[str, Any] | None:
    if isinstance(args, (list, tuple)) and args and isinstance(args[0], dict) and "task_name" in args[0]:
        return args[0]
    return None


def _complete(func: Any, args: Any, name: Any, success: bool, result: Any) -> bool:
    envelope = _envelope(args)
    if func != RUNNER_PATH or envelope is None or success:
        return False  # on success the runner returned, so its ``finally`` finished the task
    manager = AsyncManager.resolve_manager(envelope.get("manager_class"), envelope.get("manager_config"))
    try:
        return manager.complete_from_broker(str(envelope["task_name"]), success, result)
    except Exception:
        logger.exception("Completing task %s from django-q2 failed", name)
        return False


def task_completion_hook(task: Any) -> None:
    """The ``hook`` every job is launched with (called by django-q2 with its ``Task``)."""
    _complete(task.func, task.args, task.name, bool(task.success), task.result)


def _hook_fired(task: dict[str, Any]) -> bool:
    """Whether django-q2 saved a ``Task`` row for this result, so our hook already ran."""
    from django_q.conf import Conf

    if task.get("hook") != HOOK_PATH or task.get("cached"):
        return False
    return not task.get("success") or (task.get("save", True) is not False and Conf.SAVE_LIMIT >= 0)


def on_post_execute(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """``django_q.signals.post_execute`` receiver: covers results django-q2 did not save (and so
    sent to no hook): ``save=False``, ``cached`` jobs."""
    if _hook_fired(task):
        return
    _complete(task.get("func"), task.get("args"), task.get("name"), bool(task.get("success")),
              task.get("result"))
