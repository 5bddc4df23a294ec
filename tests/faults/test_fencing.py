"""Item: a stalled attempt that was taken over stops, and only one takeover of a dead attempt wins."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from powercrud_async import runner
from powercrud_async.stores import TaskStore
from tests.faults import jobs
from tests.faults.conftest import deliver, launch, worker_thread
from tests.testapp.managers import Recording

pytestmark = pytest.mark.django_db(transaction=True)

LONG_AGO = timedelta(minutes=10)


def test_superseded_attempt_stops_at_its_next_checkpoint(
    store: TaskStore, settings: Any, tmp_path: Path
) -> None:
    """Attempt 1 stalls (no heartbeat), attempt 2 takes over in another worker process and
    finishes; when attempt 1 wakes it touches nothing more, does not end the task again, and
    the timeline says why it stopped."""
    settings.POWERCRUD_SETTINGS = {
        **settings.POWERCRUD_SETTINGS,
        "HEARTBEAT_INTERVAL": 60,
        "PROGRESS_WRITE_INTERVAL": 0,
    }
    log = tmp_path / "touched"
    reached, release = jobs.hold("stall")
    key, envelope = launch(
        "tests.faults.jobs.items",
        5,
        str(log),
        pause="stall",
        pause_at=2,
        conflict_ids={"testapp.Project": [1]},
    )
    first: list[Any] = []
    thread = worker_thread(envelope, first)
    assert reached.wait(30)
    # The stall: attempt 1 beats no heartbeat, so its last beat ages past the dead limit.
    assert store.update(key, heartbeat_at=timezone.now() - LONG_AGO)

    assert deliver(envelope, tmp_path, store) == "5"  # django-q2's redelivery: attempt 2 takes over
    release.set()
    thread.join(30)

    assert runner.is_skip_marker(first[0])
    touched = [tuple(map(int, line.split())) for line in log.read_text().split("\n") if line]
    assert touched == [(1, 0), (1, 1), *((2, i) for i in range(5))]
    row = store.get(key)
    assert row is not None and row.status == "success" and row.attempts == 2
    mine = [(e, p) for e, n, p in Recording.events if n == key]
    assert [e for e, _ in mine] == ["create", "start", "progress", "progress", "superseded"]
    assert mine[-1][1]["attempt"] == 1 and mine[-1][1]["superseded_by"] == 2
    assert store.locks() == []


def test_two_takeovers_of_one_dead_attempt_one_wins(store: TaskStore) -> None:
    """Both deliveries read the same dead attempt; the compare-and-set on it lets one through."""
    key, _ = launch("tests.faults.jobs.noop", conflict_ids={"testapp.Project": [1]})
    old = timezone.now() - LONG_AGO
    assert store.transition(
        key, ["pending"], "in_progress", started_at=old, heartbeat_at=old, attempts=1
    )
    seen = store.get(key)
    assert seen is not None
    outcomes = [runner._start(seen)[1], runner._start(seen)[1]]
    assert outcomes == [None, "another worker took it"]
    row = store.get(key)
    assert row is not None and row.attempts == 2


def test_superseded_attempt_cannot_beat_or_renew(store: TaskStore) -> None:
    """The fencing token at the store: a heartbeat carrying a stale attempt changes nothing."""
    key, _ = launch("tests.faults.jobs.noop", conflict_ids={"testapp.Project": [1]})
    old = timezone.now() - LONG_AGO
    assert store.transition(
        key, ["pending"], "in_progress", started_at=old, heartbeat_at=old, attempts=1
    )
    seen = store.get(key)
    assert seen is not None and runner._start(seen)[1] is None  # attempt 2
    before = store.get(key)
    assert not store.beat(key, 1, 3600, timezone.now())
    assert store.get(key) == before
    assert store.beat(key, 2, 3600, timezone.now())


def test_superseded_is_written_to_the_timeline_without_reopening_the_record(
    store: TaskStore,
) -> None:
    """What the docs promise for ``ModelTrackingAsyncManager``: a timeline row, and a finished
    record keeps its status and message."""
    from powercrud_async.models import TaskEvent
    from tests.testapp.managers import TrackedManager
    from tests.testapp.models import AsyncTaskRecord

    manager = TrackedManager()
    key = manager.launch_async_task("tests.faults.jobs.noop")
    assert manager.finish(key, "success", result="done")
    stopped = runner.Attempt(key, 1)
    stopped.superseded_by = 2
    runner._record_superseded(manager, stopped)
    assert (
        list(TaskEvent.objects.filter(task_name=key).values_list("event", flat=True))[-1]
        == "superseded"
    )
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "success" and record.message == "Completed"
