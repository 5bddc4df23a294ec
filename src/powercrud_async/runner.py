"""The one function every job runs inside (django-q2 calls ``run_task``).

It rehydrates the manager the launch used, moves the task queued → running by compare-and-set
(so a redelivered job that already finished does not run twice), makes sure the job still holds
its locks, enters the task context, captures logs, beats a heartbeat, honours cancellation and
reports the outcome exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from django.db import connections
from django.utils import timezone
from django.utils.module_loading import import_string

from . import conf, progress
from .async_context import task_context
from .async_manager import AsyncManager
from .callables import accepted_kwargs
from .completion import format_exception
from .conflicts import to_keys
from .exceptions import TaskCancelled
from .progress import ProgressSnapshot
from .statuses import TaskStatus
from .stores import TaskInfo, get_store
from .tasklogs import capture_logs

logger = logging.getLogger("powercrud_async.runner")

SKIP_KEY = "__powercrud_async_skipped__"


def skip_marker(reason: str) -> dict[str, str]:
    return {SKIP_KEY: reason}


def is_skip_marker(result: Any) -> bool:
    return isinstance(result, dict) and SKIP_KEY in result


def dead_after() -> float:
    """Seconds without a heartbeat after which a running job counts as dead."""
    return 3 * float(conf.get("HEARTBEAT_INTERVAL"))


class Ticker(threading.Thread):
    """Flushes coalesced progress, beats the heartbeat, renews locks, notices cancellation."""

    def __init__(self, task_name: str, cancelled: threading.Event):
        super().__init__(name=f"powercrud-async-ticker-{task_name}", daemon=True)
        self.task_name = task_name
        self.cancelled = cancelled
        self.stopped = threading.Event()
        self.heartbeat = float(conf.get("HEARTBEAT_INTERVAL")) or 5.0
        self.tick = min(float(conf.get("PROGRESS_WRITE_INTERVAL")) or 1.0, self.heartbeat)

    def run(self) -> None:
        last_beat = time.monotonic()
        store = get_store()
        try:
            while not self.stopped.wait(self.tick):
                try:
                    progress.buffer.flush(self.task_name)
                    if time.monotonic() - last_beat >= self.heartbeat:
                        last_beat = time.monotonic()
                        store.update(
                            self.task_name, only_statuses=[TaskStatus.IN_PROGRESS],
                            heartbeat_at=timezone.now(),
                        )
                        store.renew(self.task_name, conf.get("CONFLICT_TTL"))
                    info = store.get(self.task_name)
                    if info is None or info.cancel_requested or not info.is_active:
                        self.cancelled.set()
                except Exception:  # noqa: BLE001 - a failed beat is retried next tick
                    logger.exception("Heartbeat of task %s failed", self.task_name)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def _inline_in_transaction() -> bool:
    """A sync job run inside the caller's open transaction (a view under ``ATOMIC_REQUESTS``, a
    test case): other connections cannot see its registry row, and on SQLite cannot write while
    that transaction is open, so a ticker thread would judge it cancelled or block on it."""
    using = getattr(get_store(), "using", None)
    return using is not None and connections[using].in_atomic_block


def _start(info: TaskInfo) -> tuple[TaskInfo, str | None]:
    """Move the task to running: ``(row as now stored, None)``, or ``(row, why it must not run)``."""
    now = timezone.now()
    if not info.is_active:
        return info, f"already {info.status}"
    if info.cancel_requested:
        return info, "cancelled before it started"
    if info.status == TaskStatus.IN_PROGRESS:
        beat = info.heartbeat_at or info.started_at
        if beat and (now - beat).total_seconds() < dead_after():
            return info, "already running in another worker"
    attempts = info.attempts + 1
    if not get_store().transition(
        info.task_name, [info.status], TaskStatus.IN_PROGRESS,
        started_at=now, heartbeat_at=now, attempts=attempts,
    ):
        return info, "another worker took it"
    started = replace(info, status=TaskStatus.IN_PROGRESS, started_at=now, heartbeat_at=now, attempts=attempts)
    return started, None


def _begin(envelope: dict[str, Any]) -> tuple[TaskInfo | None, str | None]:
    """Claim the task for this run: ``(row, None)`` to go ahead, or ``(row or None, why not)``.

    The usual case — first delivery of a queued task — is one compare-and-set with what the launch
    put in the envelope; anything else (redelivery, takeover, purged) reads the row and decides.
    """
    task_name = envelope["task_name"]
    store = get_store()
    now = timezone.now()
    if "created_at" in envelope and store.transition(
        task_name, [TaskStatus.PENDING], TaskStatus.IN_PROGRESS,
        started_at=now, heartbeat_at=now, attempts=1,
    ):
        return TaskInfo(
            task_name=task_name, status=TaskStatus.IN_PROGRESS, user_id=envelope.get("user_id"),
            conflict_ids=envelope.get("conflict_ids") or {}, created_at=envelope["created_at"],
            started_at=now, heartbeat_at=now, attempts=1,
        ), None
    info = store.get(task_name)
    if info is None:
        return None, "not registered (purged or removed)"
    return _start(info)


def _lost_locks(info: TaskInfo) -> str | None:
    """Make sure the job holds its locks.

    Locks taken at launch cannot be reclaimed before ``CONFLICT_TTL`` has passed, so a first run
    within that time holds them; a takeover after a dead attempt, or a job that waited longer in
    the queue, checks (and re-acquires) them.
    """
    keys = to_keys(info.conflict_ids)
    if not keys:
        return None
    waited = (timezone.now() - info.created_at).total_seconds() if info.created_at else float("inf")
    if info.attempts <= 1 and waited < 0.9 * conf.get("CONFLICT_TTL"):
        return None
    store = get_store()
    held = store.holders(keys)
    if all(held.get(key) == info.task_name for key in keys):
        return None
    conflicts = store.acquire(info.task_name, keys, conf.get("CONFLICT_TTL"))
    if not conflicts:
        return None
    holders = ", ".join(sorted(set(conflicts.values())))
    return f"its locks were lost and are now held by {holders}; it did not run"


def run_task(envelope: dict[str, Any]) -> Any:
    """Entry point django-q2 executes for every job launched through ``AsyncManager``."""
    task_name = envelope["task_name"]
    manager = AsyncManager.resolve_manager(envelope.get("manager_class"), envelope.get("manager_config"))
    info, refusal = _begin(envelope)
    if info is None or refusal is not None:
        logger.warning("Task %s not run: %s.", task_name, refusal)
        if refusal == "cancelled before it started":
            manager.finish(task_name, TaskStatus.CANCELLED, reason="Cancelled before it started")
        return skip_marker(refusal or "not run")
    lost = _lost_locks(info)
    if lost is not None:
        manager.finish(task_name, TaskStatus.FAILED, error=f"Task {lost}.", reason=f"Task {lost}.")
        return skip_marker(lost)

    cancelled = threading.Event()
    progress.buffer.track(
        ProgressSnapshot(task_name=task_name, status=TaskStatus.IN_PROGRESS, message="Started",
                         user_id=info.user_id),
        cancelled,
    )
    manager.emit("start", task_name, status=TaskStatus.IN_PROGRESS, message="Started",
                 started_at=info.started_at, attempt=info.attempts)
    # Inline, progress is still coalesced and flushed by the job's own update_progress calls.
    ticker = None if _inline_in_transaction() else Ticker(task_name, cancelled)
    if ticker is not None:
        ticker.start()
    outcome: tuple[TaskStatus, dict[str, Any]] = (
        TaskStatus.FAILED, {"error": "The job was interrupted", "reason": "The job was interrupted"}
    )
    try:
        with task_context(task_name, manager.class_path(), manager, manager.config), capture_logs(task_name):
            try:
                result = _call(envelope, task_name, manager)
            except TaskCancelled:
                outcome = (TaskStatus.CANCELLED, {"reason": "Cancelled while running"})
                return skip_marker("cancelled")
            except BaseException as exc:
                error, tb = format_exception(exc)
                if isinstance(exc, SystemExit) and type(exc).__name__ == "TimeoutException":
                    error = f"Timed out: {error}"
                outcome = (TaskStatus.FAILED, {"error": error, "traceback": tb, "reason": error})
                raise
            if result is False:
                returned_false = "The worker returned False"
                outcome = (TaskStatus.FAILED, {"error": returned_false, "reason": returned_false})
            else:
                outcome = (TaskStatus.SUCCESS, {"result": result})
            return result
    finally:
        if ticker is not None:
            ticker.stop()
        progress.buffer.untrack(task_name)
        status, details = outcome
        manager.finish(task_name, status, info=info, **details)


def _call(envelope: dict[str, Any], task_name: str, manager: AsyncManager) -> Any:
    """Import and call the job's function, adding ``task_key``/``manager_class`` if it takes them."""
    func = import_string(envelope["func"])
    kwargs = dict(envelope.get("kwargs") or {})
    extra = {"task_key": task_name, "manager_class": manager.class_path()}
    for name in accepted_kwargs(func, list(extra)):
        kwargs.setdefault(name, extra[name])
    return func(*envelope.get("args", ()), **kwargs)
