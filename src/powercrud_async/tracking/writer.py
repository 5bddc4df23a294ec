"""The per-process writer: each task's unsaved changes and timeline rows, coalesced so one
event costs at most one record UPDATE (plus the INSERT creating it) and one timeline INSERT.

Progress is coalesced per task (the process's timer thread writes what waits once its interval
is over); a failed
write is kept and merged into the task's next write, so the next event repairs the record.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connections

from .. import broker, conf, progress, timers
from ..lifecycle.finish import mark_delivered
from . import sql
from .changes import TERMINAL_EVENTS, TERMINAL_VALUES, Change, changes_for, event_row, merge
from .config import TrackedManager, Tracking

logger = logging.getLogger("powercrud_async.tracking.writer")

#: Timeline rows another process may add for a task (``create`` from the launcher, ...).
TIMELINE_SLACK = 5
#: In-process task states kept at most (oldest idle ones are forgotten first).
MAX_STATES = 10_000


@dataclass(eq=False)
class TaskState:
    """What this process holds for one task: unsaved changes and timeline rows, coalescing."""

    tracking: Tracking
    task_name: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    changes: dict[str, Change] = field(default_factory=dict)
    touch: bool = False
    rows: list[Any] = field(default_factory=list)
    deferred_row: Any = None
    insert_first: bool = False
    last_progress: float = float("-inf")
    terminal: bool = False
    saw_start: bool = False
    saw_create: bool = False
    buffered: bool = False
    inserted: int = 0
    trimmed_at: int = 0
    timer: timers.Timer | None = None
    batch_depth: int = 0
    cleaned: bool = False
    last_event: str = ""

    @property
    def pending(self) -> bool:
        """Whether anything waits to be written (a state holding nothing may be dropped)."""
        return bool(self.changes or self.touch or self.rows or self.deferred_row is not None)

    def cancel_timer(self) -> None:
        """Stop a deferred write that is no longer wanted (written now, or forgotten)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def queue_deferred_row(self) -> None:
        """Move the timeline row a deferred progress held into the rows the next write inserts."""
        if self.deferred_row is not None:
            self.rows.append(self.deferred_row)
            self.deferred_row = None


_states: OrderedDict[tuple[str, str], TaskState] = OrderedDict()
_states_lock = threading.Lock()
#: Tasks this process saw end (bounded), so a late ``progress`` after cleanup is dropped.
_finished: OrderedDict[tuple[str, str], None] = OrderedDict()


def state_for(tracking: Tracking, task_name: str) -> TaskState:
    """The task's state in this process (made on first use; idle ones beyond ``MAX_STATES``
    are dropped, oldest first, so a long-lived worker stays bounded)."""
    key = (tracking.label, task_name)
    with _states_lock:
        state = _states.get(key)
        if state is None:
            state = _states[key] = TaskState(tracking, task_name)
            if len(_states) > MAX_STATES:
                for old_key, old in list(_states.items()):
                    if len(_states) <= MAX_STATES:
                        break
                    if not old.pending and old is not state:
                        del _states[old_key]
        else:
            _states.move_to_end(key)
        return state


def forget(tracking: Tracking, task_name: str) -> None:
    """Drop a cleaned-up task's state, remembering it ended so a late progress is ignored."""
    key = (tracking.label, task_name)
    with _states_lock:
        state = _states.pop(key, None)
        _finished[key] = None
        while len(_finished) > MAX_STATES:
            _finished.popitem(last=False)
    if state is not None:
        state.cancel_timer()


def reset_state() -> None:
    """Forget every in-process task state and cancel pending timers (tests, forks)."""
    ends.forget()
    with _states_lock:
        states = list(_states.values())
        _states.clear()
        _finished.clear()
    for state in states:
        state.cancel_timer()


def pending_states(task_name: str | None = None) -> list[TaskState]:
    """States holding unwritten work (of ``task_name`` only, if given), for ``flush``."""
    with _states_lock:
        return [s for s in _states.values() if s.pending and task_name in (None, s.task_name)]


def _flush(state: TaskState, *, event: str = "", create: bool = True, strict: bool = False) -> bool:
    """Write what ``state`` holds (caller holds ``state.lock``). True if nothing is left.

    ``create=False`` (a timer's deferred write) drops what it holds when the record is gone
    instead of bringing a deleted record back. ``strict`` (inside ``_write_together``): a
    failure propagates instead of being logged and kept."""
    tracking = state.tracking
    state.queue_deferred_row()
    ok = True
    if state.changes or state.touch:
        try:
            outcome = sql.write_record(
                tracking,
                state.task_name,
                state.changes,
                insert_first=state.insert_first,
                create=create,
            )
        except Exception:  # noqa: BLE001 - never break the worker, hook or launch
            if strict:
                raise
            ok = False
            logger.exception(
                "Could not write the record of task %s (%s) for its %r event; the next event for "
                "this task or cleanup_completed_tasks() will repair it.",
                state.task_name,
                tracking.label,
                event or "pending",
            )
        else:
            state.changes = {}
            state.touch = False
            state.insert_first = False
            if outcome == "missing":
                state.rows = []
    if state.rows:
        limit = tracking.timeline_limit()
        if limit <= 0:
            state.rows = []
        else:
            try:
                sql.insert_rows(state.rows)
            except Exception:  # noqa: BLE001
                if strict:
                    raise
                ok = False
                logger.exception(
                    "Could not write the timeline of task %s for its %r event.",
                    state.task_name,
                    event or "pending",
                )
            else:
                state.inserted += len(state.rows)
                state.rows = []
                _maybe_trim(state, event, limit, strict)
    return ok


def _maybe_trim(state: TaskState, event: str, limit: int, strict: bool = False) -> None:
    """Bound the timeline without a DELETE per event: only when this process has written
    near ``limit`` rows for the task (a long job), or at the end of a task it saw neither
    launched nor started (the completion hook or cleanup finishing a job another process ran)."""
    step = max(1, limit // 10)
    near = state.inserted + TIMELINE_SLACK > limit
    due = (near and (event == "cleanup" or state.inserted - state.trimmed_at >= step)) or (
        event == "cleanup" and not (state.saw_start or state.saw_create)
    )
    if not due:
        return
    try:
        sql.trim_timeline(state.task_name, limit)
        state.trimmed_at = state.inserted
    except Exception:  # noqa: BLE001
        if strict:
            raise
        logger.exception("Could not trim the timeline of task %s.", state.task_name)


@dataclass(frozen=True)
class _Held:
    """What a state held before a shared transaction, put back if that transaction fails."""

    changes: dict[str, Change]
    touch: bool
    rows: list[Any]
    deferred_row: Any
    insert_first: bool
    inserted: int
    trimmed_at: int

    @classmethod
    def of(cls, state: TaskState) -> _Held:
        return cls(
            dict(state.changes),
            state.touch,
            list(state.rows),
            state.deferred_row,
            state.insert_first,
            state.inserted,
            state.trimmed_at,
        )

    def restore(self, state: TaskState) -> None:
        state.changes, state.touch, state.rows = dict(self.changes), self.touch, list(self.rows)
        state.deferred_row, state.insert_first = self.deferred_row, self.insert_first
        state.inserted, state.trimmed_at = self.inserted, self.trimmed_at


def _statements(state: TaskState) -> int:
    """How many writes ``state`` holds (record, timeline rows): at most two."""
    rows = bool(state.rows or state.deferred_row is not None)
    return int(bool(state.changes or state.touch)) + int(rows)


def _write_together(states: list[TaskState]) -> None:
    """Write what ``states`` hold in one transaction: on SQLite one turn of the write lock
    instead of one per statement, elsewhere one commit. If anything fails, all of it is rolled
    back and each state is written alone, its failures logged and kept as usual. Timeline rows
    on another database than the records are written one state at a time."""
    db = states[0].tracking.db
    alone = sql.timeline_db() != db or any(state.tracking.db != db for state in states)
    states = sorted(states, key=id)  # one lock order for every caller
    with ExitStack() as locks:
        for state in states:
            locks.enter_context(state.lock)
        if alone or sql.in_callers_transaction(db):
            for state in states:
                _write_alone(state, state.last_event)
            return
        held = [_Held.of(state) for state in states]
        plan = None
        try:
            for state in states:
                state.cancel_timer()
            plan = _Plan.of(states)
            with sql.one_transaction(db):
                if plan is not None:
                    plan.run()
                for state in states if plan is None else ():
                    _flush(state, event=state.last_event, strict=True)
        except Exception:  # noqa: BLE001 - written one by one below
            logger.warning(
                "Could not write %d task record(s) together; writing each alone",
                len(states),
                exc_info=True,
            )
            for state, before in zip(states, held, strict=True):
                before.restore(state)
                _write_alone(state, state.last_event)
            return
        if plan is not None:
            plan.written()
        for state in states:
            if state.cleaned:
                forget(state.tracking, state.task_name)


#: Timeline rows per INSERT of a batch (five parameters each: far below any backend's limit).
ROWS_PER_INSERT = 200


@dataclass
class _Plan:
    """A batch of held writes prepared before its transaction, which on SQLite holds the
    database's one write lock: each record's UPDATE built already, and the timeline rows of
    every state in one INSERT."""

    updates: list[tuple[TaskState, Any]]
    rows: list[tuple[TaskState, int]]

    @classmethod
    def of(cls, states: list[TaskState]) -> _Plan | None:
        """The plan, or ``None`` where a state needs ``_flush``'s own path (a create)."""
        updates: list[tuple[TaskState, Any]] = []
        counts: list[tuple[TaskState, int]] = []
        for state in states:
            if state.insert_first:
                return None
            state.queue_deferred_row()
            if state.changes or state.touch:
                statement = sql.record_update(state.tracking, state.task_name, state.changes)
                if statement is None:
                    return None
                updates.append((state, statement))
            if state.tracking.timeline_limit() <= 0:
                state.rows = []
            counts.append((state, len(state.rows)))
        return cls(updates, counts)

    def run(self) -> None:
        for state, statement in self.updates:
            sql.write_record(state.tracking, state.task_name, state.changes, update=statement)
        rows = [row for state, _ in self.rows for row in state.rows]
        for start in range(0, len(rows), ROWS_PER_INSERT):
            sql.insert_rows(rows[start : start + ROWS_PER_INSERT])

    def written(self) -> None:
        """After commit: what each state held is written; bound the timelines that grew."""
        for state, count in self.rows:
            state.changes, state.touch = {}, False
            state.inserted += count
            state.rows = []
            if count:
                _maybe_trim(state, state.last_event, state.tracking.timeline_limit())


def _on_timer(state: TaskState) -> None:
    """Write a deferred progress once its interval is over (this process got no other event).
    Only onto an existing record, and only while the state is still the current one."""
    try:
        with state.lock:
            state.timer = None
            with _states_lock:
                current = _states.get((state.tracking.label, state.task_name)) is state
            if current and state.pending:
                state.last_progress = time.monotonic()
                _flush(state, event="progress", create=False)
    except Exception:  # noqa: BLE001
        logger.exception("Deferred progress write of task %s failed", state.task_name)


def _schedule(state: TaskState, delay: float) -> None:
    if state.timer is None:
        state.timer = timers.call_later(delay, lambda: _on_timer(state))


def _held_for_next_event(state: TaskState, event: str, task_name: str, tracking: Tracking) -> bool:
    """Whether ``event`` may wait for the task's next event, so a short job writes its start,
    end and clean-up as one record UPDATE and one timeline INSERT.

    Inside ``batch`` (ending a job: the terminal event and ``cleanup``) everything waits for the
    batch's end. A ``start`` from the runner of this process waits for progress or the end; the
    timer writes it within the progress interval if nothing follows (a long, quiet job). Inside
    a transaction nothing waits: another thread could not see the record."""
    if state.batch_depth:
        return True
    if event != "start" or connections[tracking.db].in_atomic_block:
        return False
    if progress.buffer.latest(task_name) is None:
        return False
    _schedule(state, tracking.interval())
    return True


@contextmanager
def batch(manager: TrackedManager, task_name: str, *, marked: bool = False) -> Iterator[None]:
    """Write the events emitted inside as one record UPDATE and one timeline INSERT: at exit,
    or, in a cluster worker, with the ends of the other jobs that finished meanwhile (``ends``).
    ``marked``: clear the task's events-due mark once they are written."""
    try:
        tracking = manager.get_tracking()
    except Exception:  # noqa: BLE001 - each event reports the misconfiguration itself
        yield
        mark_delivered([task_name] if marked else [])
        return
    state = state_for(tracking, task_name)
    with state.lock:
        state.batch_depth += 1
    held = False
    try:
        yield
    finally:
        with state.lock:
            state.batch_depth -= 1
            if not state.batch_depth and state.pending:
                held = ends.hold(state, marked)
                if not held:
                    _write_now(state, state.last_event)
        if marked and not held:
            mark_delivered([task_name])


class Ends:
    """The ends of jobs a cluster worker finished, held for ``RECORD_WRITE_DELAY`` and written
    together: one transaction per database for all of them, then one store call clearing their
    events-due marks. A worker that dies first leaves the marks set, and cleanup sends those
    events again; a worker that stops writes what it holds on its way out."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start empty, with a new lock (also in a forked child, whose parent writes its ends)."""
        self._lock = threading.Lock()
        #: Held for a whole write, so a write that finds nothing waits for one in flight (a
        #: worker told to terminate must not die in the middle of the timer thread's write).
        self._writing = threading.Lock()
        self._held: list[tuple[TaskState, bool]] = []
        self._timer: timers.Timer | None = None
        self._exit_pid = 0

    def hold(self, state: TaskState, marked: bool) -> bool:
        """Hold ``state`` for the next write of ends; False if it is to be written now."""
        delay = float(conf.get("RECORD_WRITE_DELAY"))
        if delay <= 0 or not broker.in_worker() or connections[state.tracking.db].in_atomic_block:
            return False
        with self._lock:
            self._held.append((state, marked))
            if self._timer is None:
                self._timer = timers.call_later(delay, self.write)
            if self._exit_pid != os.getpid():
                self._exit_pid = os.getpid()
                # A cluster worker leaves through multiprocessing, which skips ``atexit``.
                multiprocessing.util.Finalize(None, self.write, exitpriority=10)
                _write_on_sigterm()
        return True

    def forget(self) -> None:
        """Drop what is held, unwritten (tests; a forked child, whose parent writes it)."""
        with self._lock:
            self._held = []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def write(self) -> int:
        """Write every held end now; returns how many jobs' ends were written."""
        with self._writing:
            with self._lock:
                held, self._held = self._held, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            by_db: dict[str, list[TaskState]] = {}
            for state, _ in held:
                by_db.setdefault(state.tracking.db, []).append(state)
            for states in by_db.values():
                _write_together(states)
            mark_delivered([state.task_name for state, marked in held if marked])
        return len(held)


#: Seconds a worker told to terminate spends writing the ends it holds before it dies.
SIGTERM_WRITE_TIMEOUT = 2.0


def _write_on_sigterm() -> None:
    """django-q2's workers die at once on SIGTERM (the default action), which a service manager
    sends to every process of a stopping cluster. Write the held ends first, from another thread
    (the interrupted one may be inside a query), then die of the signal as before. A handler
    the project installed is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def write_then_die(signum: int, frame: Any) -> None:
        writing = threading.Thread(target=ends.write, name="powercrud-async-ends", daemon=True)
        writing.start()
        writing.join(SIGTERM_WRITE_TIMEOUT)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, write_then_die)


ends = Ends()
atexit.register(ends.write)
os.register_at_fork(after_in_child=ends.reset)


def _write_now(state: TaskState, event: str) -> bool:
    """Write what ``state`` holds now (caller holds ``state.lock``); forget it after cleanup.
    A record write and its timeline rows share one transaction unless a caller's is open."""
    if _statements(state) > 1 and not sql.in_callers_transaction(state.tracking.db):
        _write_together([state])
        return not state.pending
    return _write_alone(state, event)


def _write_alone(state: TaskState, event: str) -> bool:
    """``_write_now`` statement by statement, each failure logged and kept."""
    state.cancel_timer()
    ok = _flush(state, event=event)
    if ok and state.cleaned:
        forget(state.tracking, state.task_name)
    return ok


def persist(
    manager: TrackedManager, event: str, task_name: str, payload: Mapping[str, Any]
) -> bool:
    """Persist one event; returns True if it was written (False: deferred, dropped or failed)."""
    tracking = manager.get_tracking()
    if payload.get("redelivered") and _recorded_final(tracking, task_name):
        return False  # the worker wrote it, and died before it could say so
    changes = changes_for(manager, tracking, event, payload)
    row = event_row(event, task_name, payload) if tracking.timeline_limit() > 0 else None
    if event == "progress" and (tracking.label, task_name) in _finished:
        return False  # a late progress never reopens a finished task
    state = state_for(tracking, task_name)
    with state.lock:
        state.tracking = tracking  # the latest configuration writes what is pending
        if event == "start":
            state.saw_start = True
        elif event == "create":
            state.saw_create = True
        if event == "progress":
            if state.terminal:
                return False  # a late progress never reopens a finished task
            interval = tracking.interval()
            now = time.monotonic()
            # The runner's buffer already publishes at most once per PROGRESS_WRITE_INTERVAL;
            # what it emits as it stops tracking a task is the final value: written at once.
            tracked = progress.buffer.latest(task_name) is not None
            buffered = (tracked or state.buffered) and interval <= float(
                conf.get("PROGRESS_WRITE_INTERVAL")
            )
            state.buffered = tracked
            if not buffered and now - state.last_progress < interval:
                merge(state.changes, changes)
                state.deferred_row = row if row is not None else state.deferred_row
                if not connections[tracking.db].in_atomic_block:
                    # Another thread could not see this transaction's record: inside one, the
                    # deferred value waits for the task's next event (or flush_pending()).
                    _schedule(state, state.last_progress + interval - now)
                return False
            state.last_progress = now
        merge(state.changes, changes)
        state.touch = True
        state.queue_deferred_row()
        if row is not None:
            state.rows.append(row)
        if event == "create":
            state.insert_first = True
        if event in TERMINAL_EVENTS:
            state.terminal = True
        state.cleaned = state.cleaned or event == "cleanup"
        state.last_event = event
        if _held_for_next_event(state, event, task_name, tracking):
            return False
        return _write_now(state, event)


def prepare_within(
    manager: TrackedManager, event: str, task_name: str, payload: Mapping[str, Any], using: str
) -> Callable[[], None] | None:
    """Prepare ``event`` to be written inside the caller's transaction on ``using`` (a launch
    writing its ``create`` with the registration: one commit for both); the returned call
    writes it and may run again if that transaction is retried. ``None`` if the record or the
    timeline lives on another database. The call raises on failure and holds nothing for
    later: the caller rolls back and emits the event after commit instead."""
    tracking = manager.get_tracking()
    if tracking.db != using or sql.timeline_db() != using:
        return None
    changes = changes_for(manager, tracking, event, payload)
    limit = tracking.timeline_limit()
    row = event_row(event, task_name, payload) if limit > 0 else None
    # Built now, so the transaction only runs them: the record's INSERT, and the timeline row's
    # unless that first row would already call for a trim (a limit within the slack).
    trims = row is not None and 1 + TIMELINE_SLACK > limit
    record = None if event != "create" or trims else sql.record_insert(tracking, task_name, changes)
    rows = sql.rows_insert([row]) if row is not None and record is not None else None

    def write() -> None:
        if record is not None:
            try:
                sql.run(using, record)
            except IntegrityError:  # a kept record under this key: update it as below
                if connections[using].vendor != "sqlite":
                    raise  # the failed INSERT ended the transaction: caller retries without
            else:
                if rows is not None:
                    sql.run(using, rows)
                return
        state = TaskState(  # not registered: a rollback leaves nothing behind
            tracking,
            task_name,
            changes=dict(changes),
            touch=True,
            rows=[] if row is None else [row],
            insert_first=event == "create",
        )
        with sql.owned(using):
            _flush(state, event=event, strict=True)

    return write


def _recorded_final(tracking: Tracking, task_name: str) -> bool:
    """Whether the record of ``task_name`` shows a terminal status already."""
    if not tracking.status_column:
        return False
    return (
        tracking.manager()
        .filter(
            **{tracking.task_column: task_name, f"{tracking.status_column}__in": TERMINAL_VALUES}
        )
        .exists()
    )


def flush(task_name: str | None = None) -> int:
    """Write every deferred or failed change this process holds; returns how many tasks."""
    done = ends.write() if task_name is None else 0
    for state in pending_states(task_name):
        with state.lock:
            state.cancel_timer()
            if _flush(state):
                done += 1
    return done
