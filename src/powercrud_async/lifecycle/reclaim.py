"""Reconcile the registry with django-q2: reclaim dead jobs, send final events a dead worker
owed, free orphaned locks, purge expired artefacts.

Every action is a compare-and-set on what was judged: a dead job is ended only if its attempt
and heartbeat are still those that were read, so a job taken over (or beating again) since is
left to its new attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from django.utils import timezone

from .. import broker, conf, progress
from ..statuses import TaskStatus
from ..stores import TaskInfo, get_store
from . import finish
from .liveness import dead_after, judged, verdict
from .protocol import Manager

logger = logging.getLogger("powercrud_async.lifecycle.reclaim")


def owner(manager: Manager, info: TaskInfo) -> Manager:
    """The manager the task was launched with, whose lifecycle handler hears its end."""
    same_config = info.manager_config is None or info.manager_config == manager.config
    if not info.manager_class or (info.manager_class == manager.class_path() and same_config):
        return manager
    return type(manager).resolve_manager(info.manager_class, info.manager_config)


class _Steps:
    """Runs the steps of one cleanup; a failing step is recorded and the others still run."""

    def __init__(self, summary: dict[str, Any]):
        self.summary = summary

    def run(
        self, what: str, action: Callable[..., Any], *args: Any, default: Any = None, **kwargs: Any
    ) -> Any:
        try:
            return action(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported in the summary, never half-silent
            message = f"{what}: {type(exc).__name__}: {exc}"
            logger.warning("Cleanup could not %s", message)
            self.summary["errors"].append(message)
            return default


def run_cleanup(manager: Manager, *, dry_run: bool = False) -> dict[str, Any]:
    """The work of ``cleanup_completed_tasks``: judge, act by compare-and-set, summarise."""
    store = get_store()
    now = timezone.now()
    summary: dict[str, Any] = {
        "dry_run": dry_run,
        "reclaimed": [],
        "overdue": [],
        "kept": 0,
        "changed": [],
        "redelivered": [],
        "orphaned_locks": [],
        "purged": [],
        "dashboard_artifacts_removed": 0,
        "errors": [],
    }
    steps = _Steps(summary)
    in_broker = steps.run("read the broker queue", broker.broker_task_names)
    bound = cache(lambda: steps.run("read the live clusters", broker.out_of_sight_bound))
    for info in steps.run("list active tasks", store.active, default=[]):
        action, reason = verdict(info, now, in_broker, bound)
        name = info.task_name
        if action == "keep":
            summary["kept"] += 1
        elif action == "dead":
            ended = dry_run or steps.run(
                f"end {name}",
                finish.finish,
                owner(manager, info),
                name,
                finish.Outcome(TaskStatus.FAILED, error=reason, reason=reason),
                expect=judged(info),
            )
            key = "reclaimed" if ended else "changed"
            summary[key].append({"task_name": name, "reason": reason})
        elif action == "overdue":
            asked = dry_run or steps.run(
                f"ask {name} to cancel",
                store.update,
                name,
                only_statuses=[TaskStatus.IN_PROGRESS],
                expect={"attempts": info.attempts},
                cancel_requested=True,
            )
            summary["overdue" if asked else "changed"].append({"task_name": name, "reason": reason})

    # Final events still due after a worker could have sent them: it died in between.
    due_before = now - timedelta(seconds=dead_after())
    for info in steps.run("list tasks with events due", store.undelivered, due_before, default=[]):
        if not dry_run:
            steps.run(
                f"send the final events of {info.task_name}",
                finish.redeliver,
                owner(manager, info),
                info,
            )
        summary["redelivered"].append(info.task_name)

    _release_orphans(store, now, dry_run, steps)
    grace = timedelta(seconds=conf.get("CLEANUP_GRACE_PERIOD"))
    for name in steps.run("list finished tasks", store.finished_before, now - grace, default=[]):
        if not dry_run:
            if steps.run(f"purge {name}", store.delete, name) is None:
                continue
            steps.run(f"drop the progress entry of {name}", progress.delete, name)
            summary["dashboard_artifacts_removed"] += steps.run(
                f"remove the dashboard data of {name}",
                manager.cleanup_dashboard_data,
                name,
                default=0,
            )
        summary["purged"].append(name)
    summary["counts"] = {
        key: len(summary[key])
        for key in (
            "reclaimed",
            "overdue",
            "redelivered",
            "orphaned_locks",
            "purged",
            "changed",
            "errors",
        )
    }
    summary["counts"]["kept"] = summary["kept"]
    return summary


def _release_orphans(store: Any, now: Any, dry_run: bool, steps: _Steps) -> None:
    """Free the locks of owners that are finished tasks, or reservations that expired."""
    summary = steps.summary
    owners = steps.run("list lock owners", store.lock_owners, default=set())
    known = steps.run("read lock owners", store.get_many, owners)
    if known is None:
        return
    for owner in sorted(owners):
        holder = known.get(owner)
        if holder is not None and holder.is_active:
            continue
        if holder is None:
            # A reservation made with add_conflict_ids and never launched: kept until it expires,
            # and released in one step that a launch under its name (registering, renewing) wins.
            locks = steps.run(f"read the locks of {owner}", store.locks, task_name=owner)
            if locks is None or any(lock.expires_at > now for lock in locks):
                continue
            reason, release = "reservation expired", store.release_expired
        else:
            reason, release = f"task already {holder.status}", store.release
        count = (
            0 if dry_run else steps.run(f"release the locks of {owner}", release, owner, default=0)
        )
        if count or dry_run:
            summary["orphaned_locks"].append(
                {"task_name": owner, "reason": reason, "released": count}
            )
