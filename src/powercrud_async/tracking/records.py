"""How ``ModelTrackingAsyncManager`` persists lifecycle events into a project's record model.

The public facade is ``powercrud_async.async_dashboard``; the configuration it works from is
``tracking_config``. This module holds:

* ``changes_for``: one event's payload as column values, each tagged with the guard that keeps a
  status from moving backwards.
* ``persist``: one event costs at most one UPDATE of the record (plus the INSERT that creates it)
  and one timeline INSERT. Progress is coalesced per task; a failed write is kept in memory and
  merged into the next write for the task, so the next event repairs the record.
* ``reconcile``: what ``cleanup_completed_tasks`` does to records (repairs from the registry,
  ``cleaned_up`` flags).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import conf, progress, redaction
from ..lifecycle.finish import FINISH_EVENTS, final_payload
from ..payloads import json_text
from ..statuses import TERMINAL, TaskStatus
from .config import UNSET_STATUS, Tracking, model_field

if TYPE_CHECKING:
    from ..async_dashboard import ModelTrackingAsyncManager

logger = logging.getLogger("powercrud_async.tracking.records")

#: Logical names whose payload key differs; any other logical name is its payload key.
PAYLOAD_KEYS: dict[str, str] = {
    "user": "user",
    "user_id": "user",
    "affected": "affected_objects",
    "args": "task_args",
    "kwargs": "task_kwargs",
    "cleaned": "cleaned_up",
}

#: Fields whose meaning depends on the task's state: written only while the status may still
#: move to the event's status (a late ``progress`` never overwrites a finished record).
GUARDED = frozenset(
    {
        "status", "message", "progress", "percent", "result", "completed_at", "failed_at",
        "cancelled_at", "duration", "error", "traceback", "reason",
    }
)

#: Rank of the status each event moves a task to (``cleanup`` moves nothing).
EVENT_RANK: dict[str, int] = {
    "create": TaskStatus.PENDING.rank,
    "start": TaskStatus.IN_PROGRESS.rank,
    "progress": TaskStatus.IN_PROGRESS.rank,
    "complete": TaskStatus.SUCCESS.rank,
    "fail": TaskStatus.FAILED.rank,
    "cancel": TaskStatus.CANCELLED.rank,
}
TERMINAL_EVENTS = frozenset({"complete", "fail", "cancel"})
#: The payload key holding the moment each event happened (others: when it was handled).
EVENT_TIME_KEYS = {
    "create": "created_at",
    "start": "started_at",
    "complete": "completed_at",
    "fail": "failed_at",
    "cancel": "cancelled_at",
}
#: Current statuses a guarded field of an event of each rank may still overwrite.
ALLOWED_FROM: dict[int, tuple[str, ...]] = {
    0: (TaskStatus.PENDING.value, *UNSET_STATUS),
    1: (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, *UNSET_STATUS),
    2: (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, *UNSET_STATUS),
}
TERMINAL_VALUES = tuple(s.value for s in TERMINAL)

#: Timeline rows another process may add for a task (``create`` from the launcher, ...).
TIMELINE_SLACK = 5
#: In-process task states kept at most (oldest idle ones are forgotten first).
MAX_STATES = 10_000

SKIP = object()



# -- one event as column values ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Change:
    """A column value and the rank of the event it came from (``None``: not guarded)."""

    value: Any
    guard: int | None


def merge(into: dict[str, Change], changes: Mapping[str, Change]) -> None:
    """Later changes win, except a guarded value never loses to one from a lower-ranked event."""
    for column, change in changes.items():
        old = into.get(column)
        if old is not None and old.guard is not None and change.guard is not None \
                and change.guard < old.guard:
            continue
        into[column] = change


def coerce(manager: ModelTrackingAsyncManager, field_obj: models.Field, value: Any) -> Any:
    """``value`` in the shape the column takes, or ``SKIP`` if it cannot hold it."""
    if isinstance(field_obj, models.JSONField):
        return manager.format_payload(value)
    if isinstance(field_obj, (models.CharField, models.TextField)):
        text = value if isinstance(value, str) else json_text(manager.format_payload(value))
        text = str(text)
        limit = getattr(field_obj, "max_length", None)
        if limit and len(text) > limit:
            text = text[: limit - 1] + "…"
        return text
    if isinstance(field_obj, models.DateTimeField):
        if isinstance(value, str):
            value = parse_datetime(value)
        return value if isinstance(value, datetime) else SKIP
    if isinstance(field_obj, models.DurationField):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return timedelta(seconds=value)
        return value if isinstance(value, timedelta) else SKIP
    if isinstance(field_obj, models.BooleanField):
        return bool(value)
    if isinstance(field_obj, (models.FloatField, models.IntegerField, models.DecimalField)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return SKIP
        if isinstance(field_obj, models.IntegerField):
            return int(value)
        return value
    if field_obj.is_relation:
        related = field_obj.related_model
        if isinstance(value, models.Model) and isinstance(related, type) and isinstance(value, related):
            return value.pk
        return SKIP
    return value


def progress_value(field_obj: models.Field, payload: Mapping[str, Any]) -> Any:
    """The progress column's value: the latest progress text, plus its numbers in a JSON column.

    An empty text is ``SKIP``: a progress call with only numbers keeps the last message.
    """
    raw = payload.get("progress", payload.get("progress_payload"))
    if isinstance(raw, Mapping):
        text = raw.get("message", payload.get("message"))
        numbers = {k: raw[k] for k in ("current", "total", "percent") if k in raw}
    else:
        text, numbers = raw, {}
    if isinstance(field_obj, models.JSONField):
        value = {"message": text, **numbers} if text or numbers else None
        return SKIP if value is None else value
    return text if isinstance(text, str) and text else SKIP


def _user_value(manager: ModelTrackingAsyncManager, field_obj: models.Field, user: Any) -> Any:
    if field_obj.is_relation:
        authenticated = getattr(user, "is_authenticated", False) and getattr(user, "pk", None)
        related = field_obj.related_model
        fits = isinstance(related, type) and isinstance(user, related)
        return user.pk if authenticated and fits else SKIP
    return manager.format_user(user)


def _user_id_value(user: Any) -> Any:
    """The launcher's pk, what dashboard ownership is decided by (never the display label)."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return SKIP
    return str(user.pk)


def changes_for(
    manager: ModelTrackingAsyncManager, tracking: Tracking, event: str, payload: Mapping[str, Any]
) -> dict[str, Change]:
    """The columns ``event`` writes: only the fields it carries, never a ``None``."""
    rank = EVENT_RANK.get(event)
    if rank is None and payload.get("status"):
        try:
            rank = TaskStatus(payload["status"]).rank
        except ValueError:
            rank = None
    out: dict[str, Change] = {}
    for logical, column in tracking.field_map.items():
        if logical in ("task_name", "updated_at"):
            continue
        key = PAYLOAD_KEYS.get(logical, logical)
        if key not in payload and not (logical == "progress" and "progress_payload" in payload):
            continue
        raw = payload.get(key)
        field_obj = tracking.fields[column]
        if logical == "progress":
            value = progress_value(field_obj, payload)
        elif logical == "user":
            value = _user_value(manager, field_obj, raw)
        elif logical == "user_id":
            value = _user_value(manager, field_obj, raw) if field_obj.is_relation else _user_id_value(raw)
        elif logical == "affected":
            value = manager.format_affected(raw)
        elif logical in ("args", "kwargs") and raw is not None:
            value = redaction.for_record(raw)
        elif raw is None:
            continue
        else:
            value = raw
        if value is SKIP:
            continue
        value = coerce(manager, field_obj, value)
        if value is SKIP:
            continue
        guard = rank if (logical in GUARDED and rank is not None) else None
        merge(out, {column: Change(value, guard)})
    return out


def event_row(event: str, task_name: str, payload: Mapping[str, Any]) -> Any:
    """The unsaved ``TaskEvent`` for one event (time: when it happened, if the payload says)."""
    from ..models import TaskEvent

    when = payload.get(EVENT_TIME_KEYS.get(event, ""), None)
    if not isinstance(when, datetime):
        when = timezone.now()
    status = payload.get("status")
    message = payload.get("message")
    if event == "cleanup" and not message:
        released = payload.get("locks_released")
        message = "Cleaned up" + (f": {released} lock(s) released" if released is not None else "")
    elif event == "progress" and payload.get("percent") is not None:
        message = f"{message or ''} ({payload['percent']:g}%)".strip()
    return TaskEvent(
        task_name=task_name,
        event=str(event)[:20],
        status=str(status) if status else "",
        message=str(message or ""),
        created_at=when,
    )


# -- writing ------------------------------------------------------------------------------------
class RecordWriteError(Exception):
    """Neither an UPDATE nor an INSERT could place the record (e.g. a required column)."""


@contextmanager
def _savepoint_if_atomic(using: str) -> Iterator[None]:
    """Inside a caller's transaction, a failure of ours must not poison it: use a savepoint.
    Outside one (the worker, on_commit callbacks) no extra statements are spent."""
    if connections[using].in_atomic_block:
        with transaction.atomic(using=using):
            yield
    else:
        yield


def _assignments(tracking: Tracking, changes: Mapping[str, Change],
                 now: datetime) -> list[tuple[models.Field, Any, int | None]]:
    """``(field, value, guard)`` for every column an UPDATE writes, ``auto_now`` columns included."""
    values: dict[str, tuple[Any, int | None]] = {c: (ch.value, ch.guard) for c, ch in changes.items()}
    stamped = list(tracking.auto_now)
    updated = tracking.field_map.get("updated_at")
    if updated and isinstance(tracking.fields[updated], models.DateTimeField):
        stamped.append(updated)
    for column in stamped:
        values.setdefault(column, (now, None))
    return [(model_field(tracking.model, column), value, guard) for column, (value, guard) in values.items()]


def _db_column(tracking: Tracking, name: str) -> str:
    field_obj = model_field(tracking.model, name)
    return field_obj.column or field_obj.attname


def _update_statement(tracking: Tracking, task_name: str, changes: Mapping[str, Change],
                      now: datetime) -> tuple[str, list[Any]] | None:
    """One ``UPDATE … WHERE task = %s`` for ``changes`` (``None`` if there is nothing to set).

    Written as SQL rather than ``QuerySet.update(Case(When(...)))``: the ORM spent more time
    compiling the guard expressions of a job's last write than the database took to run it.
    A guarded column keeps its value unless the status still allows the event's rank, so the
    guard holds across processes without reading the record first."""
    assignments = _assignments(tracking, changes, now)
    if not assignments:
        return None
    conn = connections[tracking.db]
    qn = conn.ops.quote_name
    status = qn(_db_column(tracking, tracking.status_column)) if tracking.status_column else None
    sets: list[str] = []
    params: list[Any] = []
    for field_obj, value, guard in assignments:
        column = qn(field_obj.column or field_obj.attname)
        placeholder = conn.ops.unification_cast_sql(field_obj) % "%s"
        prepared = field_obj.get_db_prep_save(value, connection=conn)
        if guard is None or status is None:
            sets.append(f"{column} = %s")
            params.append(prepared)
            continue
        allowed = ALLOWED_FROM[min(guard, 2)]
        sets.append(f"{column} = CASE WHEN {status} IN ({', '.join(['%s'] * len(allowed))}) "
                    f"OR {status} IS NULL THEN {placeholder} ELSE {column} END")
        params.extend([*allowed, prepared])
    task_column = qn(_db_column(tracking, tracking.task_column))
    sql = (f"UPDATE {qn(tracking.model._meta.db_table)} SET {', '.join(sets)} "
           f"WHERE {task_column} = %s")
    return sql, [*params, task_name]


def _apply(tracking: Tracking, task_name: str, changes: Mapping[str, Change]) -> bool:
    """Run the UPDATE for ``changes``; True if the record exists (rows matched, even unchanged)."""
    statement = _update_statement(tracking, task_name, changes, timezone.now())
    if statement is None:  # nothing to write (a model with only task_name): does it exist?
        return tracking.manager().filter(**{tracking.task_column: task_name}).exists()
    with connections[tracking.db].cursor() as cursor:
        cursor.execute(*statement)
        return cursor.rowcount > 0


def _insert(tracking: Tracking, task_name: str, changes: Mapping[str, Change]) -> IntegrityError | None:
    """Create the record. Returns the ``IntegrityError`` if that failed on a unique task column
    (the record exists already, or a required column has no value); ``None`` if created."""
    values: dict[str, Any] = dict(tracking.create_defaults)
    for column, change in changes.items():
        values[model_field(tracking.model, column).attname] = change.value
    values[tracking.task_column] = task_name
    try:
        with _savepoint_if_atomic(tracking.db):
            tracking.model(**values).save(force_insert=True, using=tracking.db)
    except IntegrityError as exc:
        if not tracking.unique_task:
            raise
        return exc
    return None


def write_record(tracking: Tracking, task_name: str, changes: Mapping[str, Change], *,
                 insert_first: bool = False, create: bool = True) -> str:
    """Apply ``changes`` in one UPDATE, or create the record; returns ``"updated"``,
    ``"inserted"``, or ``"missing"`` (no record and ``create`` is false).

    ``insert_first`` (a ``create`` event, unique task column, no open transaction) tries the
    INSERT first, so the usual launch costs one statement instead of two.
    """
    error: IntegrityError | None = None
    with _savepoint_if_atomic(tracking.db):
        if insert_first and tracking.unique_task and not connections[tracking.db].in_atomic_block:
            error = _insert(tracking, task_name, changes)
            if error is None:
                return "inserted"
        if _apply(tracking, task_name, changes):
            return "updated"
        if not create:
            return "missing"
        if error is None:
            error = _insert(tracking, task_name, changes)
            if error is None:
                return "inserted"
            # Created by another process between our UPDATE and INSERT: apply on top of it.
            if _apply(tracking, task_name, changes):
                return "updated"
    raise RecordWriteError(
        f"the record of task {task_name} could be neither updated nor created: {error}"
    ) from error


def trim_timeline(task_name: str, limit: int) -> int:
    """Delete the oldest ``progress`` rows beyond the newest ``limit`` rows (one DELETE)."""
    from ..models import TaskEvent

    db = router.db_for_write(TaskEvent)
    newest = TaskEvent.objects.using(db).filter(task_name=task_name).order_by("-id").values("id")
    cutoff = Subquery(newest[limit - 1 : limit])
    deleted, _ = TaskEvent.objects.using(db).filter(
        task_name=task_name, event="progress", id__lt=cutoff
    ).delete()
    return deleted


def insert_rows(rows: list[Any]) -> None:
    """One INSERT for the timeline rows (``save`` for a single row: on SQLite ``bulk_create``
    adds its own BEGIN/COMMIT round trips)."""
    from ..models import TaskEvent

    db = router.db_for_write(TaskEvent)
    with _savepoint_if_atomic(db):
        if len(rows) == 1:
            rows[0].save(force_insert=True, using=db)
        else:
            TaskEvent.objects.using(db).bulk_create(rows)


# -- per-process state --------------------------------------------------------------------------
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
    timer: threading.Timer | None = None
    batch_depth: int = 0
    cleaned: bool = False
    last_event: str = ""

    @property
    def pending(self) -> bool:
        return bool(self.changes or self.touch or self.rows or self.deferred_row is not None)


_states: OrderedDict[tuple[str, str], TaskState] = OrderedDict()
_states_lock = threading.Lock()
#: Tasks this process saw end (bounded), so a late ``progress`` after cleanup is dropped.
_finished: OrderedDict[tuple[str, str], None] = OrderedDict()


def state_for(tracking: Tracking, task_name: str) -> TaskState:
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
    key = (tracking.label, task_name)
    with _states_lock:
        state = _states.pop(key, None)
        _finished[key] = None
        while len(_finished) > MAX_STATES:
            _finished.popitem(last=False)
    if state is not None and state.timer is not None:
        state.timer.cancel()


def reset_state() -> None:
    """Forget every in-process task state and cancel pending timers (tests, forks)."""
    with _states_lock:
        states = list(_states.values())
        _states.clear()
        _finished.clear()
    for state in states:
        if state.timer is not None:
            state.timer.cancel()


def pending_states(task_name: str | None = None) -> list[TaskState]:
    with _states_lock:
        return [s for s in _states.values() if s.pending and task_name in (None, s.task_name)]


def _flush(state: TaskState, *, event: str = "", create: bool = True) -> bool:
    """Write what ``state`` holds (caller holds ``state.lock``). True if nothing is left.

    ``create=False`` (a timer's deferred write) drops what it holds when the record is gone
    instead of bringing a deleted record back."""
    tracking = state.tracking
    if state.deferred_row is not None:
        state.rows.append(state.deferred_row)
        state.deferred_row = None
    ok = True
    if state.changes or state.touch:
        try:
            outcome = write_record(tracking, state.task_name, state.changes,
                                   insert_first=state.insert_first, create=create)
        except Exception:  # noqa: BLE001 - never break the worker, hook or launch
            ok = False
            logger.exception(
                "Could not write the record of task %s (%s) for its %r event; the next event for "
                "this task or cleanup_completed_tasks() will repair it.",
                state.task_name, tracking.label, event or "pending",
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
                insert_rows(state.rows)
            except Exception:  # noqa: BLE001
                ok = False
                logger.exception("Could not write the timeline of task %s for its %r event.",
                                 state.task_name, event or "pending")
            else:
                state.inserted += len(state.rows)
                state.rows = []
                _maybe_trim(state, event, limit)
    return ok


def _maybe_trim(state: TaskState, event: str, limit: int) -> None:
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
        trim_timeline(state.task_name, limit)
        state.trimmed_at = state.inserted
    except Exception:  # noqa: BLE001
        logger.exception("Could not trim the timeline of task %s.", state.task_name)


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
    finally:
        connections.close_all()


def _schedule(state: TaskState, delay: float) -> None:
    if state.timer is not None:
        return
    timer = threading.Timer(max(0.0, delay), _on_timer, args=(state,))
    timer.daemon = True
    state.timer = timer
    timer.start()


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
def batch(manager: ModelTrackingAsyncManager, task_name: str) -> Iterator[None]:
    """Write the events emitted inside as one record UPDATE and one timeline INSERT, at exit."""
    try:
        tracking = manager.get_tracking()
    except Exception:  # noqa: BLE001 - each event reports the misconfiguration itself
        yield
        return
    state = state_for(tracking, task_name)
    with state.lock:
        state.batch_depth += 1
    try:
        yield
    finally:
        with state.lock:
            state.batch_depth -= 1
            if not state.batch_depth and state.pending:
                _write_now(state, state.last_event)


def _write_now(state: TaskState, event: str) -> bool:
    """Write what ``state`` holds now (caller holds ``state.lock``); forget it after cleanup."""
    if state.timer is not None:
        state.timer.cancel()
        state.timer = None
    ok = _flush(state, event=event)
    if ok and state.cleaned:
        forget(state.tracking, state.task_name)
    return ok


def persist(manager: ModelTrackingAsyncManager, event: str, task_name: str,
            payload: Mapping[str, Any]) -> bool:
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
        if state.deferred_row is not None:
            state.rows.append(state.deferred_row)
            state.deferred_row = None
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


def _recorded_final(tracking: Tracking, task_name: str) -> bool:
    """Whether the record of ``task_name`` shows a terminal status already."""
    if not tracking.status_column:
        return False
    return tracking.manager().filter(
        **{tracking.task_column: task_name, f"{tracking.status_column}__in": TERMINAL_VALUES}
    ).exists()


def flush(task_name: str | None = None) -> int:
    """Write every deferred or failed change this process holds; returns how many tasks."""
    done = 0
    for state in pending_states(task_name):
        with state.lock:
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
            if _flush(state):
                done += 1
    return done


# -- cleanup: repair records from the registry -----------------------------------------------
def mark_cleaned(tracking: Tracking, task_names: list[str]) -> int:
    """``cleaned_up = True`` on the records of ``task_names`` that are not yet; returns how many."""
    column = tracking.field_map.get("cleaned")
    if not column or not task_names:
        return 0
    values: dict[str, Any] = {column: True}
    values.update((f.name, value) for f, value, _ in _assignments(tracking, {}, timezone.now()))
    total = 0
    for start in range(0, len(task_names), 500):
        chunk = task_names[start : start + 500]
        total += tracking.manager().filter(
            **{f"{tracking.task_column}__in": chunk, column: False}
        ).update(**values)
    return total


def reconcile(manager: ModelTrackingAsyncManager, *, dry_run: bool = False,
              batch_size: int = 500) -> dict[str, Any]:
    """Bring records in line with the registry: a finished task's record gets its terminal
    status (if an event write was lost), a task the registry no longer knows gets ``failed``,
    and records of tasks that hold no locks get ``cleaned_up = True``."""
    from ..runner import dead_after
    from ..stores import get_store

    tracking = manager.get_tracking()
    summary: dict[str, Any] = {"repaired": [], "cleaned": 0}
    status_column = tracking.status_column
    cleaned_column = tracking.field_map.get("cleaned")
    if status_column is None and cleaned_column is None:
        return summary
    query = Q()
    if status_column:
        query |= ~Q(**{f"{status_column}__in": TERMINAL_VALUES}) | Q(**{f"{status_column}__isnull": True})
    if cleaned_column:
        query |= Q(**{cleaned_column: False})
    fmap = tracking.field_map
    seen_column = next((fmap[k] for k in ("updated_at", "created_at") if k in fmap
                        and isinstance(tracking.fields[fmap[k]], models.DateTimeField)), None)
    wanted = ["pk", tracking.task_column] + [c for c in (status_column, seen_column) if c]
    store = get_store()
    owners = store.lock_owners()
    now = timezone.now()
    grace = timedelta(seconds=dead_after())
    to_clean: list[str] = []
    last_pk: Any = None
    base = tracking.manager().filter(query).order_by("pk")
    while True:
        page = base.filter(pk__gt=last_pk) if last_pk is not None else base
        rows = list(page.values(*wanted)[:batch_size])
        if not rows:
            break
        last_pk = rows[-1]["pk"]
        infos = store.get_many([r[tracking.task_column] for r in rows])
        for row in rows:
            name = row[tracking.task_column]
            info = infos.get(name)
            if info is not None and info.is_active:
                continue
            status = row.get(status_column) if status_column else None
            record_terminal = status in TERMINAL_VALUES
            if status_column and not record_terminal:
                payload = _repair_payload(info, row.get(seen_column) if seen_column else None,
                                          now, grace)
                if payload is None:
                    continue
                event, values = payload
                if name not in owners:
                    values["cleaned_up"] = True
                summary["repaired"].append({"task_name": name, "status": values["status"],
                                            "reason": values["message"]})
                if not dry_run:
                    repair(manager, tracking, event, name, values)
                continue
            if name not in owners:
                to_clean.append(name)
    summary["cleaned"] = len(to_clean) if dry_run else mark_cleaned(tracking, to_clean)
    return summary


def _repair_payload(info: Any, seen: datetime | None, now: datetime,
                    grace: timedelta) -> tuple[str, dict[str, Any]] | None:
    if info is None:
        if seen is not None and now - seen < grace:
            return None  # just written: its registration may still be on its way
        reason = "No longer registered (removed or purged) before its end was recorded."
        return "fail", {"status": TaskStatus.FAILED, "message": f"Failed: {reason}",
                        "result": reason, "error": reason, "reason": reason, "failed_at": now}
    status = TaskStatus(info.status)
    reason = info.reason or ("The worker failed" if status is TaskStatus.FAILED else "")
    payload = final_payload(status, info.finished_at or now, info.started_at, error=reason, reason=reason)
    return FINISH_EVENTS[status], payload


def repair(manager: ModelTrackingAsyncManager, tracking: Tracking, event: str, task_name: str,
           payload: dict[str, Any]) -> None:
    """Write a terminal state found by cleanup (no lifecycle hook is called: the event already
    happened; only its record was lost). The timeline notes who recorded it."""

    changes = changes_for(manager, tracking, event, payload)
    try:
        write_record(tracking, task_name, changes)
        if tracking.timeline_limit() > 0:
            row = event_row(event, task_name, {  # stamped now: when the repair happened
                "status": payload["status"], "message": f"{payload['message']} (recorded by cleanup)",
            })
            insert_rows([row])
    except Exception:  # noqa: BLE001
        logger.exception("Cleanup could not repair the record of task %s", task_name)
