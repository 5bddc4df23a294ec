"""A reservation made with ``add_conflict_ids`` is adopted only by the launch it was made for:
one with the same task name, or one in the same thread or asyncio task (seed 002's pattern)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_started
from django.db import connections

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import ConflictError
from powercrud_async.stores import TaskStore
from tests.faults import support

pytestmark = pytest.mark.django_db(transaction=True)
store = support.store

IDS = {"testapp.Project": {1, 2}}
JOB = "tests.testapp.tasks.add"


def in_thread(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a new thread (a new context, like another request) and return or raise."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc
        finally:
            connections.close_all()  # this thread's connection must not outlive the test

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def owners(store: TaskStore) -> set[str]:
    return {lock.task_name for lock in store.locks()}


def test_a_launch_in_another_thread_does_not_adopt_the_reservation(store: TaskStore) -> None:
    manager = AsyncManager()
    assert manager.add_conflict_ids("custom-task", IDS)
    with pytest.raises(ConflictError) as raised:
        in_thread(
            lambda: AsyncManager().launch_async_task(
                JOB, 1, 2, conflict_ids={"testapp.Project": [2]}
            )
        )
    assert raised.value.holders == ["custom-task"]
    assert owners(store) == {"custom-task"}
    # The launch it was made for, in this thread, still adopts it (seed 002).
    key = manager.launch_async_task(JOB, 1, 2, conflict_ids=IDS)
    assert owners(store) == {key}


def test_the_seed_pattern_in_two_threads_at_once(store: TaskStore) -> None:
    """Two requests reserve different rows under the seed's fixed name; each launch adopts its own."""

    def request(pk: int) -> str:
        manager = AsyncManager()
        assert manager.add_conflict_ids("custom-task", {"testapp.Project": {pk}})
        return manager.launch_async_task(JOB, 1, 2, conflict_ids={"testapp.Project": {pk}})

    first, second = in_thread(lambda: request(1)), in_thread(lambda: request(2))
    held = {lock.object_pk: lock.task_name for lock in store.locks()}
    assert held == {"1": first, "2": second}


def test_a_launch_under_the_reserved_name_takes_it_anywhere(store: TaskStore) -> None:
    assert AsyncManager().add_conflict_ids("job-7", IDS)
    key = in_thread(
        lambda: AsyncManager().launch_async_task(JOB, 1, 2, task_key="job-7", conflict_ids=IDS)
    )
    assert key == "job-7" and owners(store) == {"job-7"}


def test_a_sibling_asyncio_task_does_not_adopt_the_reservation(store: TaskStore) -> None:
    """Two requests of an ASGI server: both call the manager through ``sync_to_async``."""
    manager = AsyncManager()
    reserve = sync_to_async(manager.add_conflict_ids)
    launch = sync_to_async(manager.launch_async_task)

    async def main() -> tuple[str, BaseException | None]:
        reserved = asyncio.Event()

        async def first() -> str:
            assert await reserve("custom-task", IDS)
            reserved.set()
            return await launch(JOB, 1, 2, conflict_ids={"testapp.Project": [1]})

        async def second() -> BaseException | None:
            await reserved.wait()
            try:
                await launch(JOB, 1, 2, conflict_ids={"testapp.Project": [2]})
            except ConflictError as exc:
                return exc
            return None

        try:
            return tuple(await asyncio.gather(first(), second()))  # type: ignore[return-value]
        finally:
            await sync_to_async(connections.close_all)()  # the executor thread's connection

    key, refused = asyncio.run(main())
    assert isinstance(refused, ConflictError) and refused.holders == ["custom-task"]
    assert {lock.object_pk: lock.task_name for lock in store.locks()} == {
        "1": key,
        "2": "custom-task",
    }


def test_a_new_request_on_a_reused_thread_starts_without_reservations(store: TaskStore) -> None:
    assert AsyncManager().add_conflict_ids("custom-task", IDS)
    request_started.send(sender=None)  # the next request a WSGI server hands this thread
    with pytest.raises(ConflictError):
        AsyncManager().launch_async_task(JOB, 1, 2, conflict_ids=IDS)
    assert owners(store) == {"custom-task"}


def test_two_requests_reserving_the_same_rows_under_one_name_do_not_share_them(
    store: TaskStore,
) -> None:
    """Seed 002's fixed name in two requests at once: the second reservation of the same rows is
    refused (it used to succeed, re-entrant by name, and its launch took the first one's locks)."""
    first = AsyncManager()
    assert first.add_conflict_ids("custom-task", IDS)
    assert (
        in_thread(
            lambda: AsyncManager().add_conflict_ids("custom-task", {"testapp.Project": {2, 3}})
        )
        is False
    )
    assert {lock.object_pk for lock in store.locks()} == {"1", "2"}  # nothing of the refused one
    # The first request may still add to its own reservation, and launches with all of it.
    assert first.add_conflict_ids("custom-task", {"testapp.Project": {2, 3}})
    key = first.launch_async_task(JOB, 1, 2, conflict_ids={"testapp.Project": {1, 2, 3}})
    assert owners(store) == {key}


def test_a_running_task_adds_locks_under_its_own_key_anywhere(store: TaskStore) -> None:
    key = AsyncManager().launch_async_task(JOB, 1, 2, conflict_ids=IDS)
    assert in_thread(lambda: AsyncManager().add_conflict_ids(key, {"testapp.Project": {2, 3}}))
    assert {lock.object_pk for lock in store.locks(task_name=key)} == {"1", "2", "3"}
