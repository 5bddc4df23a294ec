from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django_q.models import OrmQ

from powercrud_async import progress
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import (
    AsyncManagerError,
    ConflictError,
    EnqueueError,
    InvalidConflictIds,
    InvalidLaunchOption,
    InvalidTaskFunction,
    InvalidTaskName,
)
from powercrud_async.models import LiveTask, TaskLock
from powercrud_async.statuses import TaskStatus
from tests.testapp.managers import Recording

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def manager() -> Recording:
    Recording.events = []
    return Recording()


def nothing_changed() -> bool:
    return (
        not LiveTask.objects.exists()
        and not TaskLock.objects.exists()
        and not OrmQ.objects.exists()
    )


def test_launch_enqueues_registers_and_locks(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [7]}
    )
    assert len(key) == 36
    row = LiveTask.objects.get()
    assert (row.task_name, row.status, row.func_path) == (key, "pending", "tests.testapp.tasks.add")
    assert row.manager_class == "tests.testapp.managers.Recording"
    assert list(TaskLock.objects.values_list("object_pk", "task_name")) == [("7", key)]
    queued = OrmQ.objects.get()
    assert queued.name() == key  # django-q2's task_name is our key
    assert queued.func() == "powercrud_async.runner.run_task"
    assert [e[0] for e in Recording.events] == ["create"]
    assert manager.get_progress(key)["status"] == "pending"
    assert manager.get_active_tasks() == {key}
    assert manager.is_active_task(key)


def test_conflict_refuses_and_changes_nothing(manager: Recording) -> None:
    first = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1, 2]}
    )
    with pytest.raises(ConflictError) as info:
        manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [2, 3]}
        )
    assert info.value.conflicts == {"testapp.project": {"2": first}}
    assert info.value.holders == [first]
    assert first in str(info.value)
    assert LiveTask.objects.count() == 1 and OrmQ.objects.count() == 1
    assert set(TaskLock.objects.values_list("object_pk", flat=True)) == {"1", "2"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"func": "tests.testapp.tasks.missing"}, InvalidTaskFunction),
        ({"func": "nodots"}, InvalidTaskFunction),
        ({"func": lambda: None}, InvalidTaskFunction),
        ({"func": 42}, InvalidTaskFunction),
        ({"func": "tests.testapp.tasks.add", "conflict_ids": {"bad": [1]}}, InvalidConflictIds),
        ({"func": "tests.testapp.tasks.add", "task_key": ""}, InvalidTaskName),
        ({"func": "tests.testapp.tasks.add", "task_key": "k" * 101}, InvalidTaskName),
        ({"func": "tests.testapp.tasks.add", "task_kwargs": ["x"]}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "timeout": -1}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "timeout": True}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "q_options": "x"}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "group": 5}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "task_label": 5}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "task_label": "x" * 256}, InvalidLaunchOption),
        ({"func": "tests.testapp.tasks.add", "task_label": "a\x00b"}, InvalidLaunchOption),
    ],
)
def test_bad_input_changes_nothing(manager: Recording, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error) as info:
        manager.launch_async_task(
            conflict_ids=kwargs.pop("conflict_ids", {"testapp.Project": [1]}), **kwargs
        )
    assert isinstance(info.value, AsyncManagerError) and isinstance(
        info.value, (ValueError, TypeError)
    )
    assert nothing_changed()
    assert Recording.events == []


def test_duplicate_task_key_refused(manager: Recording) -> None:
    manager.launch_async_task("tests.testapp.tasks.add", 1, 2, task_key="job-1")
    with pytest.raises(InvalidTaskName, match="already exists"):
        manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, task_key="job-1", conflict_ids={"testapp.Project": [9]}
        )
    assert not TaskLock.objects.filter(object_pk="9").exists()


def test_enqueue_failure_rolls_back(manager: Recording) -> None:
    with mock.patch("django_q.tasks.async_task", side_effect=RuntimeError("broker down")):
        with pytest.raises(EnqueueError, match="broker down") as info:
            manager.launch_async_task(
                "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
            )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert nothing_changed()
    assert Recording.events == []


def test_seed_002_basic_pattern_adopts_reservation(manager: Recording) -> None:
    """Seed 002 section 1, as written (prefix changed): reserve, then launch with the same ids."""
    from tests.testapp.models import Project

    projects = [Project.objects.create(name=f"p{i}") for i in range(3)]

    def launch_custom_task(*, user: Any, affected_objects: Any) -> str:
        manager = AsyncManager()
        conflict_ids = {"testapp.Project": {obj.pk for obj in affected_objects}}
        if not manager.add_conflict_ids("custom-task", conflict_ids):
            raise RuntimeError("Another task already processes these projects")
        return manager.launch_async_task(
            func="tests.testapp.tasks.seed_worker",
            conflict_ids=conflict_ids,
            user=user,
            affected_objects=[str(obj) for obj in affected_objects],
            task_kwargs={"extra": "info"},
        )

    key = launch_custom_task(user=None, affected_objects=projects[:2])
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {key}
    with pytest.raises(RuntimeError, match="Another task"):
        launch_custom_task(user=None, affected_objects=projects[1:])
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {key}


def test_sync_success_runs_lifecycle(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.seed_worker",
        5,
        sync=True,
        conflict_ids={"testapp.Project": [5]},
        task_kwargs={"extra": 1},
    )
    events = [e[0] for e in Recording.events]
    assert events[0] == "create" and events[1] == "start"
    assert events[-2:] == ["complete", "cleanup"]
    complete = next(p for e, _, p in Recording.events if e == "complete")
    assert complete["result"] == {
        "project": 5,
        "steps": 3,
        "manager": "tests.testapp.managers.Recording",
        "extra": {"extra": 1},
    }
    assert LiveTask.objects.get().status == "success"
    assert not TaskLock.objects.exists()
    assert progress.read(key) is None  # progress released; the registry answers
    snapshot = progress.resolve(key)
    assert snapshot is not None and snapshot.status == "success"
    assert not manager.is_active_task(key)


def test_sync_false_result_is_failure(manager: Recording) -> None:
    manager.launch_async_task("tests.testapp.tasks.return_false", sync=True)
    assert LiveTask.objects.get().status == "failed"
    fail = next(p for e, _, p in Recording.events if e == "fail")
    assert "returned False" in fail["result"]


def test_sync_raise_is_failure_and_reraised(manager: Recording) -> None:
    with pytest.raises(ValueError, match="kaput"):
        manager.launch_async_task(
            "tests.testapp.tasks.fail", "kaput", sync=True, conflict_ids={"testapp.Project": [1]}
        )
    row = LiveTask.objects.get()
    assert row.status == "failed" and "ValueError: kaput" in row.reason
    fail = next(p for e, _, p in Recording.events if e == "fail")
    assert "ValueError: kaput" in fail["result"] and "Traceback" in fail["traceback"]
    assert [e[0] for e in Recording.events][-1] == "cleanup"
    assert not TaskLock.objects.exists()


def test_lifecycle_handler_errors_never_break(manager: Recording) -> None:
    class Broken(AsyncManager):
        def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
            raise RuntimeError("handler bug")

    key = Broken().launch_async_task("tests.testapp.tasks.add", 2, 3, sync=True)
    assert LiveTask.objects.get(task_name=key).status == "success"


def test_launch_in_transaction_enqueues_on_commit(manager: Recording) -> None:
    from django.db import transaction

    with transaction.atomic():
        key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
        assert not OrmQ.objects.exists()
    assert OrmQ.objects.get().name() == key


def test_launch_in_rolled_back_transaction_leaves_nothing(manager: Recording) -> None:
    from django.db import transaction

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
        )
        raise Abort
    assert nothing_changed()


def test_cancel_queued_task(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    assert manager.cancel_task(key) == "cancelled"
    assert not OrmQ.objects.exists()
    assert LiveTask.objects.get().status == TaskStatus.CANCELLED
    assert not TaskLock.objects.exists()
    assert [e[0] for e in Recording.events][-2:] == ["cancel", "cleanup"]
    assert manager.cancel_task(key) == "finished"


def test_completion_exactly_once(manager: Recording) -> None:
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    LiveTask.objects.filter(task_name=key).update(status="in_progress")
    assert not manager.complete_from_broker(key, True, 3)  # success: the runner finished it itself
    assert LiveTask.objects.get().status == "in_progress"
    assert manager.complete_from_broker(key, False, "ValueError: boom : Traceback ...")
    assert not manager.complete_from_broker(key, False, "late failure")
    assert not manager.finish(key, TaskStatus.SUCCESS)
    assert [e[0] for e in Recording.events].count("fail") == 1
    row = LiveTask.objects.get()
    assert row.status == "failed" and row.reason == "ValueError: boom"


def test_remove_active_task(manager: Recording) -> None:
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    assert manager.remove_active_task(key)
    assert not manager.is_active_task(key) and not TaskLock.objects.exists()
    assert manager.get_progress(key) is None
    assert not manager.remove_active_task(key)
