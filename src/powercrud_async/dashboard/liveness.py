"""Which live jobs are stuck (dead or overdue), judged by the same rules cleanup uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import queue
from ..cleanup import verdict
from ..runner import dead_after
from ..statuses import TaskStatus
from ..stores import TaskInfo, get_store


@dataclass(frozen=True, slots=True)
class Stuck:
    task_name: str
    kind: str  # "dead" or "overdue"
    reason: str
    info: TaskInfo


def stuck_tasks(now: datetime, active: list[TaskInfo] | None = None) -> dict[str, Stuck]:
    """Dead or overdue jobs among the live ones: one registry read, one broker read if needed."""
    infos = get_store().active() if active is None else active
    if not infos:
        return {}
    limit = dead_after()
    needs_broker = any(
        info.status == TaskStatus.PENDING and info.created_at is not None
        and (now - info.created_at).total_seconds() > limit
        for info in infos
    )
    in_broker: set[str] | None = queue.broker_task_names() if needs_broker else set()
    found: dict[str, Stuck] = {}
    for info in infos:
        action, reason = verdict(info, now, in_broker)
        if action != "keep":
            found[info.task_name] = Stuck(info.task_name, action, reason, info)
    return found


def heartbeat_age(info: TaskInfo, now: datetime) -> float | None:
    beat: Any = info.heartbeat_at or info.started_at
    return (now - beat).total_seconds() if beat else None
