"""What the fault tests share: the store under test (database, or a real Redis) and a check that
a refused call wrote nothing anywhere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_q.models import OrmQ

from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.stores import TaskStore
from tests.test_store_contract import STORES, configured_store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[TaskStore]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    with configured_store(request.param, server) as configured:
        yield configured


def nothing_written(store: TaskStore) -> bool:
    """No lock, no registry row (in the store or the tables), no broker message."""
    return (
        store.locks() == []
        and store.active() == []
        and store.lock_owners() == set()
        and not TaskLock.objects.exists()
        and not LiveTask.objects.exists()
        and not OrmQ.objects.exists()
    )
