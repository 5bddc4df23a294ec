"""Event rules of ModelTrackingAsyncManager: what each event writes, idempotent creation, status
never moving backwards, statement counts, progress coalescing, the timeline, and faults."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from powercrud_async import broker, progress, runner, timers
from powercrud_async.async_manager import AsyncManager
from powercrud_async.models import LiveTask, TaskEvent
from powercrud_async.progress import ProgressSnapshot
from powercrud_async.statuses import TaskStatus
from powercrud_async.tracking import sql, writer
from tests.testapp.managers import TrackedManager, UntimedManager
from tests.testapp.models import AsyncTaskRecord

pytestmark = pytest.mark.django_db(transaction=True)

RECORD = AsyncTaskRecord._meta.db_table
EVENTS = TaskEvent._meta.db_table


class EveryProgress(TrackedManager):
    """No coalescing of its own, so each progress event is one write."""

    progress_interval = 0


def key() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def record(task_name: str) -> AsyncTaskRecord:
    return AsyncTaskRecord.objects.get(task_name=task_name)


def timeline(task_name: str) -> list[str]:
    return [
        e.event for e in TaskEvent.objects.filter(task_name=task_name).order_by("created_at", "id")
    ]


# The payloads AsyncManager emits (test_payload_shapes_match_the_manager keeps them honest).
def create(**over: Any) -> dict[str, Any]:
    return {
        "status": TaskStatus.PENDING,
        "message": "Queued",
        "user": None,
        "affected_objects": None,
        "task_args": [1, 2],
        "task_kwargs": {"x": 1},
        "func_path": "tests.testapp.tasks.add",
        "conflict_ids": {},
        "retry_of": "",
        "label": "",
        "created_at": timezone.now(),
        **over,
    }


def start(**over: Any) -> dict[str, Any]:
    return {
        "status": TaskStatus.IN_PROGRESS,
        "message": "Started",
        "started_at": timezone.now(),
        "attempt": 1,
        **over,
    }


def prog(current: int, total: int = 10) -> dict[str, Any]:
    percent = round(100.0 * current / total, 1)
    message = f"item {current}/{total}"
    return {
        "status": TaskStatus.IN_PROGRESS,
        "message": message,
        "progress": {"message": message, "current": current, "total": total, "percent": percent},
        "progress_payload": message,
        "percent": percent,
    }


def complete(result: Any = "done") -> dict[str, Any]:
    return {
        "status": TaskStatus.SUCCESS,
        "message": "Completed",
        "duration": 1.5,
        "result": result,
        "completed_at": timezone.now(),
    }


def fail(error: str = "ValueError: x") -> dict[str, Any]:
    return {
        "status": TaskStatus.FAILED,
        "message": f"Failed: {error}",
        "duration": 2.0,
        "result": error,
        "error": error,
        "traceback": "Traceback ...",
        "reason": error,
        "failed_at": timezone.now(),
    }


def cancel() -> dict[str, Any]:
    return {
        "status": TaskStatus.CANCELLED,
        "message": "Cancelled",
        "duration": None,
        "result": "Cancelled",
        "cancelled_at": timezone.now(),
    }


def cleanup() -> dict[str, Any]:
    return {"status": None, "cleaned_up": True, "locks_released": 1}


PAYLOADS = {
    "create": create,
    "start": start,
    "progress": lambda: prog(5),
    "complete": complete,
    "fail": fail,
    "cancel": cancel,
    "cleanup": cleanup,
}


class Recording(AsyncManager):
    events: list[tuple[str, dict[str, Any]]] = []

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        Recording.events.append((event, payload))


def test_payload_shapes_match_the_manager() -> None:
    Recording.events = []
    manager = Recording()
    manager.launch_async_task("tests.testapp.tasks.slow", 0.0, steps=3, sync=True)
    with pytest.raises(ValueError):
        manager.launch_async_task("tests.testapp.tasks.fail", sync=True)
    cancelled = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.cancel_task(cancelled)
    seen: dict[str, set[str]] = {}
    for event, payload in Recording.events:
        seen.setdefault(event, set(payload))
    assert set(seen) == set(PAYLOADS)
    for event, builder in PAYLOADS.items():
        assert set(builder()) | {"timestamp"} == seen[event], event


# -- what each event writes ----------------------------------------------------------------------
def test_create_makes_the_record() -> None:
    alice = User.objects.create(username="alice")
    name = key()
    when = timezone.now()
    TrackedManager().emit(
        "create",
        name,
        **create(user=alice, affected_objects=["p1", "p2"], retry_of="old", created_at=when),
    )
    row = record(name)
    assert (row.status, row.message, row.user_label, row.affected_objects) == (
        "pending",
        "Queued",
        "alice",
        "p1, p2",
    )
    assert (row.args_payload, row.kwargs_payload, row.func_path, row.retry_of) == (
        [1, 2],
        {"x": 1},
        "tests.testapp.tasks.add",
        "old",
    )
    assert row.created_at == when and row.cleaned_up is False
    assert timeline(name) == ["create"]


def test_create_is_idempotent() -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    writer.reset_state()  # a retried create, e.g. from another process
    bob = User.objects.create(username="bob")
    manager.emit("create", name, **create(user=bob))
    assert AsyncTaskRecord.objects.filter(task_name=name).count() == 1
    assert record(name).user_label == "bob"


@pytest.mark.parametrize("first", ["start", "progress", "complete", "cleanup"])
def test_an_event_racing_ahead_of_create_makes_the_record(first: str) -> None:
    name = key()
    manager = EveryProgress()
    manager.emit(first, name, **PAYLOADS[first]())
    assert AsyncTaskRecord.objects.filter(task_name=name).count() == 1
    before = record(name)
    carol = User.objects.create(username="carol")
    manager.emit("create", name, **create(user=carol))
    after = record(name)
    assert after.user_label == "carol" and after.args_payload == [1, 2]
    if first != "cleanup":  # create never moves the status back, nor replaces the message
        assert (after.status, after.message) == (before.status, before.message)
    else:
        assert (after.status, after.message, after.cleaned_up) == ("pending", "Queued", True)


def test_each_event_writes_only_its_fields() -> None:
    name = key()
    manager = EveryProgress()
    manager.emit("create", name, **create())
    AsyncTaskRecord.objects.filter(task_name=name).update(
        user_label="kept", result_payload={"kept": 1}
    )
    manager.emit("start", name, **start())
    manager.emit("progress", name, **prog(3))
    row = record(name)
    assert (row.user_label, row.result_payload) == ("kept", {"kept": 1})
    assert (row.status, row.message, row.percent) == ("in_progress", "item 3/10", 30.0)
    assert row.progress_payload == "item 3/10"
    assert row.started_at is not None and row.completed_at is None


@pytest.mark.parametrize(
    ("event", "status", "stamp", "result"),
    [
        ("complete", "success", "completed_at", "done"),
        ("fail", "failed", "failed_at", "ValueError: x"),
        ("cancel", "cancelled", "cancelled_at", "Cancelled"),
    ],
)
def test_terminal_events(event: str, status: str, stamp: str, result: str) -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    manager.emit("start", name, **start())
    payload = PAYLOADS[event]()
    manager.emit(event, name, **payload)
    row = record(name)
    assert (row.status, row.message, row.result_payload) == (status, payload["message"], result)
    assert getattr(row, stamp) == payload[stamp] and row.duration == payload["duration"]
    for other in {"completed_at", "failed_at", "cancelled_at"} - {stamp}:
        assert getattr(row, other) is None
    manager.emit("cleanup", name, **cleanup())
    after = record(name)
    assert after.cleaned_up is True
    assert (after.status, after.message, after.result_payload) == (
        status,
        payload["message"],
        result,
    )


@pytest.mark.parametrize("other_process", [False, True])
def test_status_never_moves_backwards(other_process: bool) -> None:
    name = key()
    manager = EveryProgress()
    for event in ("create", "start", "progress", "complete", "cleanup"):
        manager.emit(event, name, **PAYLOADS[event]())
    finished = record(name)
    for late in ("progress", "start", "create", "fail", "cancel"):
        if other_process:
            writer.reset_state()
        manager.emit(late, name, **PAYLOADS[late]())
    row = record(name)
    assert (row.status, row.message, row.percent, row.result_payload) == (
        "success",
        "Completed",
        finished.percent,
        "done",
    )
    assert row.completed_at == finished.completed_at and row.failed_at is None


EVENT_NAMES = ["create", "start", "progress", "complete", "fail", "cancel", "cleanup"]


@given(st.lists(st.tuples(st.sampled_from(EVENT_NAMES), st.booleans()), min_size=1, max_size=8))
@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_order_of_events_keeps_the_highest_status(sequence: list[tuple[str, bool]]) -> None:
    """Whatever order events arrive in, and whichever process handles each: the record holds
    the first terminal outcome, else running, else queued; cleanup only ever adds cleaned_up.
    (A process that saw a task's cleanup drops later progress for it: the task is over.)"""
    name = key()
    manager = EveryProgress()
    events: list[str] = []
    ended_here = False
    for event, new_process in sequence:
        if new_process:
            writer.reset_state()
            ended_here = False
        manager.emit(event, name, **PAYLOADS[event]())
        if not (event == "progress" and ended_here):
            events.append(event)
        ended_here = ended_here or event == "cleanup"
    terminal = next((e for e in events if e in ("complete", "fail", "cancel")), None)
    row = record(name)
    if terminal:
        expected = {"complete": "success", "fail": "failed", "cancel": "cancelled"}[terminal]
        assert row.status == expected and row.message == PAYLOADS[terminal]()["message"]
    elif "start" in events or "progress" in events:
        assert row.status == "in_progress"
    else:
        assert row.status == "pending"
    assert row.cleaned_up is ("cleanup" in events)
    writer.reset_state()


# -- statements per event -----------------------------------------------------------------------
def statements(captured: CaptureQueriesContext) -> list[str]:
    """``"UPDATE record"``-style summary of every statement (transaction control left out:
    ``commits`` counts transactions)."""
    out = []
    for query in captured.captured_queries:
        sql = query["sql"]
        verb = sql.split()[0].upper()
        if verb in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"):
            continue
        table = "record" if RECORD in sql else "timeline" if EVENTS in sql else "other"
        out.append(f"{verb} {table}" if table != "other" else sql[:40])
    return out


@pytest.mark.parametrize("event", ["start", "progress", "complete", "fail", "cancel", "cleanup"])
def test_one_update_and_one_timeline_insert_per_event(event: str) -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    with CaptureQueriesContext(connection) as captured:
        manager.emit(event, name, **PAYLOADS[event]())
    assert statements(captured) == ["UPDATE record", "INSERT timeline"]


def test_create_costs_one_insert_and_one_timeline_insert() -> None:
    with CaptureQueriesContext(connection) as captured:
        TrackedManager().emit("create", key(), **create())
    assert statements(captured) == ["INSERT record", "INSERT timeline"]


def test_launch_writes_the_record_once() -> None:
    with CaptureQueriesContext(connection) as captured:
        TrackedManager().launch_async_task("tests.testapp.tasks.add", 1, 2)
    ours = [s for s in statements(captured) if s.endswith(("record", "timeline"))]
    assert ours == ["INSERT record", "INSERT timeline"]


def test_event_racing_ahead_costs_update_then_insert() -> None:
    with CaptureQueriesContext(connection) as captured:
        TrackedManager().emit("start", key(), **start())
    assert statements(captured) == ["UPDATE record", "INSERT record", "INSERT timeline"]


def test_without_timeline_one_statement_per_event() -> None:
    name = key()
    manager = UntimedManager()
    with CaptureQueriesContext(connection) as captured:
        for event in ("create", "start", "complete", "cleanup"):
            manager.emit(event, name, **PAYLOADS[event]())
    assert statements(captured) == [
        "INSERT record",
        "UPDATE record",
        "UPDATE record",
        "UPDATE record",
    ]
    assert not TaskEvent.objects.exists() and record(name).status == "success"


def test_a_whole_job_writes_its_record_three_times() -> None:
    """Through the real runner (sync): create at launch; start with the first progress; the
    end with its clean-up. Each write is one record statement and one timeline statement."""
    manager = TrackedManager()
    with CaptureQueriesContext(connection) as captured:
        name = manager.launch_async_task("tests.testapp.managers.progress_job", 200, sync=True)
    ours = [s for s in statements(captured) if s.endswith(("record", "timeline"))]
    assert timeline(name) == ["create", "start", "progress", "complete", "cleanup"]
    assert ours == ["INSERT record", "INSERT timeline"] + ["UPDATE record", "INSERT timeline"] * 2
    row = record(name)
    assert (row.status, row.percent, row.cleaned_up) == ("success", 100.0, True)


def test_a_running_jobs_start_waits_for_its_next_write_and_is_never_lost() -> None:
    """The runner tracks the task before emitting start: the start is held (its timer armed)
    and lands with the next write; ending the job writes start, end and clean-up together."""
    manager = TrackedManager()
    name = key()
    manager.emit("create", name, **create())
    progress.buffer.track(
        ProgressSnapshot(task_name=name, status=TaskStatus.IN_PROGRESS), threading.Event()
    )
    try:
        with CaptureQueriesContext(connection) as captured:
            manager.emit("start", name, **start())
        assert captured.captured_queries == []
        assert writer.state_for(manager.get_tracking(), name).timer is not None
        assert record(name).status == "pending"
        assert manager.flush_pending(name) == 1  # what the timer does when it fires
        assert record(name).status == "in_progress"
    finally:
        progress.buffer.untrack(name)
    with CaptureQueriesContext(connection) as captured:
        with manager.event_batch(name):
            manager.emit("complete", name, **complete())
            manager.emit("cleanup", name, status=None, cleaned_up=True, locks_released=0)
    ours = [s for s in statements(captured) if s.endswith(("record", "timeline"))]
    assert ours == ["UPDATE record", "INSERT timeline"]
    assert timeline(name) == ["create", "start", "complete", "cleanup"]
    assert (record(name).status, record(name).cleaned_up) == ("success", True)


# -- coalescing ---------------------------------------------------------------------------------------
def test_progress_outside_a_job_is_coalesced_and_the_latest_written_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Time stands still (an injected clock), so the counts cannot depend on the machine's speed;
    # the held values are then written by hand, as their timers would after the interval.
    monkeypatch.setattr(progress.outside, "clock", lambda: 0.0)
    manager = TrackedManager(progress_interval=3600)
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    with CaptureQueriesContext(connection) as captured:
        for i in range(1, 101):
            manager.update_progress(name, f"item {i}/100", current=i, total=100)
    assert statements(captured).count("UPDATE record") == 1
    assert len(statements(captured)) <= 10  # the first update only; the others are held
    assert manager.get_progress(name)["message"] == "item 100/100"  # this process knows the latest
    assert progress.read(name).message == "item 1/100"  # type: ignore[union-attr]
    assert progress.outside.flush() == 1  # the cache gets the latest when the interval is over
    assert progress.read(name).message == "item 100/100"  # type: ignore[union-attr]
    assert record(name).message == "item 1/100"  # the record has its own, longer interval
    timer = writer.state_for(manager.get_tracking(), name).timer
    assert timer is not None  # the latest is scheduled for later
    timer.cancel()
    timer.action()
    assert record(name).message == "item 100/100"
    assert record(name).percent == 100.0
    assert timeline(name).count("progress") == 2


def test_held_progress_never_reopens_a_finished_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.outside, "clock", lambda: 0.0)
    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.update_progress(name, "one", current=1, total=4)
    manager.update_progress(name, "two", current=2, total=4)  # held
    manager.finish(name, TaskStatus.SUCCESS, result=3)
    assert manager.get_progress(name)["status"] == TaskStatus.SUCCESS
    assert progress.outside.flush() == 0
    assert manager.get_status(name) == TaskStatus.SUCCESS
    assert record(name).status == "success"


def test_deferred_progress_never_brings_a_deleted_record_back() -> None:
    manager = TrackedManager(progress_interval=3600)  # deferred whatever the machine's speed
    name = key()
    manager.emit("create", name, **create())
    manager.emit("progress", name, **prog(1))
    manager.emit("progress", name, **prog(2))  # deferred
    AsyncTaskRecord.objects.filter(task_name=name).delete()  # e.g. an operator deleted it
    TaskEvent.objects.filter(task_name=name).delete()
    state = writer.state_for(manager.get_tracking(), name)
    timer = state.timer
    assert timer is not None
    timer.cancel()
    timer.action()  # the deferred write, now rather than after the interval
    assert state.timer is None and not state.pending
    assert not AsyncTaskRecord.objects.filter(task_name=name).exists()
    assert not TaskEvent.objects.filter(task_name=name).exists()


def test_inside_a_transaction_deferred_progress_waits_for_the_next_event() -> None:
    manager = TrackedManager(progress_interval=3600)
    name = key()
    with transaction.atomic():
        manager.emit("create", name, **create())
        manager.emit("progress", name, **prog(1))
        manager.emit("progress", name, **prog(7))
        assert writer.state_for(manager.get_tracking(), name).timer is None
        assert record(name).percent == 10.0
        assert manager.flush_pending(name) == 1
        assert record(name).percent == 70.0


def test_final_progress_is_written_with_the_terminal_event() -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    manager.emit("start", name, **start())
    for i in range(1, 11):
        manager.emit("progress", name, **prog(i))
    assert record(name).percent == 10.0
    with CaptureQueriesContext(connection) as captured:
        manager.emit("complete", name, **complete())
    assert statements(captured).count("UPDATE record") == 1
    assert statements(captured).count("INSERT timeline") == 1
    row = record(name)
    assert (row.status, row.message, row.percent) == ("success", "Completed", 100.0)
    assert timeline(name) == ["create", "start", "progress", "progress", "complete"]


def test_progress_inside_a_running_job_follows_the_buffer(progress_clock) -> None:  # type: ignore[no-untyped-def]
    """As the runner does it: the progress buffer coalesces; the record follows each flush."""
    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    progress.buffer.track(
        ProgressSnapshot(task_name=name, status=TaskStatus.IN_PROGRESS), threading.Event()
    )
    with CaptureQueriesContext(connection) as captured:
        for i in range(1, 1001):
            manager.update_progress(name, f"item {i}/1000", current=i, total=1000)
        progress.buffer.untrack(name)  # the runner's final flush
    # The buffer decides when to publish (at most once per interval, and its clock did not
    # move); the final value always reaches the record when the runner stops tracking the task.
    assert statements(captured).count("UPDATE record") == 1
    assert len(captured.captured_queries) < 30
    assert (record(name).message, record(name).percent) == ("item 1000/1000", 100.0)


def test_interval_can_be_configured() -> None:
    name = key()
    manager = EveryProgress()
    manager.emit("create", name, **create())
    with CaptureQueriesContext(connection) as captured:
        for i in range(1, 21):
            manager.emit("progress", name, **prog(i, 20))
    assert statements(captured) == ["UPDATE record", "INSERT timeline"] * 20
    slow = TrackedManager(progress_interval=60)
    other = key()
    progress.buffer.track(
        ProgressSnapshot(task_name=other, status=TaskStatus.IN_PROGRESS), threading.Event()
    )
    for i in range(1, 21):
        slow.emit("progress", other, **prog(i, 20))
    assert record(other).percent == 5.0  # longer than the buffer's interval: coalesced by us
    slow.flush_pending(other)
    assert record(other).percent == 100.0


# -- timeline -------------------------------------------------------------------------------------------
def test_timeline_of_a_job_in_order() -> None:
    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.managers.progress_job", 5, sync=True)
    rows = list(manager.get_timeline(name))
    assert [r.event for r in rows][:2] == ["create", "start"] and [r.event for r in rows][-2:] == [
        "complete",
        "cleanup",
    ]
    assert [r.status for r in rows][-2:] == ["success", ""]
    assert rows[-1].message == "Cleaned up: 0 lock(s) released"
    assert all(a.created_at <= b.created_at for a, b in zip(rows, rows[1:], strict=False))
    assert any(r.event == "progress" and r.message.endswith("%)") for r in rows)


def test_timeline_is_bounded_and_keeps_lifecycle_events() -> None:
    name = key()
    manager = EveryProgress()
    with override_settings(POWERCRUD_SETTINGS={"TIMELINE_MAX_EVENTS": 10}):
        manager.emit("create", name, **create())
        manager.emit("start", name, **start())
        for i in range(1, 51):
            manager.emit("progress", name, **prog(i, 50))
        manager.emit("complete", name, **complete())
        manager.emit("cleanup", name, **cleanup())
    events = timeline(name)
    assert len(events) <= 12
    assert events[:2] == ["create", "start"] and events[-2:] == ["complete", "cleanup"]
    messages = [e.message for e in TaskEvent.objects.filter(task_name=name, event="progress")]
    assert messages[-1] == "item 50/50 (100%)"


def test_no_trimming_statements_for_an_ordinary_job() -> None:
    manager = EveryProgress()
    name = key()
    with CaptureQueriesContext(connection) as captured:
        for event in ("create", "start", "progress", "progress", "complete", "cleanup"):
            manager.emit(event, name, **PAYLOADS[event]())
    assert not [s for s in statements(captured) if s.startswith("DELETE")]


def test_trimmed_at_the_end_by_a_process_that_did_not_run_the_job() -> None:
    name = key()
    TaskEvent.objects.bulk_create(
        TaskEvent(task_name=name, event="progress", status="in_progress", message=f"{i}")
        for i in range(300)
    )
    manager = TrackedManager()
    manager.emit("fail", name, **fail())  # e.g. the completion hook after the worker died
    manager.emit("cleanup", name, **cleanup())
    assert TaskEvent.objects.filter(task_name=name).count() == 200
    assert timeline(name)[-2:] == ["fail", "cleanup"]


@pytest.mark.parametrize("switch", ["setting", "subclass"])
def test_timeline_can_be_switched_off(switch: str) -> None:
    manager = UntimedManager() if switch == "subclass" else TrackedManager()
    with override_settings(
        POWERCRUD_SETTINGS={"TIMELINE_MAX_EVENTS": 0 if switch == "setting" else 200}
    ):
        name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert record(name).status == "success"
    assert not TaskEvent.objects.filter(task_name=name).exists()


# -- faults ------------------------------------------------------------------------------------------------
def failing_once(real: Any, error: Exception, times: int = 1) -> Any:
    """``real``, failing with ``error`` on its first ``times`` calls."""
    calls = {"n": 0}

    def side_effect(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return real(*args, **kwargs)

    return side_effect


def test_a_failed_write_is_logged_and_repaired_by_the_next_event(caplog: Any) -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    manager.emit("start", name, **start())
    payload = complete(result={"rows": 3})
    with mock.patch.object(
        sql,
        "write_record",
        # Twice: the record and timeline write together, then each alone.
        side_effect=failing_once(sql.write_record, OperationalError("database is locked"), 2),
    ):
        manager.emit("complete", name, **payload)  # never raises
        assert record(name).status == "in_progress"
        assert name in caplog.text and "database is locked" in caplog.text
        manager.emit("cleanup", name, **cleanup())
    row = record(name)
    assert (row.status, row.result_payload, row.completed_at, row.cleaned_up) == (
        "success",
        {"rows": 3},
        payload["completed_at"],
        True,
    )
    assert timeline(name) == ["create", "start", "complete", "cleanup"]


def test_a_failed_timeline_insert_is_repaired_by_the_next_event() -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    with mock.patch.object(
        sql,
        "insert_rows",
        side_effect=failing_once(sql.insert_rows, OperationalError("disk I/O error"), 2),
    ):
        manager.emit("start", name, **start())
        assert timeline(name) == ["create"] and record(name).status == "in_progress"
        manager.emit("complete", name, **complete())
    assert timeline(name) == ["create", "start", "complete"]


def test_a_transient_failure_of_a_shared_write_is_retried_alone_at_once(caplog: Any) -> None:
    name = key()
    manager = TrackedManager()
    manager.emit("create", name, **create())
    with mock.patch.object(
        sql,
        "insert_rows",
        side_effect=failing_once(sql.insert_rows, OperationalError("database is locked")),
    ):
        manager.emit("start", name, **start())  # the UPDATE is rolled back with the INSERT
    assert "writing each alone" in caplog.text
    assert timeline(name) == ["create", "start"] and record(name).status == "in_progress"


def test_database_down_never_breaks_the_launch_or_the_worker(caplog: Any) -> None:
    with (
        mock.patch.object(sql, "write_record", side_effect=OperationalError("gone")),
        mock.patch.object(sql, "insert_rows", side_effect=OperationalError("gone")),
    ):
        name = TrackedManager().launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    assert TrackedManager().get_task_info(name).status == "success"
    assert not AsyncTaskRecord.objects.exists()
    assert caplog.text.count(name) >= 2


def test_a_real_database_error_inside_a_transaction_does_not_poison_it(caplog: Any) -> None:
    blocker = AsyncTaskRecord.objects.create(task_name="someone-else")
    manager = TrackedManager(create_defaults={"id": blocker.pk})  # the INSERT must fail
    name = key()
    with transaction.atomic():
        manager.emit("start", name, **start())
        assert AsyncTaskRecord.objects.count() == 1  # the transaction still works
        Marker = AsyncTaskRecord.objects.create(task_name="after")  # noqa: N806
    assert AsyncTaskRecord.objects.filter(pk=Marker.pk).exists()
    assert name in caplog.text


# -- ends held in a cluster worker --------------------------------------------------------------
@pytest.fixture(autouse=True)
def _keep_sigterm() -> Iterator[None]:
    """Holding an end installs the worker's SIGTERM handler; this process keeps its own."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture
def in_worker(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """This process acts as a cluster worker whose held ends wait until the test writes them."""
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "RECORD_WRITE_DELAY": 3600}
    monkeypatch.setattr(broker, "_in_worker", True)


def run_launched(manager: TrackedManager, count: int) -> list[str]:
    """Launch ``count`` jobs and run each through the real runner, as a worker would."""
    names = [manager.launch_async_task("tests.testapp.tasks.add", i, 1) for i in range(count)]
    for row in OrmQ.objects.order_by("id"):
        runner.run_task(*row.task["args"])
        row.delete()
    return names


def test_pre_execute_tells_a_worker_from_a_sync_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_q.signals import pre_execute

    monkeypatch.setattr(broker, "_in_worker", False)
    pre_execute.send(sender="django_q", func=len, task={"id": "1", "sync": False})
    assert broker.in_worker()
    pre_execute.send(sender="django_q", func=len, task={"id": "2", "sync": True})
    assert not broker.in_worker()


def test_a_workers_job_ends_are_held_then_written_in_one_transaction(
    in_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = TrackedManager()
    names = run_launched(manager, 3)
    # The registry ended them at once (the progress endpoint reads it); the records wait, and
    # their events stay due until they are written.
    rows = LiveTask.objects.filter(task_name__in=names)
    assert {(r.status, r.events_due) for r in rows} == {("success", True)}
    assert {record(n).status for n in names} == {"pending"}
    commits = []
    real_commit = connection.commit
    monkeypatch.setattr(connection, "commit", lambda: commits.append(1) or real_commit())
    with CaptureQueriesContext(connection) as captured:
        assert writer.ends.write() == 3
    ours = statements(captured)
    # One UPDATE per record, built before the transaction; every job's rows in one INSERT.
    assert ours.count("UPDATE record") == 3 and ours.count("INSERT timeline") == 1
    assert len(commits) == 1  # every record and timeline write, one transaction
    marks = [q["sql"] for q in captured.captured_queries if LiveTask._meta.db_table in q["sql"]]
    assert len(marks) == 1 and marks[0].startswith("UPDATE")  # one store call clears the marks
    assert not LiveTask.objects.filter(task_name__in=names, events_due=True).exists()
    for name in names:
        assert timeline(name) == ["create", "start", "complete", "cleanup"]
        assert (record(name).status, record(name).cleaned_up) == ("success", True)
    assert writer.ends.write() == 0


def test_flush_pending_and_a_sync_run_write_ends_at_once(in_worker: None) -> None:
    manager = TrackedManager()
    [held] = run_launched(manager, 1)
    assert record(held).status == "pending"
    assert manager.flush_pending() >= 1
    assert record(held).status == "success"
    assert not LiveTask.objects.get(task_name=held).events_due
    sync = manager.launch_async_task("tests.testapp.tasks.add", 1, 1, sync=True)
    assert record(sync).status == "success" and writer.ends.write() == 0


def test_ends_are_written_at_once_outside_a_worker_or_with_no_delay(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = TrackedManager()
    [outside] = run_launched(manager, 1)
    assert record(outside).status == "success"
    monkeypatch.setattr(broker, "_in_worker", True)
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "RECORD_WRITE_DELAY": 0}
    [undelayed] = run_launched(manager, 1)
    assert record(undelayed).status == "success"
    assert not LiveTask.objects.filter(events_due=True).exists()


def test_held_ends_that_fail_together_are_rolled_back_and_written_one_by_one(
    in_worker: None, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    names = run_launched(TrackedManager(), 2)
    calls = {"n": 0}
    real = sql.insert_rows

    def second_fails(rows: list[Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the batch's timeline INSERT, after every record's UPDATE
            raise OperationalError("disk I/O error")
        real(rows)

    monkeypatch.setattr(sql, "insert_rows", second_fails)
    assert writer.ends.write() == 2
    assert "writing each alone" in caplog.text
    for name in names:  # the first job's rolled-back writes were made again, once
        assert timeline(name) == ["create", "start", "complete", "cleanup"]
        assert (record(name).status, record(name).cleaned_up) == ("success", True)
    assert not LiveTask.objects.filter(events_due=True).exists()


def test_create_writes_its_record_and_timeline_in_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commits = []
    real_commit = connection.commit
    monkeypatch.setattr(connection, "commit", lambda: commits.append(1) or real_commit())
    name = key()
    with CaptureQueriesContext(connection) as captured:
        TrackedManager().emit("create", name, **create())
    assert statements(captured) == ["INSERT record", "INSERT timeline"]
    assert len(commits) == 1 and timeline(name) == ["create"]


def test_the_timer_writes_held_ends_after_the_delay(settings: Any, monkeypatch: Any) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "RECORD_WRITE_DELAY": 0.01}
    monkeypatch.setattr(broker, "_in_worker", True)
    armed: list[timers.Timer] = []
    real = timers.call_later

    def spy(delay: float, action: Any, *, every: float | None = None) -> timers.Timer:
        timer = real(3600, action, every=every)  # armed, but the test fires it
        armed.append(timer)
        return timer

    monkeypatch.setattr(timers, "call_later", spy)
    names = run_launched(TrackedManager(), 2)
    assert writer.ends._timer in armed and {record(n).status for n in names} == {"pending"}
    writer.ends._timer.action()
    assert {record(n).status for n in names} == {"success"}


def test_a_write_that_finds_nothing_waits_for_the_one_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker told to terminate writes what it holds; if the timer thread took the ends a
    moment before, that write must not return (and the process die) until those are written."""
    writing, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_write(states: list[Any]) -> None:
        writing.set()
        release.wait(30)
        order.append("held ends written")

    monkeypatch.setattr(writer, "_write_together", slow_write)
    monkeypatch.setattr(writer, "mark_delivered", lambda names: 0)
    state = mock.Mock(task_name="held", tracking=mock.Mock(db="default"))
    monkeypatch.setattr(writer.ends, "_held", [(state, False)])
    timer_write = threading.Thread(target=writer.ends.write)
    timer_write.start()
    assert writing.wait(30)
    late = threading.Thread(target=lambda: order.append(f"late write: {writer.ends.write()}"))
    late.start()
    late.join(0.2)  # gives a late write that did not wait the time to return first
    release.set()
    timer_write.join(30)
    late.join(30)
    assert order == ["held ends written", "late write: 0"]
