"""What the soak's jobs do, and the manager that records their terminal events.

Every record is one line appended to a per-process file under ``PCA_SOAK_LOG`` (``O_APPEND``
writes of one short line do not interleave), so the soak can check the invariants afterwards from
what really happened, whichever process it happened in.
"""

from __future__ import annotations

import os
import time
from typing import Any

from powercrud_async.async_manager import AsyncManager


def _log(kind: str, line: str) -> None:
    path = os.path.join(os.environ["PCA_SOAK_LOG"], f"{kind}-{os.getpid()}.log")
    with open(path, "a") as fh:
        fh.write(line + "\n")


class SoakManager(AsyncManager):
    """Logs every terminal event delivery (the invariant: each launched job has exactly one
    terminal event, keyed by task and event as an idempotent handler keys them; a second
    delivery is only ever cleanup's ``redelivered`` one)."""

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        if event in ("complete", "fail", "cancel", "superseded"):
            again = " redelivered" if payload.get("redelivered") else ""
            _log("events", f"{task_name} {event}{again}")


def touch(objects: list[int], steps: int, delay: float, *, task_key: str = "") -> int:
    """Work on each object ``steps`` times. A touch is fenced as the docs advise: a checkpoint
    before it starts and one before it is recorded as done; a touch whose second checkpoint
    fails (superseded, cancelled, ended by cleanup) is not recorded."""
    from powercrud_async.async_context import update_progress
    from powercrud_async.stores import get_store

    info = get_store().get(task_key)
    attempt = info.attempts if info else 0
    total = steps * len(objects)
    done = 0
    for _ in range(steps):
        for obj in objects:
            update_progress(f"{done}/{total}", current=done, total=total)
            start = time.time()
            time.sleep(delay)
            update_progress(f"{done + 1}/{total}", current=done + 1, total=total)
            _log("touch", f"{obj} {task_key} {attempt} {start:.6f} {time.time():.6f}")
            done += 1
    return done
