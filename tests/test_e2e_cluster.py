"""End to end through a real ``qcluster`` process on the embedded default (SQLite + ORM broker)."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from powercrud_async.async_manager import AsyncManager
from powercrud_async.models import LiveTask, TaskLock, TaskLogEntry
from tests.cluster import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fast_heartbeat(settings):  # type: ignore[no-untyped-def]
    """This process judges liveness with a 1 s heartbeat, like the qcluster it starts."""
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "HEARTBEAT_INTERVAL": 1}


def status(key: str) -> str:
    return LiveTask.objects.get(task_name=key).status


def finished(key: str) -> bool:
    return status(key) in ("success", "failed", "cancelled")


def test_success_failure_and_false(qcluster) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    ok = manager.launch_async_task(
        "tests.testapp.tasks.add", 2, 3, conflict_ids={"testapp.Project": [1]}
    )
    bad = manager.launch_async_task(
        "tests.testapp.tasks.fail", "nope", conflict_ids={"testapp.Project": [2]}
    )
    false = manager.launch_async_task("tests.testapp.tasks.return_false")
    logged = manager.launch_async_task("tests.testapp.tasks.logs")
    qcluster()
    assert AsyncManager.validate_async_qcluster(timeout_ms=30_000)
    for key in (ok, bad, false, logged):
        wait_until(lambda key=key: finished(key), timeout=60)
    assert status(ok) == "success"
    assert (
        status(bad) == "failed" and "ValueError: nope" in LiveTask.objects.get(task_name=bad).reason
    )
    assert status(false) == "failed"
    assert not TaskLock.objects.exists()
    assert manager.get_progress(ok)["status"] == "success"
    messages = list(
        TaskLogEntry.objects.filter(task_name=logged).values_list("level_name", "message")
    )
    assert messages == [("INFO", "starting work"), ("WARNING", "careful")]
    # Failures are acknowledged: nothing left in the broker to be redelivered.
    wait_until(lambda: not OrmQ.objects.exists(), timeout=30)


def test_cancel_running_job(qcluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.slow", 20.0, steps=200, conflict_ids={"testapp.Project": [1]}
    )
    qcluster(PCA_HEARTBEAT="1")
    wait_until(lambda: status(key) == "in_progress", timeout=60)
    wait_until(lambda: (manager.get_progress(key) or {}).get("current"), timeout=30)
    assert manager.cancel_task(key) == "requested"
    wait_until(lambda: finished(key), timeout=30)
    assert status(key) == "cancelled"
    assert not TaskLock.objects.exists()


def test_cancel_queued_job_never_runs(qcluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    marker = tmp_path / "ran"
    key = manager.launch_async_task("tests.testapp.tasks.slow", 0.1, marker=str(marker))
    assert manager.cancel_task(key) == "cancelled"
    probe = manager.launch_async_task("tests.testapp.tasks.add", 1, 1)
    qcluster()
    wait_until(lambda: finished(probe), timeout=60)
    assert status(key) == "cancelled" and not marker.exists()


def test_kill_9_is_reclaimed_and_redelivery_does_not_run(
    qcluster, tmp_path: Path, fast_heartbeat
) -> None:  # type: ignore[no-untyped-def]
    """A worker killed mid-job: cleanup reclaims it with the reason, its locks come free, and the
    job django-q2 redelivers later does not run again unlocked."""
    manager = AsyncManager()
    marker = tmp_path / "pids"
    key = manager.launch_async_task(
        "tests.testapp.tasks.slow",
        6.0,
        steps=30,
        marker=str(marker),
        conflict_ids={"testapp.Project": [42]},
    )
    qcluster(PCA_HEARTBEAT="1", PCA_Q_TIMEOUT="8", PCA_Q_RETRY="10", PCA_Q_WORKERS="1")
    wait_until(marker.exists, timeout=60)
    wait_until(lambda: status(key) == "in_progress", timeout=30)
    pid = int(marker.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    # Dead after 3 silent heartbeat intervals (1 s here).
    assert manager.cleanup_completed_tasks()["reclaimed"] == []  # not yet: the beat is fresh
    summary = wait_until(
        lambda: (s := manager.cleanup_completed_tasks())["reclaimed"] and s,
        timeout=20,
        interval=0.5,
    )
    assert summary["reclaimed"][0]["task_name"] == key
    assert "no heartbeat" in summary["reclaimed"][0]["reason"]
    row = LiveTask.objects.get(task_name=key)
    assert row.status == "failed" and "Worker died" in row.reason
    assert not TaskLock.objects.filter(object_pk="42").exists()
    # django-q2 redelivers the unacknowledged job after `retry` (10 s); it must not run again.
    # The broker row goes only when that redelivered run is acknowledged, i.e. after it ran.
    wait_until(lambda: not OrmQ.objects.exists(), timeout=40, interval=0.5)
    assert marker.read_text().split() == [str(pid)]
    assert LiveTask.objects.get(task_name=key).status == "failed"


def test_cleanup_leaves_queued_and_running_jobs(qcluster, tmp_path: Path, fast_heartbeat) -> None:  # type: ignore[no-untyped-def]
    manager = AsyncManager()
    running = manager.launch_async_task(
        "tests.testapp.tasks.slow", 8.0, steps=40, conflict_ids={"testapp.Project": [1]}
    )
    qcluster(PCA_HEARTBEAT="1", PCA_Q_WORKERS="1")
    wait_until(lambda: status(running) == "in_progress", timeout=60)
    queued = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [2]}
    )
    # Older than 3 heartbeat intervals, still waiting behind the single worker: made so by
    # moving its launch back in time rather than by waiting.
    LiveTask.objects.filter(task_name=queued).update(
        created_at=timezone.now() - timedelta(seconds=10)
    )
    summary = manager.cleanup_completed_tasks()
    assert summary["reclaimed"] == [] and summary["kept"] == 2
    assert status(running) == "in_progress" and status(queued) == "pending"
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {running, queued}
    wait_until(lambda: finished(running) and finished(queued), timeout=60)
    assert status(running) == "success" and status(queued) == "success"


def test_nested_saves_join_the_parent_job(qcluster) -> None:  # type: ignore[no-untyped-def]
    """Seed 004 end to end: children are locked under the parent's key while it runs, a
    conflicting launch is refused, no child job is enqueued, progress arrives under the parent."""
    from django_q.models import Task

    from powercrud_async.exceptions import ConflictError
    from tests.testapp.models import Child, Parent

    parents = [Parent.objects.create(name=f"parent{i}") for i in range(4)]
    children = [Child.objects.create(parent=p) for p in parents for _ in range(3)]
    OrmQ.objects.all().delete()  # the create() saves above launched child jobs of their own
    LiveTask.objects.all().delete()
    TaskLock.objects.all().delete()
    manager = AsyncManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.save_parents",
        [p.pk for p in parents],
        1.5,
        conflict_ids={"testapp.Parent": [p.pk for p in parents]},
    )
    tasks_before = Task.objects.count()
    qcluster()
    first_child = children[0].pk
    wait_until(
        lambda: TaskLock.objects.filter(
            model_label="testapp.child", object_pk=str(first_child)
        ).exists(),
        timeout=60,
    )
    assert (
        TaskLock.objects.get(model_label="testapp.child", object_pk=str(first_child)).task_name
        == key
    )
    with pytest.raises(ConflictError) as info:
        manager.launch_async_task(
            "tests.testapp.tasks.noop", conflict_ids={"testapp.Child": [first_child]}
        )
    assert info.value.holders == [key]
    seen = wait_until(
        lambda: ((manager.get_progress(key) or {}).get("message") or "").startswith("parent"),
        timeout=30,
    )
    assert seen
    message = manager.get_progress(key)["message"]
    assert ": child " in message
    wait_until(lambda: finished(key), timeout=60)
    assert status(key) == "success"
    assert not TaskLock.objects.exists()
    assert set(Child.objects.values_list("touched", flat=True)) == {1}
    # Exactly one django-q2 task ran: the parent. No child job was enqueued or executed.
    assert LiveTask.objects.count() == 1
    # No other job can run: none was registered (above) or is left in the broker (below).
    wait_until(lambda: Task.objects.count() > tasks_before, timeout=20)  # the monitor saves it last
    assert Task.objects.count() == tasks_before + 1
    assert list(Task.objects.values_list("name", flat=True)) == [key]
    # The monitor acknowledges (deletes) the broker row after saving the Task row: wait for that
    # ack rather than racing it; a stray child job would keep the broker non-empty and fail here.
    wait_until(lambda: not OrmQ.objects.exists(), timeout=20)
