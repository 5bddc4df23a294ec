"""Lifecycle tracking: SQL statements per event, and 1,000 ``update_progress`` calls on one
tracked task (the embedded default: SQLite + DatabaseCache for progress).

Run from the repository root: ``python -m benchmarks.bench_tracking``.

The running job is simulated the way the runner sets it up: the task is tracked in the progress
buffer and the runner's ``Ticker`` flushes it every ``PROGRESS_WRITE_INTERVAL``. Statements are
counted on every thread (job and ticker), transaction control included, except the poller's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._setup import setup_django, table

#: PowerCRUD 0.9.16: 1,000 update_progress calls on one task with its dashboard manager.
BASELINE_SECONDS = 1.42
BASELINE_STATEMENTS = 6000
CALLS = 1000

_quiet = threading.local()


@contextmanager
def count_statements() -> Iterator[list[str]]:
    """Every SQL statement any thread runs (except threads that opt out) while inside."""
    from django.db.backends.utils import CursorWrapper

    seen: list[str] = []
    lock = threading.Lock()
    original, original_many = CursorWrapper._execute, CursorWrapper._executemany

    def execute(self: Any, sql: str, params: Any, *args: Any) -> Any:
        if not getattr(_quiet, "on", False):
            with lock:
                seen.append(sql)
        return original(self, sql, params, *args)

    def executemany(self: Any, sql: str, param_list: Any, *args: Any) -> Any:
        if not getattr(_quiet, "on", False):
            with lock:
                seen.append(sql)
        return original_many(self, sql, param_list, *args)

    CursorWrapper._execute, CursorWrapper._executemany = execute, executemany  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        CursorWrapper._execute, CursorWrapper._executemany = original, original_many  # type: ignore[method-assign]


def kind(sql: str, record_table: str, event_table: str) -> str:
    verb = sql.split()[0].upper()
    if record_table in sql:
        return f"{verb} record"
    if event_table in sql:
        return f"{verb} timeline"
    if verb in ("BEGIN", "SAVEPOINT", "RELEASE"):
        return verb  # a transaction opened (COMMIT is not a cursor statement)
    return "other"


def per_event() -> list[tuple[object, ...]]:
    from django.utils import timezone

    from powercrud_async.models import TaskEvent
    from powercrud_async.statuses import TaskStatus
    from tests.testapp.managers import TrackedManager
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now
    payloads = {
        "create": {
            "status": TaskStatus.PENDING,
            "message": "Queued",
            "user": None,
            "affected_objects": ["a", "b"],
            "task_args": [1],
            "task_kwargs": {"x": 1},
            "func_path": "tests.testapp.tasks.add",
            "conflict_ids": {},
            "retry_of": "",
            "created_at": now(),
        },
        "start": {
            "status": TaskStatus.IN_PROGRESS,
            "message": "Started",
            "started_at": now(),
            "attempt": 1,
        },
        "progress": {
            "status": TaskStatus.IN_PROGRESS,
            "message": "item 5/10",
            "progress": {"current": 5, "total": 10, "percent": 50.0},
            "percent": 50.0,
        },
        "complete": {
            "status": TaskStatus.SUCCESS,
            "message": "Completed",
            "duration": 1.0,
            "result": {"rows": 10},
            "completed_at": now(),
        },
        "cleanup": {"status": None, "cleaned_up": True, "locks_released": 2},
    }
    finishing = {
        "fail": {
            "status": TaskStatus.FAILED,
            "message": "Failed: ValueError: x",
            "duration": 1.0,
            "result": "ValueError: x",
            "error": "ValueError: x",
            "traceback": "...",
            "reason": "ValueError: x",
            "failed_at": now(),
        },
        "cancel": {
            "status": TaskStatus.CANCELLED,
            "message": "Cancelled",
            "duration": 1.0,
            "result": "Cancelled",
            "cancelled_at": now(),
        },
    }
    manager = TrackedManager()
    record, events = AsyncTaskRecord._meta.db_table, TaskEvent._meta.db_table
    rows = []

    def measure(event: str, name: str, payload: dict[str, Any]) -> None:
        with count_statements() as seen:
            manager.emit(event, name, **payload)
        kinds = [kind(s, record, events) for s in seen]
        rows.append((event, len(seen), ", ".join(kinds)))

    for event, payload in payloads.items():
        measure(event, "bench-events", payload)
    for event, payload in finishing.items():
        manager.emit("create", f"bench-{event}", **payloads["create"])
        measure(event, f"bench-{event}", payload)
    manager.emit("create", "bench-race", **payloads["create"])
    measure("start before create", "bench-race-ahead", payloads["start"])
    return rows


def progress_run(paced: float) -> dict[str, Any]:
    """1,000 ``update_progress`` calls on one running, tracked task; ``paced`` seconds between
    calls. A poller (like the HTMX endpoint) reads the cache every 50 ms meanwhile."""
    from powercrud_async import progress
    from powercrud_async.progress import ProgressSnapshot
    from powercrud_async.runner import Attempt, Ticker
    from powercrud_async.statuses import TaskStatus
    from tests.testapp.managers import TrackedManager
    from tests.testapp.models import AsyncTaskRecord

    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.emit("start", name, status=TaskStatus.IN_PROGRESS, message="Started", attempt=1)
    info = manager.get_task_info(name)
    attempt = Attempt(name, info.attempts if info else 0)  # what the runner holds for this run
    progress.buffer.track(
        ProgressSnapshot(task_name=name, status=TaskStatus.IN_PROGRESS, message="Started"), attempt
    )
    issued: list[float] = []
    stale: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        from django.db import connections

        _quiet.on = True
        try:
            while not stop.is_set():
                snapshot = progress.read(name)
                seen_at = time.perf_counter()
                index = int(snapshot.current or 0) if snapshot else 0
                # how long this reader has been shown an outdated value
                if index < len(issued):
                    stale.append(seen_at - issued[index])
                else:
                    stale.append(0.0)
                stop.wait(0.05)
        finally:
            connections.close_all()

    poller = threading.Thread(target=poll, daemon=True)
    ticker = Ticker(attempt)
    with count_statements() as seen:
        ticker.start()
        poller.start()
        began = time.perf_counter()
        for i in range(1, CALLS + 1):
            issued.append(time.perf_counter())
            manager.update_progress(name, f"item {i}/{CALLS}", current=i, total=CALLS)
            if paced:
                time.sleep(paced)
        ticker.stop()
        progress.buffer.untrack(name)  # the runner's final flush
        elapsed = time.perf_counter() - began
        stop.set()
        poller.join()
    record = AsyncTaskRecord.objects.get(task_name=name)  # before the job's end is recorded
    manager.finish(name, TaskStatus.SUCCESS, result=CALLS)  # as the runner ends the job
    return {
        "seconds": elapsed,
        "statements": len(seen),
        "record_percent": record.percent,
        "record_message": record.message,
        "max_stale": max(stale) if stale else 0.0,
    }


def outside_run() -> dict[str, Any]:
    """1,000 ``update_progress`` calls for a tracked task this process is not running (a command
    or view reporting progress), back to back, then the write its timer makes when the interval
    is over; PowerCRUD wrote the cache on every call."""
    from powercrud_async import progress
    from tests.testapp.managers import TrackedManager

    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    with count_statements() as seen:
        began = time.perf_counter()
        for i in range(1, CALLS + 1):
            manager.update_progress(name, f"item {i}/{CALLS}", current=i, total=CALLS)
        progress.outside.flush()  # what its timer does once PROGRESS_WRITE_INTERVAL is over
        manager.flush_pending(name)  # and the record's own coalescing timer
        elapsed = time.perf_counter() - began
    latest = progress.read(name)
    return {
        "seconds": elapsed,
        "statements": len(seen),
        "cache_message": latest.message if latest else None,
    }


def prune_run(records: int = 20_000, batch_size: int = 1000) -> dict[str, Any]:
    """``pcrud_prune_async``'s work on a table of finished records with two timeline rows and
    one log row each (half of them old enough to go)."""
    from datetime import timedelta

    from django.utils import timezone

    from powercrud_async.models import TaskEvent, TaskLogEntry
    from powercrud_async.tracking.retention import prune
    from tests.testapp.managers import TrackedManager
    from tests.testapp.models import AsyncTaskRecord

    old, new = timezone.now() - timedelta(days=60), timezone.now()
    AsyncTaskRecord.objects.bulk_create(
        (
            AsyncTaskRecord(
                task_name=f"prune-{i}", status="success", completed_at=old if i % 2 else new
            )
            for i in range(records)
        ),
        batch_size=2000,
    )
    TaskEvent.objects.bulk_create(
        (
            TaskEvent(task_name=f"prune-{i}", event=event)
            for i in range(records)
            for event in ("create", "complete")
        ),
        batch_size=2000,
    )
    TaskLogEntry.objects.bulk_create(
        (
            TaskLogEntry(task_name=f"prune-{i}", level=20, level_name="INFO", message="x")
            for i in range(records)
        ),
        batch_size=2000,
    )
    with count_statements() as seen:
        began = time.perf_counter()
        summary = prune(
            TrackedManager().get_tracking(), older_than=timedelta(days=30), batch_size=batch_size
        )
        elapsed = time.perf_counter() - began
    assert (
        summary.records == records // 2
        and AsyncTaskRecord.objects.filter(task_name__startswith="prune-").count()
        == records - records // 2
    )
    return {
        "seconds": elapsed,
        "statements": len(seen),
        "records": summary.records,
        "events": summary.events,
        "logs": summary.logs,
        "batches": summary.batches,
    }


def main() -> None:
    setup_django()
    from django.db import connection

    from powercrud_async import conf

    print(
        f"database: {connection.vendor}; progress cache: DatabaseCache; "
        f"PROGRESS_WRITE_INTERVAL = {conf.get('PROGRESS_WRITE_INTERVAL')} s\n"
    )
    print("Statements per lifecycle event (ModelTrackingAsyncManager, timeline on)")
    print(table(per_event(), ("event", "statements", "what")))
    print()
    burst = progress_run(0.0)
    paced = progress_run(0.003)
    rows = [
        ("PowerCRUD 0.9.16 (baseline)", f"{BASELINE_SECONDS:.3f}", BASELINE_STATEMENTS, "", "", ""),
        (
            "burst: 1,000 calls back to back",
            f"{burst['seconds']:.3f}",
            burst["statements"],
            f"{BASELINE_SECONDS / burst['seconds']:.0f}x",
            f"{BASELINE_STATEMENTS / max(burst['statements'], 1):.0f}x",
            f"{burst['max_stale']:.2f}",
        ),
        (
            f"paced: 1,000 calls over {paced['seconds']:.1f} s",
            f"{paced['seconds']:.3f}",
            paced["statements"],
            "",
            "",
            f"{paced['max_stale']:.2f}",
        ),
    ]
    print(f"{CALLS:,} update_progress calls on one tracked, running task")
    print(
        table(
            rows, ("run", "seconds", "statements", "faster", "fewer statements", "max staleness s")
        )
    )
    for label, run in (("burst", burst), ("paced", paced)):
        assert run["record_percent"] == 100.0, (label, run)
        assert run["record_message"] == f"item {CALLS}/{CALLS}", (label, run)
    outside = outside_run()
    print(
        f"\nOutside a running job: {CALLS:,} calls back to back cost {outside['seconds']:.3f} s and "
        f"{outside['statements']} statements, the held latest included "
        f"(0.1.0 wrote the cache on every call: 5,006 statements, 1.86 s); the cache then reads "
        f"{outside['cache_message']!r}. Target <= 100 statements -> "
        f"{'met' if outside['statements'] <= 100 else 'MISSED'}."
    )
    assert outside["cache_message"] == f"item {CALLS}/{CALLS}", outside
    pruned = prune_run()
    print(
        f"\npcrud_prune_async: {pruned['records']:,} of 20,000 finished records (with "
        f"{pruned['events']:,} timeline rows and {pruned['logs']:,} log rows) in "
        f"{pruned['seconds']:.2f} s, {pruned['statements']} statements in "
        f"{pruned['batches']} batches of 1,000 "
        f"({pruned['records'] / pruned['seconds']:,.0f} records/s)."
    )
    print(
        f"\nThe final progress is in the record after both runs (percent "
        f"{burst['record_percent']:.0f}). Targets: <= 100 statements -> "
        f"{'met' if burst['statements'] <= 100 and paced['statements'] <= 100 else 'MISSED'}; "
        f">= 10x faster -> {'met' if BASELINE_SECONDS / burst['seconds'] >= 10 else 'MISSED'}; "
        f"pollers see the latest progress within about a second -> "
        f"{'met' if paced['max_stale'] <= 1.5 else 'MISSED'}."
    )


if __name__ == "__main__":
    main()
