"""A tracked launch writes its ``create`` inside the launch's transaction; rows are created by
one written-out INSERT only where ``save()`` would do nothing more; a cluster worker keeps its
SQLite connection between jobs."""

from __future__ import annotations

import time
import uuid
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError, connection, models
from django.db.models.signals import post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from powercrud_async import broker
from powercrud_async.inserts import insert_objects, saves_by_insert
from powercrud_async.models import LiveTask, TaskEvent
from powercrud_async.tracking import sql
from tests.testapp.managers import NotifyingAsyncManager, TrackedManager
from tests.testapp.models import AsyncTaskRecord

pytestmark = pytest.mark.django_db(transaction=True)


def key() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def events(task_name: str) -> list[str]:
    return list(
        TaskEvent.objects.filter(task_name=task_name).order_by("id").values_list("event", flat=True)
    )


def launch(manager: Any, name: str, pk: int = 1) -> str:
    return str(
        manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, task_key=name, conflict_ids={"testapp.Project": [pk]}
        )
    )


def test_the_create_record_commits_with_the_launch_in_one_transaction() -> None:
    name = key()
    real = connection.commit
    with (
        mock.patch.object(connection, "commit", side_effect=real) as commit,
        CaptureQueriesContext(connection) as ctx,
    ):
        launch(TrackedManager(), name)
    assert commit.call_count == 1
    sqls = [q["sql"] for q in ctx.captured_queries]
    record_insert = next(i for i, s in enumerate(sqls) if AsyncTaskRecord._meta.db_table in s)
    assert not any(s.startswith("SAVEPOINT") for s in sqls[record_insert:])
    record = AsyncTaskRecord.objects.get(task_name=name)
    assert record.status == "pending" and events(name) == ["create"]
    assert LiveTask.objects.filter(task_name=name).exists()


def test_a_create_write_that_fails_inside_is_written_after_commit(caplog: Any) -> None:
    name = key()
    real_run, real_rows = sql.run, sql.insert_rows
    calls: list[int] = []

    def fail_first(real: Any) -> Any:
        def write(*args: Any) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise OperationalError("disk I/O error")
            real(*args)

        return write

    # The timeline row is written by a statement built before the transaction (SQLite) or
    # through insert_rows: the first write inside fails either way.
    with (
        mock.patch.object(sql, "run", side_effect=fail_first(real_run)),
        mock.patch.object(sql, "insert_rows", side_effect=fail_first(real_rows)),
    ):
        launch(TrackedManager(), name)
    assert "launching it alone" in caplog.text
    assert AsyncTaskRecord.objects.filter(task_name=name).count() == 1
    assert events(name) == ["create"]
    assert LiveTask.objects.filter(task_name=name).count() == 1


def test_a_retried_launch_writes_its_record_once() -> None:
    name = key()
    real = connection.commit
    calls: list[int] = []

    def locked_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        real()

    with mock.patch.object(connection, "commit", side_effect=locked_once):
        launch(TrackedManager(), name)
    assert len(calls) >= 2
    assert sum(1 for row in OrmQ.objects.all() if row.task["name"] == name) == 1  # pushed once
    assert AsyncTaskRecord.objects.filter(task_name=name).count() == 1
    assert events(name) == ["create"]
    assert LiveTask.objects.filter(task_name=name).count() == 1


def test_a_subclass_with_its_own_handler_hears_create_after_commit() -> None:
    seen: list[bool] = []

    class Hearing(TrackedManager):
        def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
            super().async_task_lifecycle(event, task_name, **payload)
            if event == "create":
                seen.append(connection.in_atomic_block)

    assert Hearing().prepare_within("default", "create", key()) is None
    assert NotifyingAsyncManager().prepare_within("default", "create", key()) is None
    name = key()
    launch(Hearing(), name)
    assert seen == [False]
    assert AsyncTaskRecord.objects.filter(task_name=name).exists()


# -- written-out INSERTs ------------------------------------------------------------------------
def test_saves_by_insert_only_without_receivers_or_overrides() -> None:
    assert saves_by_insert(AsyncTaskRecord) and saves_by_insert(LiveTask)
    seen: list[str] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(instance.task_name)

    post_save.connect(receiver, sender=AsyncTaskRecord)
    try:
        assert not saves_by_insert(AsyncTaskRecord)
        name = key()
        launch(TrackedManager(), name)  # save() runs, so the receiver hears the record
        assert seen == [name]
    finally:
        post_save.disconnect(receiver, sender=AsyncTaskRecord)
    assert saves_by_insert(AsyncTaskRecord)


def test_insert_objects_keeps_a_given_primary_key_and_refuses_a_mixed_batch() -> None:
    row = AsyncTaskRecord(pk=987_654, task_name=key())
    insert_objects([row], "default")
    assert AsyncTaskRecord.objects.get(pk=987_654).task_name == row.task_name
    with pytest.raises(ValueError, match="every object its primary key, or none"):
        insert_objects(
            [AsyncTaskRecord(pk=5, task_name=key()), AsyncTaskRecord(task_name=key())], "default"
        )
    assert not AsyncTaskRecord.objects.filter(pk=5).exists()


def test_insert_objects_applies_defaults_and_auto_now_like_save() -> None:
    before = time.time()
    name = key()
    insert_objects([TaskEvent(task_name=name, event="create")], "default")
    row = TaskEvent.objects.get(task_name=name)
    assert row.created_at.timestamp() >= before - 1 and row.message == ""


def test_a_model_with_its_own_save_is_not_written_out() -> None:
    class Saving(models.Model):
        task_name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"
            managed = False

        def save(self, *args: Any, **kwargs: Any) -> None:
            super().save(*args, **kwargs)

    assert not saves_by_insert(Saving)


# -- a worker's SQLite connection ---------------------------------------------------------------
@pytest.fixture
def fresh_connection() -> Any:
    broker._kept.clear()
    connection.close()
    connection.ensure_connection()
    yield connection
    broker._kept.clear()


def test_a_worker_keeps_its_sqlite_connection_for_the_configured_age(fresh_connection: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite connections only")
    raw = connection.connection
    assert connection.close_at is not None and connection.close_at <= time.monotonic()
    broker.keep_sqlite_connections()
    kept_until = connection.close_at
    assert kept_until is not None and kept_until > time.monotonic() + 50
    connection.close_if_unusable_or_obsolete()  # what django-q2 calls before the next job
    assert connection.connection is raw
    connection.close_at = time.monotonic() - 1  # its age is over: not extended again
    broker.keep_sqlite_connections()
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is None


def test_keeping_connections_can_be_switched_off(fresh_connection: Any) -> None:
    with override_settings(POWERCRUD_SETTINGS={"WORKER_SQLITE_CONNECTION_AGE": 0}):
        broker.keep_sqlite_connections()
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is None


def test_a_connection_with_its_own_max_age_is_left_alone(fresh_connection: Any) -> None:
    settings_dict = connection.settings_dict
    with mock.patch.dict(settings_dict, {"CONN_MAX_AGE": 30}):
        before = connection.close_at
        broker.keep_sqlite_connections()
        assert connection.close_at == before


def test_a_launch_reusing_the_key_of_a_kept_record_updates_it() -> None:
    name = key()
    AsyncTaskRecord.objects.create(task_name=name, status="success")
    launch(TrackedManager(), name)
    record = AsyncTaskRecord.objects.get(task_name=name)  # one record, INSERT refused
    assert record.status == "success"  # a status never moves backwards, as after commit
    assert record.func_path == "tests.testapp.tasks.add"  # the launch's columns are written
    assert events(name) == ["create"]
    assert LiveTask.objects.filter(task_name=name).count() == 1
