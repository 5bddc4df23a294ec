"""Jobs the fault tests launch: they record what they touch and can be held at a point."""

from __future__ import annotations

import threading

#: Set by a job when it reaches its pause point / set by the test to let it go on.
REACHED: dict[str, threading.Event] = {}
RELEASE: dict[str, threading.Event] = {}


def hold(name: str) -> tuple[threading.Event, threading.Event]:
    """Events for one pause point: ``(reached, release)``."""
    REACHED[name], RELEASE[name] = threading.Event(), threading.Event()
    return REACHED[name], RELEASE[name]


def items(
    count: int, log: str, *, pause: str = "", pause_at: int = -1, task_key: str | None = None
) -> int:
    """Process ``count`` items, each after a progress call (the job's checkpoint), appending
    ``attempt item`` lines to the file ``log``. The first attempt waits at item ``pause_at``
    until the test releases ``pause``."""
    from powercrud_async.async_context import update_progress
    from powercrud_async.stores import get_store

    info = get_store().get(task_key or "")
    attempt = info.attempts if info else 0
    for item in range(count):
        if attempt == 1 and item == pause_at:
            REACHED[pause].set()
            assert RELEASE[pause].wait(30), "the test never released the job"
        update_progress(f"item {item + 1}/{count}", current=item + 1, total=count)
        with open(log, "a") as fh:
            fh.write(f"{attempt} {item}\n")
    return count


def wait_on_redis(url: str, key: str) -> str:
    """Block a worker until the test pushes to ``key`` (a gate that needs no sleeping)."""
    import redis

    assert redis.Redis.from_url(url).blpop([key], timeout=60), "the gate was never opened"
    return "opened"


def noop() -> str:
    return "done"


def stalling_items(count: int, log: str, gate: str, *, task_key: str | None = None) -> int:
    """``items`` for a real worker: the first attempt writes its pid to ``gate + ".pid"`` at
    item 2 and waits there until the file ``gate`` exists, so the test can freeze the process
    (SIGSTOP: no thread runs, as in a C call holding the GIL) while it holds the task."""
    import os
    import time

    from powercrud_async.async_context import update_progress
    from powercrud_async.stores import get_store

    info = get_store().get(task_key or "")
    attempt = info.attempts if info else 0
    for item in range(count):
        if attempt == 1 and item == 2:
            with open(gate + ".pid", "w") as fh:
                fh.write(str(os.getpid()))
            while not os.path.exists(gate):
                time.sleep(0.01)
        update_progress(f"item {item + 1}/{count}", current=item + 1, total=count)
        with open(log, "a") as fh:
            fh.write(f"{attempt} {item}\n")
    return count


def write_pid(path: str) -> str:
    """Write this worker's pid to ``path``, so the test can kill the process that ran the job."""
    import os

    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    return "done"
