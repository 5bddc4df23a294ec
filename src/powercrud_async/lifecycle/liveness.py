"""When is a job alive? The one rule, for the runner, cleanup, ``release_task_locks`` and the
dashboard: a running job is dead after three heartbeat intervals of silence; a queued one is
lost only when it cannot be in the broker or in a live cluster's memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from .. import broker, conf
from ..statuses import TaskStatus
from ..stores import TaskInfo


def dead_after() -> float:
    """Seconds without a heartbeat after which a running job counts as dead."""
    return 3 * float(conf.get("HEARTBEAT_INTERVAL"))


def is_beating(info: TaskInfo, now: datetime) -> bool:
    """Whether a running task's worker was heard from within ``dead_after()``."""
    beat = info.heartbeat_at or info.started_at or info.created_at
    return beat is not None and (now - beat).total_seconds() <= dead_after()


def verdict(
    info: TaskInfo,
    now: Any,
    in_broker: set[str] | None,
    bound: Callable[[], float | None] = broker.out_of_sight_bound,
) -> tuple[str, str]:
    """``(action, reason)`` for one active task: ``keep``, ``dead`` or ``overdue``.

    The one place liveness is judged, for cleanup, ``release_task_locks`` and the dashboard.
    ``in_broker`` is read before ``bound`` is asked (it looks at the live clusters), so a job
    that left the broker in between is in a cluster that the bound accounts for.
    """
    limit = dead_after()
    if info.status == TaskStatus.IN_PROGRESS:
        beat = info.heartbeat_at or info.started_at or info.created_at
        silent = (now - beat).total_seconds() if beat else limit + 1
        if not is_beating(info, now):
            return "dead", (
                f"Worker died: no heartbeat for {silent:.0f} s "
                f"(last at {beat:%Y-%m-%d %H:%M:%S %Z})."
                if beat
                else "Worker died: no heartbeat."
            )
        started = info.started_at or info.created_at
        if started and (now - started).total_seconds() > conf.get("MAX_TASK_DURATION"):
            return "overdue", (
                f"Running for {(now - started).total_seconds():.0f} s, longer than "
                f"MAX_TASK_DURATION ({conf.get('MAX_TASK_DURATION')} s); asked to cancel."
            )
        return "keep", "running with a live heartbeat"
    if in_broker is not None and info.task_name in in_broker:
        return "keep", "queued in the broker"
    age = (now - info.created_at).total_seconds() if info.created_at else limit + 1
    if in_broker is None or age <= limit:
        return "keep", "queued" if in_broker is None else "just launched"
    wait = bound()
    if wait is None:
        return "keep", "queued (this broker cannot tell where)"
    if age <= limit + wait:
        return "keep", "queued: may be waiting in a live cluster's memory"
    where = (
        "no live cluster could hold it"
        if wait == 0
        else (f"waited longer than the {wait:.0f} s a live cluster can hold a job")
    )
    return (
        "dead",
        f"Lost before it started: not in the broker {age:.0f} s after launch, and {where}.",
    )


def liveness(info: TaskInfo) -> tuple[bool, str]:
    """``(alive, why)`` for one active task, by the same rules cleanup uses."""
    action, reason = verdict(info, timezone.now(), broker.broker_task_names())
    return action != "dead", reason


def judged(info: TaskInfo) -> dict[str, Any]:
    """The fields an action on ``info`` is conditional on: the task as it was judged."""
    return {"status": info.status, "attempts": info.attempts, "heartbeat_at": info.heartbeat_at}
