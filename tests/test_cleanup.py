from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from powercrud_async import progress
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import TaskNotRetryable, TaskStillLive, UnknownTask
from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.schedules import cleanup_async_artifacts, ensure_cleanup_schedule
from tests.testapp.managers import Recording

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def manager() -> Recording:
    Recording.events = []
    return Recording()


def age(key: str, **changes: Any) -> None:
    LiveTask.objects.filter(task_name=key).update(**changes)


def test_dead_running_task_is_reclaimed_with_reason(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    old = timezone.now() - timedelta(minutes=5)
    age(key, status="in_progress", started_at=old, heartbeat_at=old)
    summary = manager.cleanup_completed_tasks()
    assert [r["task_name"] for r in summary["reclaimed"]] == [key]
    assert "no heartbeat for 300 s" in summary["reclaimed"][0]["reason"]
    row = LiveTask.objects.get()
    assert row.status == "failed" and "Worker died" in row.reason
    assert not TaskLock.objects.exists()
    assert [e for e, _, _ in Recording.events][-2:] == ["fail", "cleanup"]
    assert progress.read(key) is None  # released: the registry answers for it now
    assert progress.resolve(key).status == "failed"  # type: ignore[union-attr]


def test_live_running_and_queued_tasks_are_kept(manager: Recording) -> None:
    queued = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    age(queued, created_at=timezone.now() - timedelta(hours=1))  # old, but still in the broker
    running = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [2]}
    )
    age(running, status="in_progress", started_at=timezone.now(), heartbeat_at=timezone.now())
    summary = manager.cleanup_completed_tasks()
    assert summary["reclaimed"] == [] and summary["kept"] == 2
    assert TaskLock.objects.count() == 2


def test_queued_task_lost_from_broker_is_reclaimed(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    OrmQ.objects.all().delete()
    assert manager.cleanup_completed_tasks()["reclaimed"] == []  # just launched: give it time
    age(key, created_at=timezone.now() - timedelta(minutes=1))
    summary = manager.cleanup_completed_tasks()
    assert "Lost before it started" in summary["reclaimed"][0]["reason"]
    assert not TaskLock.objects.exists()


def test_overdue_task_is_asked_to_cancel_not_unlocked(manager: Recording, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "MAX_TASK_DURATION": 60}
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    age(
        key,
        status="in_progress",
        started_at=timezone.now() - timedelta(minutes=5),
        heartbeat_at=timezone.now(),
    )
    summary = manager.cleanup_completed_tasks()
    assert [o["task_name"] for o in summary["overdue"]] == [key]
    row = LiveTask.objects.get()
    assert row.status == "in_progress" and row.cancel_requested
    assert TaskLock.objects.count() == 1


def test_orphaned_locks_and_reservations(manager: Recording) -> None:
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    age(key, status="success", finished_at=timezone.now())
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="9",
        task_name=key,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    manager.add_conflict_ids("reservation", {"testapp.Project": [10]})
    summary = manager.cleanup_completed_tasks()
    assert [o["task_name"] for o in summary["orphaned_locks"]] == [key]
    assert list(TaskLock.objects.values_list("task_name", flat=True)) == ["reservation"]
    TaskLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [o["reason"] for o in manager.cleanup_completed_tasks()["orphaned_locks"]] == [
        "reservation expired"
    ]
    assert not TaskLock.objects.exists()


def test_finished_tasks_purged_after_grace_period(manager: Recording) -> None:
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    age(key, status="success", finished_at=timezone.now() - timedelta(days=2))
    recent = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    age(recent, status="success", finished_at=timezone.now())
    assert manager.cleanup_completed_tasks()["purged"] == [key]
    assert list(LiveTask.objects.values_list("task_name", flat=True)) == [recent]


def test_dry_run_changes_nothing(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    old = timezone.now() - timedelta(minutes=5)
    age(key, status="in_progress", started_at=old, heartbeat_at=old)
    out = StringIO()
    call_command("pcrud_cleanup_async", "--dry-run", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["dry_run"] and summary["counts"]["reclaimed"] == 1
    assert LiveTask.objects.get().status == "in_progress" and TaskLock.objects.count() == 1


def test_command_text_output_and_schedule(manager: Recording) -> None:
    out = StringIO()
    call_command("pcrud_cleanup_async", "--schedule", stdout=out)
    assert "Reclaimed 0 dead task(s)" in out.getvalue()
    schedule = Schedule.objects.get()
    assert (
        schedule.func == "powercrud_async.schedules.cleanup_async_artifacts"
        and schedule.minutes == 5
    )
    ensure_cleanup_schedule()
    assert Schedule.objects.count() == 1
    assert cleanup_async_artifacts()["counts"]["reclaimed"] == 0


def test_retry_relaunches_with_same_call(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.echo",
        1,
        "two",
        conflict_ids={"testapp.Project": [1]},
        task_kwargs={"k": "v"},
    )
    with pytest.raises(TaskNotRetryable, match="still pending"):
        manager.retry_task(key)
    age(key, status="failed", finished_at=timezone.now())
    TaskLock.objects.all().delete()
    new = manager.retry_task(key)
    row = LiveTask.objects.get(task_name=new)
    assert row.retry_of == key and row.func_path == "tests.testapp.tasks.echo"
    assert row.conflict_ids == {"testapp.project": ["1"]}
    queued = [q for q in OrmQ.objects.all() if q.name() == new][0]
    assert queued.args()[0]["args"] == [1, "two"] and queued.args()[0]["kwargs"] == {"k": "v"}
    with pytest.raises(UnknownTask):
        manager.retry_task("nope")


def test_release_locks_refuses_live_and_frees_dead(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1, 2]}
    )
    with pytest.raises(TaskStillLive, match="queued in the broker"):
        manager.release_task_locks(key)
    OrmQ.objects.all().delete()
    age(key, created_at=timezone.now() - timedelta(minutes=1))
    assert manager.release_task_locks(key) == 2
    assert LiveTask.objects.get().status == "failed" and not TaskLock.objects.exists()


def test_health_probes(manager: Recording) -> None:
    assert AsyncManager.validate_async_cache() is True
    assert AsyncManager.validate_async_qcluster(timeout_ms=100) is False  # no cluster running
    status = AsyncManager.validate_async_system()
    assert status["cache"] and status["store"] and not status["qcluster"] and not status["ok"]
