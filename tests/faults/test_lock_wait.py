"""A launch whose rows another launch locked inside a still-open transaction.

PostgreSQL reports the conflict after a bounded lock wait while that transaction is still open;
the Redis store reports it at once (its locks are not part of the database transaction); SQLite
lets one writer at a time, so the launch waits for that transaction to end and then reports the
conflict. No sleeps: the other transaction is held open by an Event and released by the test.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import ConflictError
from powercrud_async.stores import TaskStore
from powercrud_async.stores.database import UNCOMMITTED
from tests.faults import support

pytestmark = pytest.mark.django_db(transaction=True)
store = support.store

IDS = {"testapp.Project": [1, 2]}
JOB = "tests.testapp.tasks.add"
HANG_GUARD = 60  # seconds; only reached if a launch blocks for good (the bug)


class OpenTransaction(threading.Thread):
    """Launches inside ``transaction.atomic()`` and keeps the transaction open until released."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.launched, self.release = threading.Event(), threading.Event()
        self.key = ""

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.key = AsyncManager().launch_async_task(JOB, 1, 2, conflict_ids=IDS)
                self.launched.set()
                self.release.wait(HANG_GUARD)
        finally:
            self.launched.set()
            connection.close()


class Launch(threading.Thread):
    """A second launch on one of the same rows, in its own thread and connection."""

    def __init__(self, pk: int = 2, on_first_statement: threading.Event | None = None) -> None:
        super().__init__(daemon=True)
        self.pk = pk
        self.key = ""
        self.on_first_statement = on_first_statement
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.after_release: bool | None = None
        self.other: OpenTransaction | None = None

    def run(self) -> None:
        def signal(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if self.on_first_statement is not None:
                self.on_first_statement.set()
            return execute(sql, params, many, context)

        try:
            with connection.execute_wrapper(signal):
                self.key = AsyncManager().launch_async_task(
                    JOB, 1, 2, conflict_ids={"testapp.Project": [self.pk]}
                )
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            self.error = exc
        finally:
            self.after_release = self.other.release.is_set() if self.other else None
            self.done.set()
            connection.close()


def start_other() -> OpenTransaction:
    other = OpenTransaction()
    other.start()
    assert other.launched.wait(HANG_GUARD) and other.key
    return other


def test_conflict_with_an_open_transaction(store: TaskStore) -> None:
    other = start_other()
    sqlite = connection.vendor == "sqlite" and store.__class__.__name__ == "DatabaseTaskStore"
    started = threading.Event()
    launch = Launch(on_first_statement=started)
    launch.other = other
    try:
        launch.start()
        if sqlite:
            # One writer at a time: the launch cannot even begin its write while the other
            # transaction is open, whatever rows it wants.
            assert started.wait(HANG_GUARD)
            assert not launch.done.is_set()
            other.release.set()
        assert launch.done.wait(HANG_GUARD), "the launch never returned"
        returned_while_open = not other.release.is_set()
    finally:
        other.release.set()
        other.join(HANG_GUARD)
        launch.join(HANG_GUARD)
    assert isinstance(launch.error, ConflictError), launch.error
    if sqlite:
        assert launch.after_release  # it waited for the commit, then saw the committed lock
        assert launch.error.conflicts == {"testapp.project": {"2": other.key}}
    elif store.__class__.__name__ == "RedisTaskStore":
        assert returned_while_open
        assert launch.error.conflicts == {"testapp.project": {"2": other.key}}
    else:  # PostgreSQL: the holder's row is not visible before its commit
        assert returned_while_open
        assert launch.error.conflicts == {"testapp.project": {"2": UNCOMMITTED}}
    assert {lock.task_name for lock in store.locks()} == {other.key}
    with pytest.raises(ConflictError) as raised:  # once committed, the holder has its name
        AsyncManager().launch_async_task(JOB, 1, 2, conflict_ids={"testapp.Project": [2]})
    assert raised.value.holders == [other.key]


def test_an_open_transaction_on_other_rows_does_not_refuse_a_launch(store: TaskStore) -> None:
    other = start_other()
    launch = Launch(pk=3)
    launch.other = other
    launch.start()
    if connection.vendor == "sqlite":
        other.release.set()  # SQLite: its enqueue waits for the one writer whatever the rows
    try:
        assert launch.done.wait(HANG_GUARD)
    finally:
        other.release.set()
        other.join(HANG_GUARD)
        launch.join(HANG_GUARD)
    assert launch.error is None and {lock.task_name for lock in store.locks()} == {
        other.key,
        launch.key,
    }


def test_the_lock_timeout_does_not_outlive_the_launch_in_a_callers_transaction() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("lock_timeout is a PostgreSQL setting")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '7s'")
        AsyncManager().launch_async_task(JOB, 1, 2, conflict_ids=IDS)
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "7s"
