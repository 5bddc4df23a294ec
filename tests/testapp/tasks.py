"""Module-level job functions the tests launch (workers import them by dotted path)."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

logger = logging.getLogger("tests.jobs")


def add(a: int, b: int) -> int:
    return a + b


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": {k: v for k, v in kwargs.items()}}


def seed_worker(
    project_id: int, *, task_key: str | None = None, manager_class: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The worker signature of seed 002."""
    from powercrud_async.async_manager import AsyncManager

    manager = AsyncManager.resolve_manager(manager_class)
    steps = ["load", "rebuild", "save"]
    for idx, step in enumerate(steps, start=1):
        manager.update_progress(task_key, f"Step {idx}/{len(steps)}: {step}")
    return {"project": project_id, "steps": len(steps), "manager": manager_class, "extra": kwargs}


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def return_false() -> bool:
    return False


def system_exit() -> None:
    raise SystemExit("stopped")


def slow(
    seconds: float, *, task_key: str | None = None, marker: str | None = None, steps: int = 10
) -> str:
    """Sleeps in steps, reporting progress (so it can be cancelled); writes its pid to ``marker``."""
    from powercrud_async.async_context import update_progress

    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        update_progress(f"step {step}/{steps}", current=step, total=steps)
    return "slept"


def chatty(count: int = 1000, *, task_key: str | None = None) -> int:
    from powercrud_async.async_manager import AsyncManager

    manager = AsyncManager.resolve_manager()
    for i in range(count):
        manager.update_progress(task_key, f"item {i + 1}/{count}", current=i + 1, total=count)
    return count


def logs(*, task_key: str | None = None) -> str:
    logger.info("starting %s", "work")
    logger.warning("careful")
    logger.debug("not captured at INFO")
    return "logged"


def touch_children(parent_id: int) -> int:
    from tests.testapp.models import Parent

    parent = Parent.objects.get(pk=parent_id)
    parent.save()
    return parent.children.count()


def save_parents(parent_ids: list[int], delay: float = 0.0) -> int:
    from tests.testapp.models import Parent

    for pk in parent_ids:
        parent = Parent.objects.get(pk=pk)
        parent.save()
        time.sleep(delay)
    return len(parent_ids)


def noop() -> None:
    return None


def raise_timeout() -> None:
    """What django-q2's timer raises inside a job that overran its timeout."""
    from django_q.exceptions import TimeoutException

    raise TimeoutException("Task exceeded maximum timeout value (1 seconds)")


def _decorated(steps: int, *, progress_callback: Any = None) -> int:
    for step in range(1, steps + 1):
        progress_callback(f"callback {step}/{steps}")
    return steps


def decorated_worker(steps: int = 2) -> int:
    """A worker using PowerCRUD's ``progress_update_decorator`` (applied at call time, so the
    module imports without the package's hooks module)."""
    from powercrud_async.async_hooks import progress_update_decorator

    return int(progress_update_decorator(_decorated)(steps))


#: Set by a test once the runner's ticker thread has done a full round (flush, beat, check).
TICKED = threading.Event()


def wait_for_a_tick(seconds: float = 1.0) -> str:
    """Reports progress, gives a ticker thread (if any) the time of a round, reports again: the
    second report raises ``TaskCancelled`` if a ticker judged the job cancelled meanwhile."""
    from powercrud_async.async_context import update_progress

    update_progress("waiting for a tick")
    TICKED.wait(seconds)
    update_progress("after the tick")
    return "ran"


def gated_steps(gate_dir: str, steps: int = 3, *, task_key: str | None = None) -> str:
    """Reports step N only once the test has created ``gate_dir/step-N``, so a test decides when
    the job advances instead of racing a timer; gives up after a minute."""
    from powercrud_async.async_context import update_progress

    deadline = time.monotonic() + 60
    for step in range(1, steps + 1):
        gate = os.path.join(gate_dir, f"step-{step}")
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{gate} was never opened")
            time.sleep(0.05)
        update_progress(f"step {step}/{steps}", current=step, total=steps)
    return "stepped"
