"""The hot, ephemeral state of a task in the cache: status, latest progress, owner.

One cache entry per task holds everything the progress endpoint needs, so polling a running task
costs one cache read and no SQL of ours. Writes from a running job are coalesced: the latest
update is kept in memory and written at most once per ``PROGRESS_WRITE_INTERVAL``; the runner's
ticker flushes what is pending, so pollers see it within about that interval.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.db import DatabaseCache

from . import conf, timers
from .conflicts import NAME_MAX_LENGTH, impossible_name, text_problem
from .exceptions import InvalidProgress, InvalidTaskName, TaskCancelled, UnknownTask
from .statuses import TaskStatus

KEY_PREFIX = "powercrud_async:task:"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressSnapshot:
    task_name: str
    status: str
    message: str = ""
    current: float | None = None
    total: float | None = None
    user_id: str | None = None
    updated_at: float = 0.0

    @property
    def percent(self) -> float | None:
        current, total = finite(self.current), finite(self.total)
        if current is None or not total:
            return None
        return max(0.0, min(100.0, round(100.0 * current / total, 1)))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["current"], data["total"] = finite(self.current), finite(self.total)
        data["percent"] = self.percent
        data["progress"] = self.message
        return data


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None`` (NaN and infinity are not JSON)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def validate_update(task_key: Any, message: Any, current: Any, total: Any) -> None:
    """What ``update_progress`` accepts: a task key, a text message, finite numbers or None."""
    if not isinstance(task_key, str) or not task_key or text_problem(task_key, NAME_MAX_LENGTH):
        raise InvalidTaskName(f"update_progress needs a task key, got {task_key!r}.")
    if not isinstance(message, str):
        raise InvalidProgress(f"progress message must be a string, got {type(message).__name__}.")
    for name, value in (("current", current), ("total", total)):
        if value is not None and finite(value) is None:
            raise InvalidProgress(f"{name} must be a finite number, got {value!r}.")


def cache() -> BaseCache:
    return caches[conf.get("CACHE_NAME")]


def cache_key(task_name: str) -> str:
    """A key every cache backend takes whatever the task name (memcached refuses spaces,
    control characters and keys over 250 bytes): a digest of the name."""
    digest = hashlib.sha256(task_name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}{digest}"


def write(snapshot: ProgressSnapshot) -> None:
    """Store a full snapshot (no read-modify-write: writers always hold the whole state)."""
    snapshot = replace(snapshot, updated_at=time.time())
    cache().set(cache_key(snapshot.task_name), asdict(snapshot), conf.get("PROGRESS_TTL"))


def read(task_name: str) -> ProgressSnapshot | None:
    data = cache().get(cache_key(task_name))
    if not isinstance(data, dict):
        return None
    try:
        return ProgressSnapshot(**data)
    except TypeError:
        return None


def delete(task_name: str) -> None:
    """Drop the task's entry, and any value held for it: the task is over or forgotten.

    On a ``DatabaseCache`` a DELETE takes the database's write lock (all of it, on SQLite)
    even when it removes nothing, as for most short jobs: look first, a read takes none."""
    outside.discard(task_name)
    store, key = cache(), cache_key(task_name)
    if isinstance(store, DatabaseCache) and not store.has_key(key):
        return
    store.delete(key)


def resolve(task_name: str) -> ProgressSnapshot | None:
    """The live snapshot from the cache; for a queued or finished task (no cache entry), what the
    registry says. ``None`` for a key that was never launched or is purged, or that no task can
    have (it is not even looked up, so no database refuses it)."""
    if impossible_name(task_name):
        return None
    snapshot = read(task_name)
    if snapshot is not None:
        return snapshot
    from .stores import get_store

    info = get_store().get(task_name)
    if info is None:
        return None
    status = TaskStatus(info.status)
    message = info.reason or {TaskStatus.PENDING: "Queued", TaskStatus.SUCCESS: "Completed"}.get(
        status, str(status.label)
    )
    return ProgressSnapshot(
        task_name=task_name, status=status, message=message, user_id=info.user_id
    )


Emit = Callable[[ProgressSnapshot], None]


@dataclass(slots=True)
class _Pending:
    snapshot: ProgressSnapshot
    emit: Emit | None
    dirty: bool = False
    last_flush: float = 0.0
    cancelled: threading.Event | None = None


class ProgressBuffer:
    """Per-process coalescing of progress writes for the tasks this process is running."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._tracked: dict[str, _Pending] = {}
        #: When a write is due is judged on this clock; tests replace it to decide time.
        self.clock = clock

    def track(self, snapshot: ProgressSnapshot, cancelled: threading.Event) -> None:
        """Called by the runner: updates for this task are coalesced until ``untrack``."""
        with self._lock:
            # Dirty: the ticker's first tick publishes "running" unless an update beats it.
            self._tracked[snapshot.task_name] = _Pending(
                snapshot, None, dirty=True, last_flush=self.clock(), cancelled=cancelled
            )

    def untrack(self, task_name: str) -> None:
        """Stop coalescing. A pending update still reaches lifecycle handlers, so the final
        progress is always recorded; the cache entry is left to the caller (``finish`` drops it)."""
        with self._lock:
            pending = self._tracked.pop(task_name, None)
        if pending is not None and pending.dirty and pending.emit is not None:
            pending.emit(pending.snapshot)

    def is_cancelled(self, task_name: str) -> bool:
        pending = self._tracked.get(task_name)
        return bool(pending and pending.cancelled and pending.cancelled.is_set())

    def latest(self, task_name: str) -> ProgressSnapshot | None:
        pending = self._tracked.get(task_name)
        return pending.snapshot if pending else None

    def offer(self, snapshot: ProgressSnapshot, emit: Emit) -> bool:
        """Record an update; write it now if the interval has passed. Returns True if tracked."""
        interval = conf.get("PROGRESS_WRITE_INTERVAL")
        with self._lock:
            pending = self._tracked.get(snapshot.task_name)
            if pending is None:
                return False
            pending.snapshot, pending.emit, pending.dirty = snapshot, emit, True
            due = self.clock() - pending.last_flush >= interval
        if due:
            self.flush(snapshot.task_name)
        return True

    def flush(self, task_name: str) -> None:
        with self._lock:
            pending = self._tracked.get(task_name)
            if pending is None or not pending.dirty:
                return
            pending.dirty = False
            pending.last_flush = self.clock()
            snapshot, emit = pending.snapshot, pending.emit
        write(snapshot)
        if emit is not None:
            emit(snapshot)


class OutsideBuffer:
    """Per-process coalescing of progress reported for a task this process is not running (a
    management command or a view reporting for a job).

    The first update of a key in an interval is written at once (after checking the task exists
    and is not finished); later ones in the same interval only replace the held value, which one
    the process's timer thread writes when the interval is over, and ``atexit`` at the latest. A held value
    is written only if the task is still unfinished then, so it never reopens a finished task.
    """

    #: Keys whose last write time is remembered at most (oldest forgotten first).
    MAX_KEYS = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._written: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._held: dict[str, tuple[ProgressSnapshot, Emit]] = {}
        self._timer: timers.Timer | None = None
        #: When a write is due is judged on this clock; tests replace it to decide time.
        self.clock = clock

    def hold(self, snapshot: ProgressSnapshot, emit: Emit) -> bool:
        """Keep ``snapshot`` for later if its key was written less than an interval ago."""
        interval = float(conf.get("PROGRESS_WRITE_INTERVAL"))
        with self._lock:
            written = self._written.get(snapshot.task_name)
            now = self.clock()
            if written is None or now - written[0] >= interval:
                return False
            self._held[snapshot.task_name] = (replace(snapshot, user_id=written[1]), emit)
            self._arm(written[0] + interval - now)
            return True

    def wrote(self, snapshot: ProgressSnapshot) -> None:
        """Note that ``snapshot`` was just written, so the interval starts now."""
        with self._lock:
            self._written[snapshot.task_name] = (self.clock(), snapshot.user_id)
            self._written.move_to_end(snapshot.task_name)
            while len(self._written) > self.MAX_KEYS:
                self._written.popitem(last=False)

    def discard(self, task_name: str) -> None:
        with self._lock:
            self._held.pop(task_name, None)

    def reset(self) -> None:
        """Forget what is held and when each key was written (tests, forks)."""
        with self._lock:
            self._held.clear()
            self._written.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def latest(self, task_name: str) -> ProgressSnapshot | None:
        held = self._held.get(task_name)
        return held[0] if held else None

    def _arm(self, delay: float) -> None:
        if self._timer is None:
            self._timer = timers.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> int:
        """Write every held value whose task is still unfinished; returns how many."""
        with self._lock:
            held, self._held = self._held, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        from .statuses import TaskStatus

        written = 0
        for snapshot, emit in held.values():
            existing = resolve(snapshot.task_name)
            if existing is None or TaskStatus(existing.status).is_terminal:
                continue
            write(snapshot)
            self.wrote(snapshot)
            emit(snapshot)
            written += 1
        return written


buffer = ProgressBuffer()
outside = OutsideBuffer()
atexit.register(outside.flush)


def report(
    task_key: str,
    message: str,
    current: float | None,
    total: float | None,
    emit: Callable[[ProgressSnapshot], None],
) -> None:
    """``AsyncManager.update_progress``: inside a job through its buffer, outside one coalesced,
    and ``emit`` called with each snapshot that was written."""
    validate_update(task_key, message, current, total)
    if buffer.is_cancelled(task_key):
        raise TaskCancelled(f"Task {task_key} was cancelled.")
    latest = buffer.latest(task_key)
    snapshot = ProgressSnapshot(
        task_name=task_key,
        status=TaskStatus.IN_PROGRESS,
        message=message,
        current=current,
        total=total,
        user_id=latest.user_id if latest else None,
    )
    if buffer.offer(snapshot, emit):
        return
    if outside.hold(snapshot, emit):
        return
    existing = resolve(task_key)
    if existing is None:
        raise UnknownTask(f"No task with key {task_key!r}: launch it before reporting progress.")
    if TaskStatus(existing.status).is_terminal:
        return  # a late update never reopens a finished task
    snapshot = replace(snapshot, user_id=existing.user_id)
    write(snapshot)
    outside.wrote(snapshot)
    emit(snapshot)
