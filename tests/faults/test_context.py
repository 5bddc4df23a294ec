"""The task context in coroutines and when shared; cancellation that a job cannot swallow."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django_q.models import OrmQ

from powercrud_async import progress, runner
from powercrud_async.async_context import get_current_task, set_current_task, task_context
from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import AsyncManagerError, TaskCancelled
from powercrud_async.models import LiveTask


def current_name() -> str | None:
    ctx = get_current_task()
    return ctx.task_name if ctx else None


# -- coroutines ------------------------------------------------------------------------------------
def test_decorating_a_coroutine_function_gives_the_context_inside() -> None:
    @task_context("async-job")
    async def work(value: int) -> tuple[str | None, int]:
        await asyncio.sleep(0)
        return current_name(), value

    assert asyncio.iscoroutinefunction(work)
    assert asyncio.run(work(3)) == ("async-job", 3)
    assert current_name() is None


def test_a_decorated_coroutine_does_not_leak_its_context_into_the_caller() -> None:
    @task_context("inner")
    async def work() -> str | None:
        return current_name()

    async def caller() -> tuple[str | None, str | None, str | None]:
        before = current_name()
        inside = await work()
        return before, inside, current_name()

    assert asyncio.run(caller()) == (None, "inner", None)


# -- one context object, several tasks or threads --------------------------------------------------
def test_one_context_object_shared_by_two_asyncio_tasks() -> None:
    """Entered in two tasks, left in the opposite order: each task sees and restores its own."""
    shared = task_context("shared")

    async def main() -> dict[str, Any]:
        a_inside, b_inside, a_left = asyncio.Event(), asyncio.Event(), asyncio.Event()
        seen: dict[str, Any] = {}

        async def first() -> None:
            with shared as ctx:
                seen["a"] = ctx
                a_inside.set()
                await b_inside.wait()  # b entered the same object after us
            seen["a-after"] = current_name()
            a_left.set()

        async def second() -> None:
            await a_inside.wait()
            with shared as ctx:
                seen["b"] = ctx
                b_inside.set()
                await a_left.wait()  # a left while we are still inside
                seen["b-inside-after-a-left"] = current_name()
            seen["b-after"] = current_name()

        await asyncio.gather(first(), second())
        return seen

    seen = asyncio.run(main())
    assert seen["a"] is not seen["b"] and seen["a"].task_name == seen["b"].task_name == "shared"
    assert seen["b-inside-after-a-left"] == "shared"
    assert seen["a-after"] is None and seen["b-after"] is None


def test_one_context_object_shared_by_two_threads() -> None:
    shared = task_context("shared")
    entered, release = threading.Barrier(2, timeout=30), threading.Event()
    seen: list[str | None] = []

    def worker(leave_first: bool) -> None:
        with shared:
            entered.wait()
            if not leave_first:
                release.wait(timeout=30)
        if leave_first:
            release.set()
        seen.append(current_name())

    threads = [threading.Thread(target=worker, args=(first,)) for first in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [None, None]


def test_leaving_out_of_order_is_a_clear_error() -> None:
    outer, inner = task_context("outer"), task_context("inner")
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="not the innermost"):
        outer.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)
    assert current_name() is None


def test_set_current_task_still_restores() -> None:
    with set_current_task("a"):
        assert current_name() == "a"
    assert current_name() is None


# -- cancellation ----------------------------------------------------------------------------------
def test_task_cancelled_is_not_an_ordinary_exception_but_stays_catchable_by_name() -> None:
    assert not issubclass(TaskCancelled, Exception) and issubclass(TaskCancelled, BaseException)
    assert not issubclass(TaskCancelled, AsyncManagerError)
    with pytest.raises(TaskCancelled):
        raise TaskCancelled("stop")


def swallowing_job(*, task_key: str) -> str:
    """A job that catches every ``Exception`` around its progress calls."""
    manager = AsyncManager()
    assert manager.cancel_task(task_key) == "requested"
    progress.buffer._tracked[task_key].cancelled.set()  # what the ticker does when it sees it
    try:
        manager.update_progress(task_key, "still working")
    except Exception:  # noqa: BLE001 - the point of the test
        return "swallowed"
    return "not cancelled"


@pytest.mark.django_db(transaction=True)
def test_a_job_catching_exception_cannot_swallow_cancellation() -> None:
    key = AsyncManager().launch_async_task(f"{__name__}.swallowing_job")
    envelope = next(q.args()[0] for q in OrmQ.objects.all() if q.name() == key)
    assert runner.is_skip_marker(runner.run_task(envelope))
    row = LiveTask.objects.get(task_name=key)
    assert row.status == "cancelled" and row.reason == "Cancelled while running"
