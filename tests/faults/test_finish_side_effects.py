"""Item: ending a job is durable first; a cache failure afterwards costs no event and no outcome."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from powercrud_async import progress, runner
from powercrud_async.statuses import TaskStatus
from powercrud_async.stores import TaskStore
from tests.faults.conftest import events, launch
from tests.testapp.managers import Recording

pytestmark = pytest.mark.django_db(transaction=True)


class CacheDown(ConnectionError):
    pass


def cache_down(*args: Any, **kwargs: Any) -> None:
    raise CacheDown("cache server went away")


def test_cache_error_during_finish_keeps_events_and_outcome(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key, envelope = launch("tests.testapp.tasks.add", 2, 3, conflict_ids={"testapp.Project": [1]})
    monkeypatch.setattr(progress, "delete", cache_down)
    with caplog.at_level(logging.WARNING, logger="powercrud_async"):
        assert runner.run_task(envelope) == 5  # django-q2 records a success, not a failure
    row = store.get(key)
    assert row is not None and row.status == TaskStatus.SUCCESS
    assert store.locks() == []
    assert events(key)[-2:] == ["complete", "cleanup"]
    complete = next(p for e, n, p in Recording.events if e == "complete")
    assert complete["result"] == 5
    failures = [r for r in caplog.records if "CacheDown" in r.getMessage()]
    assert len(failures) == 1 and key in failures[0].getMessage()


def test_cache_error_when_cleanup_ends_a_task(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = launch("tests.testapp.tasks.add", 2, 3, conflict_ids={"testapp.Project": [1]})
    monkeypatch.setattr(progress, "delete", cache_down)
    assert Recording().finish(key, TaskStatus.FAILED, error="Worker died", reason="Worker died")
    row = store.get(key)
    assert row is not None and row.status == TaskStatus.FAILED
    assert events(key)[-2:] == ["fail", "cleanup"]
