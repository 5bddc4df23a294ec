"""Reconcile the registry with django-q2: reclaim dead jobs, orphaned locks, expired artefacts."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from . import conf, progress, queue
from .runner import dead_after
from .statuses import TaskStatus
from .stores import TaskInfo, get_store

if TYPE_CHECKING:
    from .async_manager import AsyncManager


def verdict(info: TaskInfo, now: Any, in_broker: set[str] | None) -> tuple[str, str]:
    """``(action, reason)`` for one active task: ``keep``, ``dead`` or ``overdue``.

    The one place liveness is judged, for cleanup, ``release_task_locks`` and the dashboard.
    """
    limit = dead_after()
    if info.status == TaskStatus.IN_PROGRESS:
        beat = info.heartbeat_at or info.started_at or info.created_at
        silent = (now - beat).total_seconds() if beat else limit + 1
        if silent > limit:
            return "dead", (
                f"Worker died: no heartbeat for {silent:.0f} s "
                f"(last at {beat:%Y-%m-%d %H:%M:%S %Z})." if beat else "Worker died: no heartbeat."
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
    return "dead", f"Lost before it started: not in the broker {age:.0f} s after launch."


def liveness(info: TaskInfo) -> tuple[bool, str]:
    """``(alive, why)`` for one active task, by the same rules cleanup uses."""
    action, reason = verdict(info, timezone.now(), queue.broker_task_names())
    return action != "dead", reason


def run_cleanup(manager: AsyncManager, *, dry_run: bool = False) -> dict[str, Any]:
    store = get_store()
    now = timezone.now()
    summary: dict[str, Any] = {
        "dry_run": dry_run,
        "reclaimed": [],
        "overdue": [],
        "kept": 0,
        "orphaned_locks": [],
        "purged": [],
        "dashboard_artifacts_removed": 0,
    }
    in_broker = queue.broker_task_names()
    for info in store.active():
        action, reason = verdict(info, now, in_broker)
        if action == "keep":
            summary["kept"] += 1
        elif action == "dead":
            if dry_run or manager.finish(info.task_name, TaskStatus.FAILED, error=reason, reason=reason):
                summary["reclaimed"].append({"task_name": info.task_name, "reason": reason})
        elif action == "overdue":
            if not dry_run:
                store.update(info.task_name, only_statuses=[TaskStatus.IN_PROGRESS], cancel_requested=True)
            summary["overdue"].append({"task_name": info.task_name, "reason": reason})

    owners = store.lock_owners()
    known = store.get_many(owners)
    for owner in sorted(owners):
        holder = known.get(owner)
        if holder is not None and holder.is_active:
            continue
        if holder is None:
            # A reservation made with add_conflict_ids and never launched: keep it until it expires.
            if any(lock.expires_at > now for lock in store.locks(task_name=owner)):
                continue
            reason = "reservation expired"
        else:
            reason = f"task already {holder.status}"
        count = 0 if dry_run else store.release(owner)
        summary["orphaned_locks"].append({"task_name": owner, "reason": reason, "released": count})

    grace = timedelta(seconds=conf.get("CLEANUP_GRACE_PERIOD"))
    for name in store.finished_before(now - grace):
        if not dry_run:
            store.delete(name)
            progress.delete(name)
            summary["dashboard_artifacts_removed"] += manager.cleanup_dashboard_data(name)
        summary["purged"].append(name)
    summary["counts"] = {
        key: len(summary[key]) for key in ("reclaimed", "overdue", "orphaned_locks", "purged")
    }
    summary["counts"]["kept"] = summary["kept"]
    return summary
