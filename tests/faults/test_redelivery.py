"""Item: a worker killed after its job ended durably, before the final events went out. The end
is marked in the same step as the status, so cleanup sends the events the worker owed, once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from powercrud_async.statuses import TaskStatus
from powercrud_async.stores import TaskStore
from tests.faults.conftest import deliver, events
from tests.testapp.managers import DiesReporting, Recording, TrackedManager

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(minutes=10)


def finals(key: str) -> list[str]:
    """The end events this process's handlers heard for ``key``."""
    return [event for event in events(key) if event in ("complete", "fail", "cancel", "cleanup")]


def _killed_while_reporting(store: TaskStore, tmp_path: Path) -> str:
    """Launch with ``DiesReporting`` and run the job in a worker process that is SIGKILLed in
    the middle of handing its end to the lifecycle handler."""
    key = DiesReporting().launch_async_task(
        "tests.testapp.tasks.add", 2, 3, conflict_ids={"testapp.Project": [1]}
    )
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    deliver(envelope, tmp_path, store, exit_code=-9)
    return key


def test_cleanup_sends_the_events_a_killed_worker_owed(store: TaskStore, tmp_path: Path) -> None:
    key = _killed_while_reporting(store, tmp_path)
    row = store.get(key)
    assert row is not None and row.status == TaskStatus.SUCCESS and row.events_due
    assert store.locks() == []
    assert finals(key) == []  # nothing reached a handler in this process

    # Within the grace the worker may still be sending them (paused, not dead): left alone.
    summary = Recording().cleanup_completed_tasks()
    assert summary["redelivered"] == [] and finals(key) == []

    assert store.update(key, finished_at=timezone.now() - LONG_AGO)  # the grace has passed
    dry = Recording().cleanup_completed_tasks(dry_run=True)
    assert dry["redelivered"] == [key] and finals(key) == []

    summary = Recording().cleanup_completed_tasks()
    assert summary["redelivered"] == [key] and summary["counts"]["redelivered"] == 1
    # The task's own manager hears it (cleanup ran with another one), marked as a redelivery.
    assert finals(key) == ["complete", "cleanup"]
    complete = next(p for e, n, p in Recording.events if n == key and e == "complete")
    assert complete["redelivered"] is True and complete["status"] == TaskStatus.SUCCESS
    row = store.get(key)
    assert row is not None and not row.events_due

    again = Recording().cleanup_completed_tasks()
    assert again["redelivered"] == [] and finals(key) == ["complete", "cleanup"]


def test_a_worker_that_reported_its_end_leaves_nothing_due(
    store: TaskStore, tmp_path: Path
) -> None:
    """The guard: the ordinary path marks its events delivered, so cleanup sends nothing."""
    key = Recording().launch_async_task("tests.testapp.tasks.add", 2, 3)
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    assert deliver(envelope, tmp_path, store) == "5"
    row = store.get(key)
    assert row is not None and row.status == TaskStatus.SUCCESS and not row.events_due
    assert store.update(key, finished_at=timezone.now() - LONG_AGO)
    assert Recording().cleanup_completed_tasks()["redelivered"] == []


def test_a_redelivered_end_is_not_recorded_twice(store: TaskStore) -> None:
    """Killed after the handler wrote the record, before the mark: the redelivery finds the
    record terminal and writes neither the record nor a second timeline row."""
    from powercrud_async.models import TaskEvent
    from tests.testapp.models import AsyncTaskRecord

    manager = TrackedManager()
    key = manager.launch_async_task("tests.faults.jobs.noop")
    assert manager.finish(key, TaskStatus.SUCCESS, result="done")
    before = list(TaskEvent.objects.filter(task_name=key).values_list("event", flat=True))
    assert before[-2:] == ["complete", "cleanup"]
    # The state that kill leaves: ended, recorded, and the events still marked due.
    assert store.update(key, events_due=True, finished_at=timezone.now() - LONG_AGO)

    summary = manager.cleanup_completed_tasks()
    assert summary["redelivered"] == [key]
    assert list(TaskEvent.objects.filter(task_name=key).values_list("event", flat=True)) == before
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "success" and record.message == "Completed"
    row = store.get(key)
    assert row is not None and not row.events_due


def test_a_redelivered_end_completes_a_record_the_worker_never_wrote(
    store: TaskStore, tmp_path: Path
) -> None:
    """Killed before the handler wrote anything: the redelivery writes the terminal record."""
    from tests.testapp.models import AsyncTaskRecord

    manager = TrackedManager()
    key = manager.launch_async_task("tests.faults.jobs.noop")
    assert (
        store.finish(
            key,
            ["pending", "in_progress"],
            TaskStatus.SUCCESS,
            finished_at=timezone.now() - LONG_AGO,
            events_due=True,
        )
        == 0
    )
    assert AsyncTaskRecord.objects.get(task_name=key).status != "success"

    assert Recording().cleanup_completed_tasks()["redelivered"] == [key]
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "success" and record.message == "Completed"


def test_a_manager_whose_events_go_nowhere_marks_nothing_due(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``async_task_lifecycle`` of its own: nothing to send again, so no write for it."""
    from powercrud_async.async_manager import AsyncManager

    marks: list[dict[str, object]] = []
    update = store.update

    def recorded(*args: object, **kwargs: object) -> bool:
        marks.append(kwargs)
        return update(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "update", recorded)
    manager = AsyncManager()
    assert not manager.hears_events() and Recording().hears_events()
    key = manager.launch_async_task("tests.faults.jobs.noop")
    assert manager.finish(key, TaskStatus.SUCCESS, result="done")
    row = store.get(key)
    assert row is not None and row.status == TaskStatus.SUCCESS and not row.events_due
    assert not [kw for kw in marks if "events_due" in kw]
