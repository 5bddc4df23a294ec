"""End to end through a real ``qcluster``: 200 tracked jobs (successes, failures, cancellations,
progress-heavy) all end with the right record and an ordered timeline; none is left stuck."""

from __future__ import annotations

import math
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from powercrud_async.models import LiveTask, TaskEvent
from powercrud_async.stores import get_store
from tests.cluster import wait_until
from tests.testapp.managers import TrackedManager
from tests.testapp.models import AsyncTaskRecord

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TERMINAL = ("success", "failed", "cancelled")


@pytest.fixture
def fast_heartbeat(settings):  # type: ignore[no-untyped-def]
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "HEARTBEAT_INTERVAL": 1}


def test_200_tracked_jobs_through_a_real_cluster(qcluster: Any, fast_heartbeat: None) -> None:
    manager = TrackedManager()
    expected: dict[str, tuple[str, Any]] = {}
    running_cancels = [
        manager.launch_async_task(
            "tests.testapp.tasks.slow",
            30.0,
            steps=300,
            conflict_ids={"testapp.Project": [10_000 + i]},
        )
        for i in range(8)
    ]
    for key in running_cancels:
        expected[key] = ("cancelled", None)
    for i in range(100):
        key = manager.launch_async_task(
            "tests.testapp.tasks.add", i, i, conflict_ids={"testapp.Project": [i]}
        )
        expected[key] = ("success", 2 * i)
    for i in range(30):
        expected[manager.launch_async_task("tests.testapp.tasks.fail", f"bad {i}")] = (
            "failed",
            f"ValueError: bad {i}",
        )
    for _ in range(10):
        expected[manager.launch_async_task("tests.testapp.tasks.return_false")] = (
            "failed",
            "The worker returned False",
        )
    heavy = [
        manager.launch_async_task("tests.testapp.managers.progress_job", 150, 0.002)
        for _ in range(30)
    ]
    for key in heavy:
        expected[key] = ("success", 150)
    queued_cancels = [manager.launch_async_task("tests.testapp.tasks.slow", 5.0) for _ in range(22)]
    for key in queued_cancels:
        assert manager.cancel_task(key) == "cancelled"
        expected[key] = ("cancelled", None)
    assert len(expected) == 200

    qcluster(PCA_Q_WORKERS="4", PCA_HEARTBEAT="1")
    waiting = set(running_cancels)
    deadline = time.monotonic() + 60
    while waiting and time.monotonic() < deadline:
        for key in list(waiting):
            if LiveTask.objects.get(task_name=key).status == "in_progress":
                assert manager.cancel_task(key) == "requested"
                waiting.discard(key)
        time.sleep(0.05)
    assert not waiting, "some long jobs never started"

    def all_finished() -> bool:
        return (
            not LiveTask.objects.exclude(status__in=TERMINAL).exists()
            and AsyncTaskRecord.objects.filter(status__in=TERMINAL, cleaned_up=True).count() == 200
        )

    wait_until(all_finished, timeout=80, interval=0.25)

    records = {r.task_name: r for r in AsyncTaskRecord.objects.all()}
    assert set(records) == set(expected)
    for key, (status, result) in expected.items():
        row = records[key]
        assert row.status == status, (key, row.status, row.message)
        assert LiveTask.objects.get(task_name=key).status == status
        assert row.cleaned_up is True and row.updated_at is not None
        if status == "success":
            assert row.result_payload == result and row.message == "Completed"
            assert row.completed_at and row.started_at and row.duration is not None
        elif status == "failed":
            assert result in row.result_payload and row.message.startswith("Failed")
            assert row.failed_at is not None
        else:
            assert row.cancelled_at is not None
    for key in heavy:
        assert records[key].percent == 100.0

    events: dict[str, list[TaskEvent]] = {}
    for event in TaskEvent.objects.order_by("created_at", "id"):
        events.setdefault(event.task_name, []).append(event)
    for key, (status, _) in expected.items():
        names = [e.event for e in events[key]]
        terminal = {"success": "complete", "failed": "fail", "cancelled": "cancel"}[status]
        assert names[0] == "create", (key, names)
        assert names[-2:] == [terminal, "cleanup"], (key, names)
        middle = names[1:-2]
        if key in queued_cancels:
            assert middle == []
        else:
            assert middle[0] == "start" and set(middle[1:]) <= {"progress"}, (key, names)
        stamps = [e.created_at for e in events[key]]
        assert stamps == sorted(stamps)
    interval = float(settings.POWERCRUD_SETTINGS["PROGRESS_WRITE_INTERVAL"])
    for key in heavy:
        # 150 updates, coalesced: per interval at most one due write and one ticker flush, plus
        # the final value. Bounded by how long the job really ran, not by the machine's speed.
        at = {e.event: e.created_at for e in events[key]}
        ran = (at["complete"] - at["start"]).total_seconds()
        assert (
            1
            <= [e.event for e in events[key]].count("progress")
            <= 3 + 2 * math.ceil(ran / interval)
        )


# -- ends a worker holds (RECORD_WRITE_DELAY) ---------------------------------------------------
def _held_in_the_worker(keys: list[str]) -> bool:
    """The registry ended every job, events still due: their records wait in the worker."""
    rows = LiveTask.objects.filter(task_name__in=keys)
    return len(rows) == len(keys) and all(r.status == "success" and r.events_due for r in rows)


def test_a_killed_worker_s_held_ends_are_sent_by_cleanup(qcluster: Any, tmp_path: Path) -> None:
    manager = TrackedManager()
    pid_file = tmp_path / "pid"
    key = manager.launch_async_task("tests.faults.jobs.write_pid", str(pid_file))
    qcluster(PCA_Q_WORKERS="1", PCA_RECORD_WRITE_DELAY="3600")
    wait_until(lambda: _held_in_the_worker([key]))
    assert AsyncTaskRecord.objects.get(task_name=key).status == "pending"

    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # dies holding the end
    # Within the grace the worker may only be paused: neither redelivered nor "repaired".
    assert manager.cleanup_completed_tasks()["redelivered"] == []
    assert AsyncTaskRecord.objects.get(task_name=key).status == "pending"
    get_store().update(key, finished_at=timezone.now() - timedelta(minutes=10))
    assert manager.cleanup_completed_tasks()["redelivered"] == [key]

    row = AsyncTaskRecord.objects.get(task_name=key)
    assert (row.status, row.message, row.cleaned_up) == ("success", "Completed", True)
    # In the order written (the end is stamped when it happened); the start died with the worker.
    names = TaskEvent.objects.filter(task_name=key).order_by("id").values_list("event", flat=True)
    assert list(names) == ["create", "complete", "cleanup"]
    assert not LiveTask.objects.get(task_name=key).events_due


def test_a_stopping_cluster_writes_the_ends_its_workers_hold(qcluster: Any) -> None:
    manager = TrackedManager()
    keys = [manager.launch_async_task("tests.testapp.tasks.add", i, 1) for i in range(6)]
    cluster = qcluster(PCA_RECORD_WRITE_DELAY="3600")
    wait_until(lambda: _held_in_the_worker(keys))
    assert set(AsyncTaskRecord.objects.values_list("status", flat=True)) == {"pending"}

    cluster.stop()  # workers leave through multiprocessing, which runs their finalizers

    for key in keys:
        row = AsyncTaskRecord.objects.get(task_name=key)
        assert (row.status, row.cleaned_up) == ("success", True), cluster.output()
        names = TaskEvent.objects.filter(task_name=key).order_by("created_at", "id")
        assert [e.event for e in names] == ["create", "start", "complete", "cleanup"]
    assert not LiveTask.objects.filter(events_due=True).exists()


def test_a_cluster_terminated_as_a_whole_writes_the_ends_its_workers_hold(qcluster: Any) -> None:
    """A service manager stopping the cluster signals every process of it at once (systemd's
    default): the workers, which die of SIGTERM, write what they hold first."""
    manager = TrackedManager()
    keys = [manager.launch_async_task("tests.testapp.tasks.add", i, 1) for i in range(6)]
    cluster = qcluster(PCA_RECORD_WRITE_DELAY="3600")
    wait_until(lambda: _held_in_the_worker(keys))
    assert set(AsyncTaskRecord.objects.values_list("status", flat=True)) == {"pending"}

    os.killpg(cluster.proc.pid, signal.SIGTERM)  # the workers die of it, writing first

    wait_until(lambda: not LiveTask.objects.filter(events_due=True).exists(), timeout=10)
    for key in keys:
        row = AsyncTaskRecord.objects.get(task_name=key)
        assert (row.status, row.cleaned_up) == ("success", True), cluster.output()
    # django-q2's main process waits for its sentinel, which died of the same signal.
    os.killpg(cluster.proc.pid, signal.SIGKILL)
