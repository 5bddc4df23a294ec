"""The launch helper of the "launch sites" examples (seed 002, section 1), for books.

The admin action ``rebuild_books``, the ``refresh_books`` command and the ``start_rebuild`` view
all call this one function. Two deliberate differences from the seed's snippet: it resolves the
project's default manager (so the job lands in the dashboard), and it passes the book ids to the
worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from powercrud_async.async_manager import AsyncManager


class BooksBusy(RuntimeError):
    """Another task already holds some of these books; nothing was started."""


def launch_custom_task(*, user: Any, affected_objects: Iterable[Any]) -> str:
    manager = AsyncManager.resolve_manager(None)
    affected_objects = list(affected_objects)

    # Optional: prevent overlapping work. The launch below adopts this reservation.
    conflict_ids = {"sample.Book": {obj.pk for obj in affected_objects}}
    if not manager.add_conflict_ids("custom-task", conflict_ids):
        holders = manager.get_conflict_holders(conflict_ids).get("sample.book", {})
        raise BooksBusy(
            "Another task already processes these books: "
            + ", ".join(sorted(set(holders.values())) or ["(just finished)"])
        )

    return manager.launch_async_task(
        "sample.jobs.rebuild_books",
        *sorted(obj.pk for obj in affected_objects),
        conflict_ids=conflict_ids,
        user=user,
        affected_objects=[str(obj) for obj in affected_objects],
        task_kwargs={"extra": "info"},
        task_label=f"Rebuild {len(affected_objects)} book{'' if len(affected_objects) == 1 else 's'}",
    )
