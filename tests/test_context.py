from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from django_q.models import OrmQ

from powercrud_async import progress
from powercrud_async.async_context import (
    TaskContext,
    clear_current_task,
    get_current_task,
    get_manager_for_context,
    register_descendant_conflicts,
    register_descendants,
    set_current_task,
    skip_nested_async,
    task_context,
    update_progress,
)
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import ConflictError, InvalidConflictIds, UnknownModel
from powercrud_async.models import TaskLock
from tests.testapp.models import Child, Document, Parent


class ConfiguredManager(AsyncManager):
    pass


def test_outside_a_task() -> None:
    assert get_current_task() is None
    assert skip_nested_async() is False
    assert update_progress("nothing") is False


def test_context_manager_nests_and_restores() -> None:
    with task_context("outer", "powercrud_async.async_manager.AsyncManager") as outer:
        assert isinstance(outer, TaskContext) and get_current_task() is outer
        assert outer["task_name"] == "outer" and outer.get("missing") is None
        with task_context("inner") as inner:
            assert get_current_task() is inner and inner.task_name == "inner"
        assert get_current_task() is outer
    assert get_current_task() is None


def test_decorator_form() -> None:
    @task_context("decorated")
    def work() -> str | None:
        ctx = get_current_task()
        return ctx.task_name if ctx else None

    assert work() == "decorated"
    assert get_current_task() is None


def test_set_current_task_both_ways() -> None:
    with set_current_task("a", None, None) as ctx:
        assert get_current_task() is ctx
    assert get_current_task() is None
    set_current_task("b", None, None)
    assert get_current_task().task_name == "b"  # type: ignore[union-attr]
    clear_current_task()
    assert get_current_task() is None


def test_empty_task_name_refused() -> None:
    with pytest.raises(ValueError):
        with task_context(""):
            pass


def test_threads_do_not_see_the_context() -> None:
    seen: list[object] = []
    with task_context("main-thread"):
        thread = threading.Thread(target=lambda: seen.append(get_current_task()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_asyncio_tasks_are_isolated() -> None:
    async def worker(name: str, results: dict[str, str | None]) -> None:
        with task_context(name):
            await asyncio.sleep(0)  # let the other task run inside its own context
            results[name] = get_current_task().task_name  # type: ignore[union-attr]
        results[f"{name}-after"] = get_current_task().task_name if get_current_task() else None

    async def main() -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        await asyncio.gather(worker("one", results), worker("two", results))
        results["outside"] = get_current_task().task_name if get_current_task() else None
        return results

    assert asyncio.run(main()) == {
        "one": "one",
        "two": "two",
        "one-after": None,
        "two-after": None,
        "outside": None,
    }


def test_manager_is_lazy_and_uses_class_and_config() -> None:
    path = f"{__name__}.ConfiguredManager"
    with task_context("t", path, manager_config={"flavour": "x"}) as ctx:
        assert ctx._manager is None
        manager = get_manager_for_context()
        assert type(manager) is ConfiguredManager and manager.config == {"flavour": "x"}
        assert get_manager_for_context() is manager
    assert type(get_manager_for_context(path)) is ConfiguredManager


@pytest.mark.django_db
def test_register_descendants_outside_task_does_nothing() -> None:
    assert register_descendant_conflicts("testapp.Child", [1, 2]) is False
    assert not TaskLock.objects.exists()
    with pytest.raises(UnknownModel):
        register_descendant_conflicts("testapp.Nope", [1])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "ids", "stored"),
    [
        ("testapp.Child", [1, "2"], {"1", "2"}),
        (Child, (3,), {"3"}),
        ("testapp.Tag", ["a", "b"], {"a", "b"}),
        (Document, [uuid.UUID(int=1)], {str(uuid.UUID(int=1))}),
    ],
)
def test_register_descendants_locks_under_parent(model, ids, stored) -> None:  # type: ignore[no-untyped-def]
    with task_context("parent-key", manager=ConfiguredManager()):
        assert register_descendant_conflicts(model, ids) is True
        assert register_descendant_conflicts(model, ids) is True  # re-entrant
    assert set(TaskLock.objects.values_list("object_pk", flat=True)) == stored
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {"parent-key"}
    AsyncManager().remove_conflict_ids("parent-key")
    assert not TaskLock.objects.exists()


@pytest.mark.django_db
def test_register_descendants_conflict_names_holders_and_locks_none() -> None:
    AsyncManager().add_conflict_ids("someone-else", {"testapp.Child": [2]})
    with task_context("parent-key"), pytest.raises(ConflictError) as info:
        register_descendants({"testapp.Child": [1, 2, 3], "testapp.Tag": ["t"]})
    assert info.value.holders == ["someone-else"]
    assert "testapp.child 2" in str(info.value)
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {"someone-else"}


@pytest.mark.django_db
def test_register_descendants_bad_input() -> None:
    with task_context("p"), pytest.raises(InvalidConflictIds):
        register_descendant_conflicts("testapp.Child", ["x"])
    assert not TaskLock.objects.exists()


@pytest.mark.django_db
def test_update_progress_reports_under_parent() -> None:
    AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2, task_key="parent-key")
    with task_context("parent-key"):
        assert update_progress("child 1/2", current=1, total=2) is True
    snapshot = progress.read("parent-key")
    assert snapshot is not None and snapshot.message == "child 1/2" and snapshot.percent == 50.0


@pytest.mark.django_db
def test_update_progress_under_a_key_never_launched_writes_nothing() -> None:
    with task_context("never-launched"):
        assert update_progress("child 1/2", current=1, total=2) is False
    assert progress.read("never-launched") is None


@pytest.mark.django_db(transaction=True)
def test_save_pattern_inside_and_outside_a_job() -> None:
    parent = Parent.objects.create(name="p")
    for _ in range(3):
        Child.objects.create(parent=parent)
    OrmQ.objects.all().delete()
    with task_context("job-1"):
        parent.save()  # inside a job: children locked under job-1, worked synchronously
    assert not OrmQ.objects.exists()
    assert set(TaskLock.objects.values_list("task_name", flat=True)) == {"job-1"}
    assert list(Child.objects.values_list("touched", flat=True)) == [1, 1, 1]
    AsyncManager().remove_conflict_ids("job-1")
    parent.save()  # outside: a new job is launched for the child work
    assert OrmQ.objects.count() == 1
