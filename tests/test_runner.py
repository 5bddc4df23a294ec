"""The runner, driven directly with the envelope django-q2 would pass it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from powercrud_async import runner
from powercrud_async.async_manager import AsyncManager
from powercrud_async.models import LiveTask, TaskLock

pytestmark = pytest.mark.django_db(transaction=True)


def launch(*args, **kwargs) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    key = AsyncManager().launch_async_task(*args, **kwargs)
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    return key, envelope


def test_redelivered_finished_job_does_not_run_twice(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    key, envelope = launch("tests.testapp.tasks.slow", 0.01, steps=1, marker=str(marker))
    assert runner.run_task(envelope) == "slept"
    second = runner.run_task(envelope)
    assert runner.is_skip_marker(second)
    assert len(marker.read_text().split()) == 1
    assert LiveTask.objects.get().status == "success"


def test_duplicate_delivery_while_alive_is_skipped(tmp_path: Path) -> None:
    key, envelope = launch("tests.testapp.tasks.add", 1, 2)
    LiveTask.objects.update(
        status="in_progress", started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    assert runner.is_skip_marker(runner.run_task(envelope))
    assert LiveTask.objects.get().status == "in_progress"


def test_dead_attempt_is_taken_over_and_relocks(tmp_path: Path) -> None:
    key, envelope = launch("tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]})
    old = timezone.now() - timedelta(minutes=5)
    LiveTask.objects.update(status="in_progress", started_at=old, heartbeat_at=old, attempts=1)
    TaskLock.objects.all().delete()  # its locks lapsed while it was dead
    assert runner.run_task(envelope) == 3
    row = LiveTask.objects.get()
    assert row.status == "success" and row.attempts == 2
    assert not TaskLock.objects.exists()


def test_lost_locks_taken_by_another_task_never_run_unlocked(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    key, envelope = launch(
        "tests.testapp.tasks.slow",
        0.01,
        steps=1,
        marker=str(marker),
        conflict_ids={"testapp.Project": [1]},
    )
    old = timezone.now() - timedelta(minutes=5)
    LiveTask.objects.update(status="in_progress", started_at=old, heartbeat_at=old, attempts=1)
    TaskLock.objects.all().delete()
    AsyncManager().add_conflict_ids("intruder", {"testapp.Project": [1]})
    assert runner.is_skip_marker(runner.run_task(envelope))
    row = LiveTask.objects.get(task_name=key)
    assert row.status == "failed" and "held by intruder" in row.reason
    assert not marker.exists()


def test_function_gone_in_the_worker_fails_with_the_reason() -> None:
    key, envelope = launch("tests.testapp.tasks.add", 1, 2)
    envelope["func"] = "tests.testapp.tasks.vanished"
    with pytest.raises(ImportError):
        runner.run_task(envelope)
    row = LiveTask.objects.get()
    assert row.status == "failed" and "ImportError" in row.reason


def test_cancelled_after_a_worker_claimed_it_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    key, envelope = launch("tests.testapp.tasks.slow", 0.01, steps=1, marker=str(marker))
    OrmQ.objects.update(lock=timezone.now() + timedelta(minutes=1))  # claimed: cannot be removed
    assert AsyncManager().cancel_task(key) == "cancelled"
    assert runner.is_skip_marker(runner.run_task(envelope))
    assert LiveTask.objects.get().status == "cancelled" and not marker.exists()


def test_unregistered_job_is_not_run() -> None:
    key, envelope = launch("tests.testapp.tasks.add", 1, 2)
    LiveTask.objects.all().delete()
    assert runner.is_skip_marker(runner.run_task(envelope))


def test_timeout_is_a_failure_with_the_reason() -> None:
    key, envelope = launch(
        "tests.testapp.tasks.raise_timeout", conflict_ids={"testapp.Project": [1]}
    )
    with pytest.raises(SystemExit):  # django-q2's TimeoutException is a SystemExit
        runner.run_task(envelope)
    row = LiveTask.objects.get()
    assert row.status == "failed" and row.reason.startswith("Timed out: TimeoutException")
    assert not TaskLock.objects.exists()


def test_hook_finishes_a_job_the_runner_could_not() -> None:
    """django-q2 killed the worker on timeout: its hook gets the failed Task and ends the job."""
    from types import SimpleNamespace

    from powercrud_async.async_hooks import task_completion_hook

    key, envelope = launch("tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [3]})
    LiveTask.objects.update(
        status="in_progress", started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    task = SimpleNamespace(
        func="powercrud_async.runner.run_task",
        args=(envelope,),
        name=key,
        success=False,
        result="Task exceeded maximum timeout value (5 seconds) : tb",
    )
    task_completion_hook(task)
    row = LiveTask.objects.get()
    assert row.status == "failed" and "maximum timeout" in row.reason
    assert not TaskLock.objects.exists()
    task_completion_hook(task)  # a second delivery of the hook changes nothing
    assert LiveTask.objects.get().status == "failed"
