"""Item: cleanup, release_task_locks and cancel act only on the task as they judged it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async import runner
from powercrud_async.exceptions import ConflictError, TaskStillLive
from powercrud_async.stores import TaskInfo, TaskStore
from tests.faults.conftest import events, launch
from tests.testapp.managers import Recording

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = {"testapp.Project": [1]}


def dead_then_taken_over(store: TaskStore) -> tuple[str, TaskInfo]:
    """A running task whose worker fell silent, seen as dead; then a new attempt takes it over.
    Returns the key and the stale row (what a reader saw before the takeover)."""
    key, _ = launch("tests.faults.jobs.noop", conflict_ids=PROJECT)
    old = timezone.now() - timedelta(minutes=10)
    assert store.transition(
        key, ["pending"], "in_progress", started_at=old, heartbeat_at=old, attempts=1
    )
    stale = store.get(key)
    assert stale is not None
    assert runner._start(stale)[1] is None  # the takeover, between the read and the action
    return key, stale


def stale_once(store: TaskStore, monkeypatch: pytest.MonkeyPatch, name: str, value: Any) -> None:
    """The first call of ``store.<name>`` answers ``value`` (what it read before the takeover)."""
    real = getattr(store, name)
    calls = iter([lambda *a, **k: value])
    monkeypatch.setattr(store, name, lambda *a, **k: next(calls, real)(*a, **k))


def assert_untouched(store: TaskStore, key: str) -> None:
    row = store.get(key)
    assert row is not None and row.status == "in_progress" and row.attempts == 2
    assert {lock.task_name for lock in store.locks()} == {key}
    assert "fail" not in events(key)
    with pytest.raises(ConflictError):
        Recording().launch_async_task("tests.faults.jobs.noop", conflict_ids=PROJECT)


def test_cleanup_leaves_a_task_taken_over_after_it_was_judged(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, stale = dead_then_taken_over(store)
    stale_once(store, monkeypatch, "active", [stale])
    summary = Recording().cleanup_completed_tasks()
    assert summary["reclaimed"] == []
    assert [item["task_name"] for item in summary["changed"]] == [key]
    assert_untouched(store, key)


def test_release_task_locks_leaves_a_task_taken_over_after_it_was_judged(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, stale = dead_then_taken_over(store)
    stale_once(store, monkeypatch, "get", stale)
    with pytest.raises(TaskStillLive, match="new attempt"):
        Recording().release_task_locks(key)
    assert_untouched(store, key)


def test_cancel_of_a_queued_task_that_started_meanwhile_asks_it_to_stop(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, envelope = launch("tests.faults.jobs.noop", conflict_ids=PROJECT)
    queued = store.get(key)
    assert runner._begin(envelope)[1] is None  # a worker starts it after the cancel read the row
    stale_once(store, monkeypatch, "get", queued)
    assert Recording().cancel_task(key) == "requested"
    row = store.get(key)
    assert row is not None and row.status == "in_progress" and row.cancel_requested
    assert {lock.task_name for lock in store.locks()} == {key}


def test_a_failure_report_leaves_a_task_taken_over_after_it_was_read(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """django-q2's hook reports the old delivery failed (say a timeout killed it) while a new
    attempt has taken the task over: the report ends nothing."""
    key, stale = dead_then_taken_over(store)
    stale_once(store, monkeypatch, "get", stale)
    assert Recording().complete_from_broker(key, False, "TimeoutException : killed") is False
    assert_untouched(store, key)


def test_cleanup_leaves_a_reservation_launched_after_it_was_judged(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cleanup reads an expired reservation's locks, then a launch under the same name registers
    and renews them, then cleanup acts: the running job keeps its locks."""
    name = "reserved-then-launched"
    assert store.acquire(name, [("testapp.project", "1")], 0) == {}  # expired at once
    read = store.locks
    launched: list[str] = []

    def read_then_launch(**filters: Any) -> Any:
        seen = read(**filters)
        if filters.get("task_name") == name and not launched:
            launched.append(
                Recording().launch_async_task(
                    "tests.faults.jobs.noop", task_key=name, conflict_ids=PROJECT
                )
            )
        return seen

    monkeypatch.setattr(store, "locks", read_then_launch)
    summary = Recording().cleanup_completed_tasks()
    assert launched == [name]
    assert summary["orphaned_locks"] == []
    assert store.holders([("testapp.project", "1")]) == {("testapp.project", "1"): name}
    row = store.get(name)
    assert row is not None and row.is_active
