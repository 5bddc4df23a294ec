from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import (
    AsyncManagerError,
    InvalidConflictIds,
    InvalidConflictIdsType,
    InvalidTaskName,
    UnknownModel,
)
from powercrud_async.models import TaskLock
from powercrud_async.stores import TaskInfo, get_store
from tests.testapp.models import Document, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager() -> AsyncManager:
    return AsyncManager()


def locked() -> set[tuple[str, str, str]]:
    return set(TaskLock.objects.values_list("model_label", "object_pk", "task_name"))


def test_all_or_nothing(manager: AsyncManager) -> None:
    assert manager.add_conflict_ids("a", {"testapp.Project": {1, 2}})
    assert not manager.add_conflict_ids("b", {"testapp.Project": {2, 3}, "testapp.Tag": {"x"}})
    assert locked() == {("testapp.project", "1", "a"), ("testapp.project", "2", "a")}


def test_reentrant(manager: AsyncManager) -> None:
    assert manager.add_conflict_ids("a", {"testapp.Project": [1, 2]})
    assert manager.add_conflict_ids("a", {"testapp.Project": [2, 3]})
    assert {pk for _, pk, _ in locked()} == {"1", "2", "3"}


def test_labels_and_pks_normalised(manager: AsyncManager) -> None:
    assert manager.add_conflict_ids("a", {"testapp.Project": {1}})
    assert not manager.add_conflict_ids("b", {"testapp.project": {"1"}})
    assert not manager.add_conflict_ids("b", {Project: [1]})
    assert manager.check_conflict({"testapp.PROJECT": ["1"]}) == {"1"}
    assert manager.get_conflict_holders({"testapp.PROJECT": [1]}) == {"testapp.project": {"1": "a"}}


def test_uuid_and_string_pks(manager: AsyncManager) -> None:
    pk = uuid.uuid4()
    assert manager.add_conflict_ids("a", {"testapp.Document": [pk], "testapp.Tag": ["news"]})
    assert not manager.add_conflict_ids("b", {Document: [str(pk).upper()]})
    assert not manager.add_conflict_ids("b", {"testapp.Tag": ["news"]})
    assert manager.add_conflict_ids("b", {"testapp.Tag": ["News"]})  # string pks are case-sensitive


def test_check_conflict_excludes_own_task(manager: AsyncManager) -> None:
    manager.add_conflict_ids("a", {"testapp.Project": {1, 2}})
    assert manager.check_conflict({"testapp.Project": {1, 5}}) == {1}
    assert manager.check_conflict({"testapp.Project": {1, 5}}, task_name="a") == set()


def test_remove_conflict_ids(manager: AsyncManager) -> None:
    manager.add_conflict_ids("a", {"testapp.Project": {1, 2}})
    manager.add_conflict_ids("b", {"testapp.Project": {3}})
    assert manager.remove_conflict_ids("a") == 2
    assert locked() == {("testapp.project", "3", "b")}


@pytest.mark.parametrize(
    ("conflict_ids", "error", "fragment"),
    [
        (["testapp.Project"], InvalidConflictIdsType, "mapping"),
        ({"Project": [1]}, InvalidConflictIds, "app_label.Model"),
        ({"testapp.Project.x": [1]}, InvalidConflictIds, "app_label.Model"),
        ({"testapp.Nope": [1]}, UnknownModel, "no installed model"),
        ({"testapp.Project": 5}, InvalidConflictIdsType, "iterable"),
        ({"testapp.Project": "12"}, InvalidConflictIdsType, "iterable"),
        ({"testapp.Project": ["abc"]}, InvalidConflictIds, "not a valid value"),
        ({"testapp.Document": ["not-a-uuid"]}, InvalidConflictIds, "not a valid value"),
        ({"testapp.Project": [None]}, InvalidConflictIdsType, "not a valid primary key"),
        ({42: [1]}, InvalidConflictIdsType, "model classes"),
    ],
)
def test_bad_input_locks_nothing(manager: AsyncManager, conflict_ids, error, fragment) -> None:  # type: ignore[no-untyped-def]
    if isinstance(conflict_ids, dict):
        conflict_ids = {
            "testapp.Tag": ["valid"],
            **conflict_ids,
        }  # a good label first changes nothing
    with pytest.raises(error, match=fragment) as info:
        manager.add_conflict_ids("a", conflict_ids)
    assert isinstance(info.value, AsyncManagerError)
    assert isinstance(info.value, (ValueError, TypeError, LookupError))
    assert locked() == set()


@pytest.mark.parametrize("name", ["", "   ", None, 5, "x" * 256])
def test_bad_task_name(manager: AsyncManager, name) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidTaskName):
        manager.add_conflict_ids(name, {"testapp.Project": [1]})
    assert locked() == set()


def test_expired_lock_of_dead_owner_is_reclaimed(manager: AsyncManager) -> None:
    manager.add_conflict_ids("old", {"testapp.Project": {1}})
    TaskLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert manager.add_conflict_ids("new", {"testapp.Project": {1}})
    assert locked() == {("testapp.project", "1", "new")}


def test_expired_lock_of_active_task_is_kept(manager: AsyncManager) -> None:
    store = get_store()
    store.register(TaskInfo(task_name="live", status="in_progress"))
    manager.add_conflict_ids("live", {"testapp.Project": {1}})
    TaskLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not manager.add_conflict_ids("new", {"testapp.Project": {1}})
    assert manager.check_conflict({"testapp.Project": {1}}) == {1}


def test_many_objects_few_queries(manager: AsyncManager, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    # A reservation reads who holds the objects first (so rows another request reserved under
    # the same name are told apart from its own), then inserts: two statements per 1,000
    # objects, plus a constant (on PostgreSQL one more bounds lock waits).
    with django_assert_max_num_queries(2 * 10 + 4 + (connection.vendor == "postgresql")):
        assert manager.add_conflict_ids("bulk", {"testapp.Project": range(10_000)})
    assert TaskLock.objects.count() == 10_000
    with django_assert_max_num_queries(10_001 // 500 + 8):  # one per 500 objects + a constant
        assert not manager.add_conflict_ids("other", {"testapp.Project": range(9_999, 20_000)})
    assert TaskLock.objects.count() == 10_000


def test_locks_survive_a_culling_database_cache(manager: AsyncManager, settings) -> None:  # type: ignore[no-untyped-def]
    """PowerCRUD 0.9.16 kept 300 of 1,000 locks on Django's default DatabaseCache (it culls a
    third of its entries at MAX_ENTRIES=300) while reporting success. Ours live in their own table."""
    from powercrud_async import progress
    from powercrud_async.progress import ProgressSnapshot

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "powercrud_async_cache",
        },  # Django's defaults: MAX_ENTRIES 300
    }
    for i in range(1000):
        assert manager.add_conflict_ids(f"task-{i}", {"testapp.Project": [i]})
        progress.write(ProgressSnapshot(task_name=f"task-{i}", status="in_progress"))
    held = manager.get_conflict_holders({"testapp.Project": range(1000)})["testapp.project"]
    assert len(held) == 1000 and held["999"] == "task-999" and held["0"] == "task-0"
    assert not manager.add_conflict_ids("intruder", {"testapp.Project": [0]})
