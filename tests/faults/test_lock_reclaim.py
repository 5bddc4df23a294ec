"""Item: reclaiming an expired lock deletes only the row as judged; every attempt checks its locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from powercrud_async import runner
from powercrud_async.async_manager import AsyncManager
from powercrud_async.stores import TaskStore
from powercrud_async.stores.database import DatabaseTaskStore
from tests.faults.conftest import launch

pytestmark = pytest.mark.django_db(transaction=True)

KEY = ("testapp.project", "1")


def test_reclaim_does_not_delete_a_lock_adopted_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reads an expired lock of a dead owner; before A deletes it, B adopts that very row (a
    second transaction on PostgreSQL). A must then see a conflict, not delete B's lock."""
    store = DatabaseTaskStore()
    assert store.acquire("dead", [KEY], 0) == {}  # expired at once; "dead" is no active task
    before = store._holder_rows([KEY], 100)  # what A will read: the row of "dead", expired
    assert store.acquire("B", [KEY], 600, adopt={"dead"}) == {}  # B adopts it in place
    real = store._holder_rows
    calls = iter([lambda *a: before])
    monkeypatch.setattr(store, "_holder_rows", lambda *a: next(calls, real)(*a))
    assert store.acquire("A", [KEY], 600) == {KEY: "B"}
    assert store.holders([KEY]) == {KEY: "B"}
    assert [lock.task_name for lock in store.locks()] == ["B"]


def test_first_attempt_checks_its_locks_before_running(store: TaskStore, tmp_path: Path) -> None:
    """The job's lock was released (by an operator) and taken by another task before the first
    attempt started: the body must not run unlocked."""
    marker = tmp_path / "ran"
    key, envelope = launch(
        "tests.testapp.tasks.slow",
        0.0,
        steps=1,
        marker=str(marker),
        conflict_ids={"testapp.Project": [1]},
    )
    assert AsyncManager().remove_conflict_ids(key) == 1
    assert AsyncManager().add_conflict_ids("intruder", {"testapp.Project": [1]})
    assert runner.is_skip_marker(runner.run_task(envelope))
    assert not marker.exists()
    row = store.get(key)
    assert row is not None and row.status == "failed" and "intruder" in row.reason
    assert store.holders([KEY]) == {KEY: "intruder"}
