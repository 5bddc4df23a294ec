"""Bad input gets a named error of the package before anything is written, the same on every
database and store; proxy models lock the rows of their concrete model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from powercrud_async import progress
from powercrud_async.async_context import task_context
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import (
    AsyncManagerError,
    ConflictError,
    InvalidConflictIds,
    InvalidLaunchOption,
    InvalidProgress,
    InvalidTaskName,
    UnknownTask,
)
from powercrud_async.launch import describe_conflict
from powercrud_async.stores import TaskStore
from tests.faults import support
from tests.faults.support import nothing_written

pytestmark = pytest.mark.django_db(transaction=True)
store = support.store

URL = "/async/progress/"


def strict_json(content: bytes) -> Any:
    """JSON as browsers parse it: ``NaN`` and ``Infinity`` are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(content, parse_constant=refuse)


# -- proxy models ----------------------------------------------------------------------------------
def test_a_proxy_model_locks_the_rows_of_its_concrete_model(store: TaskStore) -> None:
    manager = AsyncManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.Project": [1]}
    )
    assert not manager.add_conflict_ids("b", {"testapp.ProjectProxy": [1]})
    with pytest.raises(ConflictError) as raised:
        manager.launch_async_task(
            "tests.testapp.tasks.add", 1, 2, conflict_ids={"testapp.ProjectProxy": ["1"]}
        )
    assert raised.value.conflicts == {"testapp.project": {"1": key}}
    assert manager.check_conflict({"testapp.projectproxy": [1]}) == {1}
    assert manager.get_conflict_holders({"testapp.projectproxy": [1]}) == {
        "testapp.project": {"1": key}
    }
    assert {(lock.model_label, lock.object_pk) for lock in store.locks()} == {
        ("testapp.project", "1")
    }


# -- launch inputs ---------------------------------------------------------------------------------
BAD_LAUNCHES = {
    "infinite pk": ({"conflict_ids": {"testapp.Project": [float("inf")]}}, InvalidConflictIds),
    "NaN pk": ({"conflict_ids": {"testapp.Project": [float("nan")]}}, InvalidConflictIds),
    "pk over 255 characters": ({"conflict_ids": {"testapp.Tag": ["x" * 256]}}, InvalidConflictIds),
    "NUL in a pk": ({"conflict_ids": {"testapp.Tag": ["a\x00b"]}}, InvalidConflictIds),
    "lone surrogate in a pk": ({"conflict_ids": {"testapp.Tag": ["\ud800"]}}, InvalidConflictIds),
    "group over 100 characters": ({"group": "g" * 101}, InvalidLaunchOption),
    "NUL in a group": ({"group": "night\x00ly"}, InvalidLaunchOption),
    "NUL in a task key": ({"task_key": "job\x00one"}, InvalidTaskName),
    "lone surrogate in a task key": ({"task_key": "job\udfff"}, InvalidTaskName),
}


@pytest.mark.parametrize("case", list(BAD_LAUNCHES))
def test_a_bad_launch_is_a_named_error_and_writes_nothing(store: TaskStore, case: str) -> None:
    options, error = BAD_LAUNCHES[case]
    options.setdefault("conflict_ids", {"testapp.Project": [1]})
    with pytest.raises(error):
        AsyncManager().launch_async_task("tests.testapp.tasks.add", 1, 2, **options)
    assert nothing_written(store)


@pytest.mark.parametrize(
    "name", ["lock\x00owner", "owner\ud800", "x" * 256], ids=["NUL", "surrogate", "too long"]
)
def test_a_bad_lock_owner_is_a_named_error_and_locks_nothing(store: TaskStore, name: str) -> None:
    with pytest.raises(InvalidTaskName):
        AsyncManager().add_conflict_ids(name, {"testapp.Project": [1]})
    assert nothing_written(store)


def test_values_at_the_limits_are_accepted_everywhere(store: TaskStore) -> None:
    """What the checks let through fits every column and store (no DataError on PostgreSQL)."""
    manager = AsyncManager()
    key = manager.launch_async_task(
        "tests.testapp.tasks.add",
        1,
        2,
        task_key="k" * 100,
        group="g" * 100,
        conflict_ids={"testapp.Tag": ["p" * 255, "ünïcödé ²"]},
    )
    assert store.get(key).group == "g" * 100  # type: ignore[union-attr]
    assert {lock.object_pk for lock in store.locks(task_name=key)} == {"p" * 255, "ünïcödé ²"}
    assert manager.add_conflict_ids("o" * 255, {"testapp.Tag": ["free"]})


# -- describe_conflict -----------------------------------------------------------------------------
def test_describe_conflict_takes_any_pk_text() -> None:
    exc = ConflictError({"testapp.tag": {"²": "t1", "10": "t1", "9": "t1", "٣": "t2"}})
    text = describe_conflict(exc, AsyncManager())
    assert "9, 10, ²" in text and "٣ locked by task t2" in text


# -- progress --------------------------------------------------------------------------------------
def test_progress_for_a_task_never_launched_is_an_error_and_the_endpoint_says_404() -> None:
    with pytest.raises(UnknownTask):
        AsyncManager().update_progress("never-launched", "working", current=1, total=2)
    assert progress.read("never-launched") is None
    assert Client().get(URL, {"task_name": "never-launched"}).status_code == 404


@pytest.mark.parametrize("field", ["current", "total"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_progress_numbers_must_be_finite(store: TaskStore, field: str, value: float) -> None:
    manager = AsyncManager()
    key = manager.launch_async_task("tests.testapp.tasks.add", 1, 2)
    manager.update_progress(key, "half way", current=1, total=2)
    with pytest.raises(InvalidProgress) as raised:
        manager.update_progress(key, "broken", **{"current": 1, "total": 2, field: value})
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, AsyncManagerError)
    data = strict_json(Client().get(URL, {"task_name": key}).content)
    assert data["progress"] == "half way" and data["percent"] == 50.0


def test_a_snapshot_with_non_finite_numbers_still_gives_valid_json() -> None:
    """Whatever is in the cache (an older version wrote NaN), the endpoint answers JSON."""
    progress.write(
        progress.ProgressSnapshot(
            task_name="odd",
            status="in_progress",
            current=float("nan"),
            total=float("inf"),
        )
    )
    data = strict_json(Client().get(URL, {"task_name": "odd"}).content)
    assert data["percent"] is None and data["current"] is None and data["total"] is None


@pytest.mark.parametrize(
    "name", ["a\x00b", "a\udc80", "n" * 256], ids=["NUL", "surrogate", "too long"]
)
def test_names_no_task_can_have_are_refused_or_unknown_alike_everywhere(
    store: TaskStore, name: str
) -> None:
    manager = AsyncManager()
    with pytest.raises(InvalidTaskName):
        manager.update_progress(name, "working")
    with pytest.raises(InvalidTaskName):
        task_context(name).__enter__()
    assert manager.get_progress(name) is None and manager.get_status(name) == "unknown"
    # Every lookup by key answers "no such task", as for any unknown key (no DataError).
    for action in (manager.cancel_task, manager.retry_task):
        with pytest.raises(UnknownTask):
            action(name)
    assert manager.get_task_info(name) is None and manager.is_active_task(name) is False
    assert manager.remove_active_task(name) is False and manager.release_task_locks(name) == 0
    assert manager.remove_conflict_ids(name) == 0 and store.get_many([name]) == {}
    if name.isprintable() or "\x00" in name:  # a surrogate cannot be sent in a URL at all
        assert Client().get(URL, {"task_name": name}).status_code == 404
    assert nothing_written(store)
