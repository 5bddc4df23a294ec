"""Which live jobs are stuck (dead or overdue), judged by the same rules cleanup uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import broker
from ..lifecycle.liveness import dead_after, verdict
from ..statuses import TaskStatus
from ..stores import TaskInfo, get_store
from .records import human_duration


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
        info.status == TaskStatus.PENDING
        and info.created_at is not None
        and (now - info.created_at).total_seconds() > limit
        for info in infos
    )
    in_broker: set[str] | None = broker.broker_task_names() if needs_broker else set()
    found: dict[str, Stuck] = {}
    for info in infos:
        action, reason = verdict(info, now, in_broker)
        if action != "keep":
            found[info.task_name] = Stuck(info.task_name, action, reason, info)
    return found


def heartbeat_age(info: TaskInfo, now: datetime) -> float | None:
    beat: Any = info.heartbeat_at or info.started_at
    return (now - beat).total_seconds() if beat else None


#: Starts within the window needed before their rate says how long a wait is normal.
MIN_STARTS_FOR_RATE = 5


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """Whether queued work is moving, judged from the work itself rather than heartbeats."""

    state: str  # "idle" (nothing waiting), "moving", "stuck"
    waiting: int
    oldest_wait: float | None  # seconds the oldest queued job has waited
    started_recently: int  # jobs started in the last ``window`` seconds
    window: float
    last_start_age: float | None  # seconds since any job last started
    reason: str = ""

    @property
    def oldest_text(self) -> str:
        return human_duration(self.oldest_wait)

    @property
    def per_minute(self) -> float:
        return 60.0 * self.started_recently / self.window if self.window else 0.0


def queue_health(
    now: datetime,
    active: list[TaskInfo],
    *,
    started_recently: int,
    window: float,
    last_started: datetime | None,
    stuck_after: float,
) -> QueueHealth:
    """``stuck`` when a job has waited longer than ``stuck_after`` and no job has started for
    longer than both ``stuck_after`` and three times the recent mean gap between starts (so a
    queue of long jobs that starts one every few minutes is slow, not stuck). Fewer than
    ``MIN_STARTS_FOR_RATE`` starts in the window make no rate: ``stuck_after`` alone decides.

    ``now`` is passed in so the verdict can be checked at any moment without waiting for it.
    """
    queued = [i for i in active if i.status == TaskStatus.PENDING and i.created_at is not None]
    last_age = (now - last_started).total_seconds() if last_started else None
    if not queued:
        return QueueHealth("idle", 0, None, started_recently, window, last_age)
    oldest = max((now - i.created_at).total_seconds() for i in queued if i.created_at)
    mean_gap = window / started_recently if started_recently >= MIN_STARTS_FOR_RATE else 0.0
    quiet = last_age is None or last_age > max(stuck_after, 3 * mean_gap)
    if oldest > stuck_after and quiet:
        since = (
            f"no job started for {human_duration(last_age)}"
            if last_age is not None
            else "no job has started yet"
        )
        reason = f"{len(queued)} waiting, the oldest for {human_duration(oldest)}; {since}"
        return QueueHealth("stuck", len(queued), oldest, started_recently, window, last_age, reason)
    return QueueHealth("moving", len(queued), oldest, started_recently, window, last_age)
