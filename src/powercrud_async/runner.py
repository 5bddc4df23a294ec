"""The one function every job runs inside (django-q2 calls ``run_task``).

It rehydrates the manager the launch used, moves the task queued → running by compare-and-set
(so a redelivered job that already finished does not run twice; a takeover of a dead attempt
moves the attempt counter, the fencing token, on by one), makes sure the job still holds its
locks, enters the task context, captures logs, beats a heartbeat, honours cancellation, stops an
attempt that was superseded, and reports the outcome exactly once.
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

from . import conf, progress, timers
from .async_context import task_context
from .async_manager import AsyncManager
from .callables import accepted_kwargs
from .conflicts import to_keys
from .exceptions import TaskCancelled, TaskSuperseded
from .lifecycle.finish import format_exception
from .lifecycle.liveness import is_beating
from .lifecycle.tasklogs import capture_logs
from .progress import ProgressSnapshot
from .statuses import Event, TaskStatus
from .stores import TaskInfo, get_store

logger = logging.getLogger("powercrud_async.runner")

SKIP_KEY = "__powercrud_async_skipped__"


def skip_marker(reason: str) -> dict[str, str]:
    return {SKIP_KEY: reason}


def is_skip_marker(result: Any) -> bool:
    return isinstance(result, dict) and SKIP_KEY in result


class Attempt(threading.Event):
    """One attempt's claim on its task: set when the task is to stop (cancelled, ended), and
    ``superseded_by`` once a newer attempt took the task over (its fencing token moved on).

    The progress buffer asks ``is_set()`` at every progress call; when the ticker has not
    confirmed the token recently (say the process was paused or stuck), that call confirms it
    against the store first, and raises ``TaskSuperseded`` in a superseded attempt.
    """

    def __init__(self, task_name: str, token: int):
        super().__init__()
        self.task_name = task_name
        self.token = token
        self.superseded_by: int | None = None
        self.confirmed_at = time.monotonic()
        self.confirm_every = float(conf.get("PROGRESS_WRITE_INTERVAL"))

    def observe(self, info: TaskInfo | None) -> None:
        """Take in a fresh registry row: note a takeover, a cancellation or an ending."""
        if info is not None and info.attempts != self.token:
            self.superseded_by = info.attempts
            return
        self.confirmed_at = time.monotonic()
        if info is None or info.cancel_requested or not info.is_active:
            self.set()

    def confirm(self) -> None:
        try:
            self.observe(get_store().get(self.task_name))
        except Exception:  # noqa: BLE001 - the store is down: the ticker keeps trying
            logger.warning(
                "Could not confirm that attempt %d still owns task %s.", self.token, self.task_name
            )

    def is_set(self) -> bool:
        if (
            self.superseded_by is None
            and time.monotonic() - self.confirmed_at >= self.confirm_every
        ):
            self.confirm()
        if self.superseded_by is not None:
            raise TaskSuperseded(
                f"Attempt {self.token} of task {self.task_name} was superseded by attempt "
                f"{self.superseded_by}; it stops here."
            )
        return super().is_set()


class Ticker:
    """Beats the heartbeat and renews the locks (durable store only), flushes coalesced progress
    (cache), and notices cancellation and takeover, every tick on the process's timer thread.
    Each step fails on its own: a cache outage never stops the heartbeat that keeps cleanup away
    from a live job."""

    def __init__(self, attempt: Attempt):
        self.attempt = attempt
        self.task_name = attempt.task_name
        self.heartbeat = float(conf.get("HEARTBEAT_INTERVAL")) or 5.0
        self.tick = min(float(conf.get("PROGRESS_WRITE_INTERVAL")) or 1.0, self.heartbeat)
        self.failing: set[str] = set()
        self.last_beat = time.monotonic()
        self.timer: timers.Timer | None = None

    def start(self) -> None:
        self.timer = timers.call_later(self.tick, self.run_once, every=self.tick)

    def run_once(self) -> None:
        if self.attempt.superseded_by is not None:
            return  # nothing of this attempt's may reach the store or the cache
        if time.monotonic() - self.last_beat >= self.heartbeat:
            self.last_beat = time.monotonic()
            self._step("heartbeat", self._beat)
        self._step("progress flush", lambda: progress.buffer.flush(self.task_name))
        self._step("cancel check", lambda: self.attempt.observe(get_store().get(self.task_name)))

    def _beat(self) -> None:
        store = get_store()
        if not store.beat(
            self.task_name, self.attempt.token, conf.get("CONFLICT_TTL"), timezone.now()
        ):
            self.attempt.observe(store.get(self.task_name))

    def _step(self, what: str, action: Any) -> None:
        """Run one step; log a failure when it starts and when it ends, not at every tick."""
        try:
            action()
        except Exception:  # noqa: BLE001 - retried next tick
            if what not in self.failing:
                self.failing.add(what)
                logger.exception(
                    "%s of task %s failed; retrying every tick", what.capitalize(), self.task_name
                )
            return
        if what in self.failing:
            self.failing.discard(what)
            logger.warning("%s of task %s works again", what.capitalize(), self.task_name)

    def stop(self) -> None:
        """No tick after this returns (one under way is waited for)."""
        if self.timer is not None:
            self.timer.cancel(wait=True)


def _inline_in_transaction() -> bool:
    """A sync job run inside the caller's open transaction (a view under ``ATOMIC_REQUESTS``, a
    test case): other connections cannot see its registry row, and on SQLite cannot write while
    that transaction is open, so a ticker thread would judge it cancelled or block on it."""
    using = getattr(get_store(), "using", None)
    return using is not None and connections[using].in_atomic_block


def _start(info: TaskInfo) -> tuple[TaskInfo, str | None]:
    """Move the task to running: ``(row as now stored, None)``, or ``(row, why it must not run)``.

    Taking over a running task whose worker fell silent is a compare-and-set on the attempt and
    heartbeat that were read, and moves the attempt on by one: of two takeovers of one dead
    attempt exactly one wins, and the silent attempt learns it is superseded.
    """
    now = timezone.now()
    if not info.is_active:
        return info, f"already {info.status}"
    if info.cancel_requested:
        return info, "cancelled before it started"
    if info.status == TaskStatus.IN_PROGRESS and is_beating(info, now):
        return info, "already running in another worker"
    attempts = info.attempts + 1
    if not get_store().transition(
        info.task_name,
        [info.status],
        TaskStatus.IN_PROGRESS,
        expect={"attempts": info.attempts, "heartbeat_at": info.heartbeat_at},
        started_at=now,
        heartbeat_at=now,
        attempts=attempts,
    ):
        return info, "another worker took it"
    started = replace(
        info, status=TaskStatus.IN_PROGRESS, started_at=now, heartbeat_at=now, attempts=attempts
    )
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
        task_name,
        [TaskStatus.PENDING],
        TaskStatus.IN_PROGRESS,
        expect={"attempts": 0},
        started_at=now,
        heartbeat_at=now,
        attempts=1,
    ):
        return TaskInfo(
            task_name=task_name,
            status=TaskStatus.IN_PROGRESS,
            user_id=envelope.get("user_id"),
            conflict_ids=envelope.get("conflict_ids") or {},
            created_at=envelope["created_at"],
            started_at=now,
            heartbeat_at=now,
            attempts=1,
        ), None
    info = store.get(task_name)
    if info is None:
        return None, "not registered (purged or removed)"
    return _start(info)


def _lost_locks(info: TaskInfo) -> str | None:
    """Make sure the job holds its locks, on every attempt, before its body runs.

    One read when all is well. A lock may be gone even on a first attempt (released by an
    operator, reclaimed after a long wait in the queue): it is taken again if free, else the job
    does not run.
    """
    keys = to_keys(info.conflict_ids)
    if not keys:
        return None
    store = get_store()
    if store.holds_all(info.task_name, keys):
        return None
    conflicts = store.acquire(info.task_name, keys, conf.get("CONFLICT_TTL"))
    if not conflicts:
        return None
    holders = ", ".join(sorted(set(conflicts.values())))
    return f"its locks were lost and are now held by {holders}; it did not run"


def _record_superseded(manager: AsyncManager, attempt: Attempt) -> None:
    """Put the stop of a superseded attempt on the task's timeline (the task itself is the new
    attempt's: its status and record are not touched)."""
    newer = attempt.superseded_by
    message = f"Attempt {attempt.token} stopped: attempt {newer} took the task over"
    logger.warning("Task %s: %s.", attempt.task_name, message)
    manager.emit(
        Event.SUPERSEDED,
        attempt.task_name,
        status=TaskStatus.IN_PROGRESS,
        message=message,
        attempt=attempt.token,
        superseded_by=newer,
    )


def run_task(envelope: dict[str, Any]) -> Any:
    """Entry point django-q2 executes for every job launched through ``AsyncManager``."""
    task_name = envelope["task_name"]
    manager = AsyncManager.resolve_manager(
        envelope.get("manager_class"), envelope.get("manager_config")
    )
    info, refusal = _begin(envelope)
    if info is None or refusal is not None:
        logger.warning("Task %s not run: %s.", task_name, refusal)
        if refusal == "cancelled before it started" and info is not None:
            manager.finish(
                task_name,
                TaskStatus.CANCELLED,
                reason="Cancelled before it started",
                expect={"attempts": info.attempts},
            )
        return skip_marker(refusal or "not run")
    token = {"attempts": info.attempts}
    lost = _lost_locks(info)
    if lost is not None:
        manager.finish(
            task_name,
            TaskStatus.FAILED,
            error=f"Task {lost}.",
            reason=f"Task {lost}.",
            expect=token,
        )
        return skip_marker(lost)

    attempt = Attempt(task_name, info.attempts)
    progress.buffer.track(
        ProgressSnapshot(
            task_name=task_name,
            status=TaskStatus.IN_PROGRESS,
            message="Started",
            user_id=info.user_id,
        ),
        attempt,
    )
    manager.emit(
        Event.START,
        task_name,
        status=TaskStatus.IN_PROGRESS,
        message="Started",
        started_at=info.started_at,
        attempt=info.attempts,
    )
    # Inline, progress is still coalesced and flushed by the job's own update_progress calls.
    ticker = None if _inline_in_transaction() else Ticker(attempt)
    if ticker is not None:
        ticker.start()
    outcome: tuple[TaskStatus, dict[str, Any]] = (
        TaskStatus.FAILED,
        {"error": "The job was interrupted", "reason": "The job was interrupted"},
    )
    try:
        with (
            task_context(task_name, manager.class_path(), manager, manager.config),
            capture_logs(task_name),
        ):
            try:
                result = _call(envelope, task_name, manager)
            except TaskSuperseded:
                return skip_marker("superseded")
            except TaskCancelled:
                outcome = (TaskStatus.CANCELLED, {"reason": "Cancelled while running"})
                return skip_marker("cancelled")
            except BaseException as exc:
                if attempt.superseded_by is not None and isinstance(exc, Exception):
                    # Not this attempt's failure to report: the task belongs to the newer one.
                    return skip_marker("superseded")
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
        if attempt.superseded_by is None and not manager.finish(
            task_name, status, info=info, expect=token, **details
        ):
            attempt.confirm()  # lost the ending: to whom?
        if attempt.superseded_by is not None:
            _record_superseded(manager, attempt)


def _call(envelope: dict[str, Any], task_name: str, manager: AsyncManager) -> Any:
    """Import and call the job's function, adding ``task_key``/``manager_class`` if it takes them."""
    func = import_string(envelope["func"])
    kwargs = dict(envelope.get("kwargs") or {})
    extra = {"task_key": task_name, "manager_class": manager.class_path()}
    for name in accepted_kwargs(func, list(extra)):
        kwargs.setdefault(name, extra[name])
    return func(*envelope.get("args", ()), **kwargs)
