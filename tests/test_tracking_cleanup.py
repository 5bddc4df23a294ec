"""Records and cleanup (cleaned_up flags, repairs from the registry) and retention
(``pcrud_prune_async``)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from powercrud_async.async_dashboard import ModelTrackingAsyncManager
from powercrud_async.models import LiveTask, TaskEvent, TaskLock, TaskLogEntry
from powercrud_async.statuses import TaskStatus
from powercrud_async.tracking import cleanup, sql, writer
from tests.testapp.managers import TrackedManager
from tests.testapp.models import AsyncTaskRecord, CustomRecord

pytestmark = pytest.mark.django_db(transaction=True)

TRACKED = {"ASYNC_MANAGER_DEFAULT": {"manager_class": "tests.testapp.managers.TrackedManager"}}


def record(task_name: str) -> AsyncTaskRecord:
    return AsyncTaskRecord.objects.get(task_name=task_name)


# -- cleanup_completed_tasks ---------------------------------------------------------------------
def test_cleaned_up_as_soon_as_locks_are_released() -> None:
    manager = TrackedManager()
    name = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    assert record(name).cleaned_up is False
    manager.cancel_task(name)
    assert not TaskLock.objects.exists()
    assert (record(name).status, record(name).cleaned_up) == ("cancelled", True)


def test_reclaimed_task_gets_failed_with_the_reason() -> None:
    manager = TrackedManager()
    name = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    old = timezone.now() - timedelta(minutes=5)
    LiveTask.objects.filter(task_name=name).update(
        status="in_progress", started_at=old, heartbeat_at=old
    )
    manager.emit(
        "start",
        name,
        status=TaskStatus.IN_PROGRESS,
        message="Started",
        started_at=timezone.now(),
        attempt=1,
    )
    summary = manager.cleanup_completed_tasks()
    assert [r["task_name"] for r in summary["reclaimed"]] == [name]
    row = record(name)
    assert row.status == "failed" and "Worker died" in row.message and row.cleaned_up is True
    assert "Worker died" in row.result_payload and row.failed_at is not None
    assert [e.event for e in manager.get_timeline(name)] == ["create", "start", "fail", "cleanup"]


def test_purged_task_record_is_marked_cleaned() -> None:
    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    AsyncTaskRecord.objects.filter(task_name=name).update(cleaned_up=False)
    with override_settings(POWERCRUD_SETTINGS={"CLEANUP_GRACE_PERIOD": 0}):
        summary = manager.cleanup_completed_tasks()
    assert summary["purged"] == [name] and not LiveTask.objects.exists()
    assert record(name).cleaned_up is True and record(name).status == "success"


def test_lost_terminal_write_is_repaired_from_the_registry(caplog: Any) -> None:
    """The worker's complete and cleanup writes both fail and it exits: the next cleanup run
    (any process) puts the outcome the registry holds into the record."""
    manager = TrackedManager()
    real = sql.write_record

    def failing(t: Any, task_name: str, changes: Any, **kw: Any) -> str:
        if any(c.value == "success" for c in changes.values()) or "cleaned_up" in changes:
            raise OperationalError("database is locked")
        return real(t, task_name, changes, **kw)

    with mock.patch.object(sql, "write_record", side_effect=failing):
        name = manager.launch_async_task("tests.testapp.tasks.add", 2, 2, sync=True)
    writer.reset_state()  # the worker process is gone with what it kept in memory
    # start is written with the end for a short job, so the lost write leaves it queued
    assert record(name).status == "pending" and record(name).cleaned_up is False
    info = manager.get_task_info(name)
    summary = manager.cleanup_completed_tasks()
    assert summary["records_repaired"] == [
        {"task_name": name, "status": "success", "reason": "Completed"}
    ]
    row = record(name)
    assert (row.status, row.message, row.completed_at, row.cleaned_up) == (
        "success",
        "Completed",
        info.finished_at,
        True,
    )
    assert "(recorded by cleanup)" in manager.get_timeline(name).last().message
    assert manager.cleanup_completed_tasks()["records_repaired"] == []


def test_failed_and_cancelled_outcomes_are_repaired_too() -> None:
    manager = TrackedManager()
    failed = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    cancelled = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    now = timezone.now()
    LiveTask.objects.filter(task_name=failed).update(
        status="failed", finished_at=now, reason="Boom"
    )
    LiveTask.objects.filter(task_name=cancelled).update(
        status="cancelled", finished_at=now, reason="Stop"
    )
    manager.cleanup_completed_tasks()
    assert (record(failed).status, record(failed).message, record(failed).failed_at) == (
        "failed",
        "Failed: Boom",
        now,
    )
    assert (record(cancelled).status, record(cancelled).message) == ("cancelled", "Stop")


def test_record_of_an_unregistered_task_fails_after_a_grace_period() -> None:
    manager = TrackedManager()
    name = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.emit(
        "start",
        name,
        status=TaskStatus.IN_PROGRESS,
        message="Started",
        started_at=timezone.now(),
        attempt=1,
    )
    manager.remove_active_task(name)  # an operator removed it; no event will come
    assert manager.cleanup_completed_tasks()["records_repaired"] == []  # just written: wait
    AsyncTaskRecord.objects.filter(task_name=name).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    summary = manager.cleanup_completed_tasks()
    assert [r["task_name"] for r in summary["records_repaired"]] == [name]
    row = record(name)
    assert row.status == "failed" and "No longer registered" in row.message and row.cleaned_up


def test_live_tasks_are_left_alone_and_dry_run_changes_nothing() -> None:
    manager = TrackedManager()
    queued = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    done = manager.launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
    AsyncTaskRecord.objects.filter(task_name=done).update(cleaned_up=False)
    summary = manager.cleanup_completed_tasks(dry_run=True)
    assert summary["records_cleaned"] == 1 and record(done).cleaned_up is False
    summary = manager.cleanup_completed_tasks()
    assert summary["counts"]["records_cleaned"] == 1 and record(done).cleaned_up is True
    assert (record(queued).status, record(queued).cleaned_up) == ("pending", False)


def test_cleanup_command_uses_the_default_tracking_manager() -> None:
    with override_settings(POWERCRUD_SETTINGS=TRACKED):
        name = TrackedManager().launch_async_task("tests.testapp.tasks.add", 1, 2, sync=True)
        AsyncTaskRecord.objects.filter(task_name=name).update(cleaned_up=False)
        out = StringIO()
        call_command("pcrud_cleanup_async", "--json", stdout=out)
    assert json.loads(out.getvalue())["records_cleaned"] == 1
    assert record(name).cleaned_up is True


def test_cleanup_reads_records_in_batches() -> None:
    manager = TrackedManager()
    for i in range(30):
        AsyncTaskRecord.objects.create(task_name=f"gone-{i}", status="success", cleaned_up=False)
    with CaptureQueriesContext(connection) as captured:
        records = cleanup.reconcile(manager, batch_size=10)
    assert records["cleaned"] == 30
    assert len(captured.captured_queries) <= 15


# -- pcrud_prune_async -----------------------------------------------------------------------------
def make(name: str, status: str, days: float, **extra: Any) -> AsyncTaskRecord:
    when = timezone.now() - timedelta(days=days)
    stamp = {"success": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at"}.get(
        status
    )
    row = AsyncTaskRecord.objects.create(
        task_name=name, status=status, **({stamp: when} if stamp else {}), **extra
    )
    AsyncTaskRecord.objects.filter(pk=row.pk).update(created_at=when, updated_at=when)
    TaskEvent.objects.bulk_create(
        [TaskEvent(task_name=name, event="create"), TaskEvent(task_name=name, event="complete")]
    )
    TaskLogEntry.objects.create(task_name=name, level=20, level_name="INFO", message="hi")
    return row


def prune(*args: str) -> str:
    out = StringIO()
    with override_settings(POWERCRUD_SETTINGS=TRACKED):
        call_command("pcrud_prune_async", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history() -> None:
    make("old-ok", "success", 40)
    make("old-bad", "failed", 40)
    make("old-stop", "cancelled", 40)
    make("new-ok", "success", 2)
    make("old-running", "in_progress", 40)


def test_prune_deletes_old_finished_records_with_their_timelines_and_logs(history: None) -> None:
    output = prune("--older-than", "30")
    assert "Deleted 3 record(s), 6 timeline event(s) and 3 log entries" in output
    assert set(AsyncTaskRecord.objects.values_list("task_name", flat=True)) == {
        "new-ok",
        "old-running",
    }
    assert set(TaskEvent.objects.values_list("task_name", flat=True)) == {"new-ok", "old-running"}
    assert set(TaskLogEntry.objects.values_list("task_name", flat=True)) == {
        "new-ok",
        "old-running",
    }


def test_prune_by_status(history: None) -> None:
    prune("--older-than", "30", "--status", "failed", "--status", "cancelled")
    assert set(AsyncTaskRecord.objects.values_list("task_name", flat=True)) == {
        "old-ok",
        "new-ok",
        "old-running",
    }
    prune("--older-than", "1", "--status", "success")
    assert set(AsyncTaskRecord.objects.values_list("task_name", flat=True)) == {"old-running"}


def test_prune_dry_run_deletes_nothing(history: None) -> None:
    out = json.loads(prune("--older-than", "30", "--dry-run", "--json"))
    assert (out["records"], out["events"], out["logs"], out["dry_run"]) == (3, 6, 3, True)
    assert AsyncTaskRecord.objects.count() == 5 and TaskEvent.objects.count() == 10


def test_prune_works_in_batches_with_few_statements() -> None:
    for i in range(50):
        make(f"old-{i:02}", "success", 10)
    with CaptureQueriesContext(connection) as captured:
        out = json.loads(prune("--older-than", "5", "--batch-size", "10", "--json"))
    assert out["records"] == 50 and out["events"] == 100 and out["logs"] == 50
    record_batches = 5 + 1  # five full batches and the empty read that ends the walk
    assert len(captured.captured_queries) <= record_batches * 9 + 12
    assert not AsyncTaskRecord.objects.exists()


def test_prune_removes_untracked_timelines_and_logs_but_not_live_ones() -> None:
    old = timezone.now() - timedelta(days=40)
    manager = TrackedManager()
    live = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    kept = make("kept", "success", 2).task_name
    for name in ("untracked", live, kept):
        TaskLogEntry.objects.create(
            task_name=name, level=20, level_name="INFO", message="x", created_at=old
        )
        TaskEvent.objects.create(task_name=name, event="progress", created_at=old)
    out = json.loads(prune("--older-than", "30", "--json"))
    assert (out["orphan_events"], out["orphan_logs"]) == (1, 1)
    assert not TaskLogEntry.objects.filter(task_name="untracked").exists()
    assert TaskLogEntry.objects.filter(task_name=live).exists()
    assert TaskLogEntry.objects.filter(task_name=kept).count() == 2
    # --status narrows the choice to records: untracked rows are then left alone.
    TaskLogEntry.objects.create(
        task_name="untracked", level=20, level_name="INFO", message="x", created_at=old
    )
    prune("--older-than", "30", "--status", "success")
    assert TaskLogEntry.objects.filter(task_name="untracked").exists()


def test_prune_a_custom_model() -> None:
    old = timezone.now() - timedelta(days=9)
    CustomRecord.objects.create(key="a", state="success", done_at=old)
    CustomRecord.objects.create(key="b", state="success", done_at=timezone.now())
    CustomRecord.objects.create(key="c", state="in_progress")
    out = StringIO()
    call_command(
        "pcrud_prune_async",
        "--older-than",
        "7",
        "--manager",
        "tests.testapp.managers.CustomFieldsManager",
        stdout=out,
    )
    assert set(CustomRecord.objects.values_list("key", flat=True)) == {"b", "c"}
    assert "Deleted 1 record(s)" in out.getvalue()


def test_prune_without_a_tracking_manager_only_touches_untracked_rows() -> None:
    old = timezone.now() - timedelta(days=40)
    TaskLogEntry.objects.create(
        task_name="x", level=20, level_name="INFO", message="x", created_at=old
    )
    out = StringIO()
    call_command("pcrud_prune_async", "--older-than", "30", stdout=out)
    assert "keeps no records" in out.getvalue() and not TaskLogEntry.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "-1"], ">= 0"),
        (["--older-than", "soon"], "number of days"),
        (["--older-than", "nan"], ">= 0"),
        ([], "--older-than"),
        (["--older-than", "3", "--status", "running"], "Unknown status 'running'"),
        (["--older-than", "3", "--batch-size", "0"], "at least 1"),
        (["--older-than", "3", "--manager", "tests.nowhere.Manager"], "cannot be imported"),
        (["--older-than", "3", "--manager", "tests.testapp.models.Project"], "not an AsyncManager"),
    ],
)
def test_prune_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("pcrud_prune_async", *args, stdout=StringIO())


def test_prune_refuses_a_model_it_cannot_date() -> None:
    with pytest.raises(CommandError, match="no date column"):
        call_command(
            "pcrud_prune_async",
            "--older-than",
            "3",
            "--manager",
            "tests.testapp.managers.MinimalManager",
            stdout=StringIO(),
        )
    broken = {
        "ASYNC_MANAGER_DEFAULT": {
            "manager_class": "powercrud_async.async_dashboard.ModelTrackingAsyncManager",
            "config": {"record_model_path": "testapp.Nope"},
        }
    }
    with (
        override_settings(POWERCRUD_SETTINGS=broken),
        pytest.raises(CommandError, match="misconfigured"),
    ):
        call_command("pcrud_prune_async", "--older-than", "3", stdout=StringIO())
    assert ModelTrackingAsyncManager  # the public import path works for commands
