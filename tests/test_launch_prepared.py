"""On SQLite a launch builds its statements and signs its job before the transaction that holds
the database's one write lock, so that transaction only runs them; whatever that path cannot
settle (a taken key, a duplicate name, a failing push) ends as the full path would."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signals import pre_enqueue

from powercrud_async import broker, inserts
from powercrud_async.exceptions import ConflictError, EnqueueError, InvalidTaskName
from powercrud_async.models import LiveTask, TaskEvent, TaskLock
from tests.testapp.managers import TrackedManager
from tests.testapp.models import AsyncTaskRecord

pytestmark = pytest.mark.django_db(transaction=True)
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the prepared launch is SQLite's (one write lock)"
)


def key() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def launch(name: str, *pks: int, **options: Any) -> str:
    return str(
        TrackedManager().launch_async_task(
            "tests.testapp.tasks.add",
            1,
            2,
            task_key=name,
            conflict_ids={"testapp.Project": list(pks or [1])},
            **options,
        )
    )


def queued(name: str) -> int:
    return sum(1 for row in OrmQ.objects.all() if row.task["name"] == name)


def nothing_of(name: str) -> bool:
    return not (
        LiveTask.objects.filter(task_name=name).exists()
        or TaskLock.objects.filter(task_name=name).exists()
        or AsyncTaskRecord.objects.filter(task_name=name).exists()
        or TaskEvent.objects.filter(task_name=name).exists()
        or queued(name)
    )


@sqlite_only
def test_the_launch_transaction_only_runs_statements_built_before_it() -> None:
    signed_outside: list[bool] = []
    real = broker.prepare_enqueue

    def spy(*args: Any, **kwargs: Any) -> Any:
        signed_outside.append(not connection.in_atomic_block)
        return real(*args, **kwargs)

    name = key()
    with mock.patch.object(broker, "prepare_enqueue", side_effect=spy):
        with CaptureQueriesContext(connection) as ctx:
            launch(name)
    sqls = [q["sql"] for q in ctx.captured_queries]
    # One transaction, opened after the job was signed, runs the five INSERTs and nothing else.
    assert sqls[0].startswith("BEGIN") and sqls[-1] == "COMMIT"
    tables = [s.split()[2].strip('"') for s in sqls[1:-1]]
    assert tables == [
        LiveTask._meta.db_table,
        TaskLock._meta.db_table,
        OrmQ._meta.db_table,
        AsyncTaskRecord._meta.db_table,
        TaskEvent._meta.db_table,
    ]
    assert all(s.startswith("INSERT INTO") for s in sqls[1:-1])
    assert signed_outside == [True]
    assert queued(name) == 1
    assert AsyncTaskRecord.objects.get(task_name=name).status == "pending"


def test_a_taken_key_refuses_the_launch_and_leaves_nothing_of_it() -> None:
    first, second = key(), key()
    launch(first, 1)
    with pytest.raises(ConflictError) as refused:
        launch(second, 1, 2)
    assert refused.value.conflicts == {"testapp.project": {"1": first}}
    assert nothing_of(second)
    assert not TaskLock.objects.filter(object_pk="2").exists()
    assert queued(first) == 1


def test_a_duplicate_task_key_is_named_and_nothing_more_is_written() -> None:
    name = key()
    launch(name, 1)
    with pytest.raises(InvalidTaskName, match="already exists"):
        launch(name, 2)
    assert not TaskLock.objects.filter(object_pk="2").exists()
    assert queued(name) == 1 and LiveTask.objects.filter(task_name=name).count() == 1


def test_an_expired_lock_of_an_ended_task_is_reclaimed() -> None:
    past = timezone.now() - timedelta(hours=1)
    TaskLock.objects.create(
        model_label="testapp.project",
        object_pk="7",
        task_name="long-gone",
        acquired_at=past,
        expires_at=past,
    )
    name = key()
    launch(name, 7)
    assert TaskLock.objects.get(object_pk="7").task_name == name
    assert queued(name) == 1


def test_pre_enqueue_receivers_hear_only_launches_that_are_pushed() -> None:
    heard: list[str] = []

    def receiver(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
        heard.append(task["name"])

    first, refused = key(), key()
    pre_enqueue.connect(receiver)
    try:
        launch(first, 1)
        with pytest.raises(ConflictError):
            launch(refused, 1)
    finally:
        pre_enqueue.disconnect(receiver)
    assert heard == [first]
    assert nothing_of(refused)


def test_a_broker_given_in_q_options_pushes_the_job() -> None:
    given = get_broker()
    pushed: list[bool] = []
    real = given.enqueue

    def enqueue(package: Any) -> Any:
        pushed.append(connection.in_atomic_block)
        return real(package)

    given.enqueue = enqueue  # type: ignore[method-assign]
    name = key()
    launch(name, q_options={"broker": given})
    assert pushed == [True]  # inside the launch's transaction, once
    assert queued(name) == 1


def _failing_push(*args: Any, **kwargs: Any) -> Any:
    def push() -> None:
        raise RuntimeError("broker down")

    return push


def _quiet_receiver(sender: Any, **kwargs: Any) -> None:
    """A ``pre_enqueue`` receiver: the launch then signs inside its transaction, as before."""


@pytest.mark.parametrize("where", ["signing", "push", "enqueue"])
def test_a_launch_that_cannot_enqueue_leaves_nothing(where: str) -> None:
    if where == "push" and connection.vendor != "sqlite":
        pytest.skip("the prepared push is SQLite's")
    failing = {
        "signing": mock.patch("django_q.tasks.async_task", side_effect=RuntimeError("broker down")),
        "push": mock.patch.object(broker, "prepare_enqueue", side_effect=_failing_push),
        "enqueue": mock.patch.object(broker, "enqueue", side_effect=RuntimeError("broker down")),
    }[where]
    name = key()
    with ExitStack() as stack:
        stack.enter_context(failing)
        if where == "enqueue":
            pre_enqueue.connect(_quiet_receiver)
            stack.callback(pre_enqueue.disconnect, _quiet_receiver)
        with pytest.raises(EnqueueError, match="broker down") as failed:
            launch(name)
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert nothing_of(name)


def test_statements_built_ahead_run_unchanged() -> None:
    """``insert_statement`` builds what ``insert_objects`` runs; ``execute`` reports rows."""
    name = key()
    row = TaskEvent(task_name=name, event="create", status="pending", message="m")
    assert inserts.execute("default", inserts.insert_statement([row], "default")) == 1
    assert list(TaskEvent.objects.filter(task_name=name).values_list("message", flat=True)) == ["m"]
