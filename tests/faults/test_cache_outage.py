"""Item: a cache outage stops neither heartbeat nor lock renewal; cleanup says what it could not do."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from powercrud_async import progress, runner
from powercrud_async.exceptions import LockStoreUnavailable
from powercrud_async.stores import TaskStore
from tests.cluster import wait_until
from tests.faults import jobs
from tests.faults.conftest import launch, worker_thread

pytestmark = pytest.mark.django_db(transaction=True)


def cache_down(*args: Any, **kwargs: Any) -> None:
    raise ConnectionError("cache server went away")


def test_heartbeat_and_lock_renewal_survive_a_cache_outage(
    store: TaskStore, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings.POWERCRUD_SETTINGS = {
        **settings.POWERCRUD_SETTINGS,
        "HEARTBEAT_INTERVAL": 0.05,
        "PROGRESS_WRITE_INTERVAL": 0.05,
        "CONFLICT_TTL": 600,
    }
    reached, release = jobs.hold("outage")
    key, envelope = launch(
        "tests.faults.jobs.items",
        2,
        str(tmp_path / "log"),
        pause="outage",
        pause_at=0,
        conflict_ids={"testapp.Project": [1]},
    )
    # A job reporting progress all the time has a flush due at every tick; with the cache down
    # every one of them fails.
    monkeypatch.setattr(progress.buffer, "flush", cache_down)
    thread = worker_thread(envelope, [])
    try:
        assert reached.wait(30)
        # Make the job look nearly dead and its locks nearly expired; the ticker must repair both.
        stale = timezone.now() - timedelta(minutes=10)
        assert store.update(key, heartbeat_at=stale)
        store.renew(key, 1)
        wait_until(
            lambda: (row := store.get(key)) is not None and row.heartbeat_at > stale, timeout=20
        )
        wait_until(
            lambda: all(
                lock.expires_at > timezone.now() + timedelta(seconds=300)
                for lock in store.locks(task_name=key)
            ),
            timeout=20,
        )
    finally:
        monkeypatch.undo()  # the cache is back before the job's own next progress call
        release.set()
        thread.join(30)
    row = store.get(key)
    assert row is not None and row.status == "success"


def test_cleanup_command_exits_non_zero_when_the_store_fails(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch("tests.faults.jobs.noop")

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise LockStoreUnavailable("Lock store unavailable: list active tasks failed 6 times.")

    monkeypatch.setattr(store, "active", store_down)
    out = io.StringIO()
    with pytest.raises(CommandError, match="Cleanup incomplete: 1 step"):
        call_command("pcrud_cleanup_async", stdout=out, stderr=io.StringIO())
    assert "Reclaimed 0 dead task(s)" in out.getvalue()


def test_cleanup_command_reports_cache_errors_and_still_purges(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.POWERCRUD_SETTINGS = {**settings.POWERCRUD_SETTINGS, "CLEANUP_GRACE_PERIOD": 0}
    key, envelope = launch("tests.faults.jobs.noop")
    assert runner.run_task(envelope) == "done"
    monkeypatch.setattr(progress, "delete", cache_down)
    err = io.StringIO()
    with pytest.raises(CommandError, match="drop the progress entry"):
        call_command("pcrud_cleanup_async", stdout=io.StringIO(), stderr=err)
    assert store.get(key) is None  # purged all the same
    assert "ConnectionError" in err.getvalue()
