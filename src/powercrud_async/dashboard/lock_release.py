"""Which actions a job offers, and a release confirmation that says exactly what will be freed."""

from __future__ import annotations

from typing import Any

from ..stores import get_store
from .summaries import describe_locks, lock_groups


def _plural(n: int, one: str) -> str:
    return f"{n} {one}{'' if n == 1 else 's'}"


def release_confirmation(keys: list[str], named: list[dict[str, Any]]) -> dict[str, Any]:
    """Question, button and per-job lock ranges for releasing the locks of ``keys``."""
    store = get_store()
    held = {key: store.locks(task_name=key) for key in keys}
    total = sum(len(locks) for locks in held.values())
    for item in named:
        locks = held.get(item["key"], [])
        item["detail"] = (
            f"{_plural(len(locks), 'lock')}: "
            + describe_locks(lock_groups((lk.model_label, lk.object_pk) for lk in locks))
            if locks
            else "holds no locks"
        )
    jobs = _plural(len(keys), "job")
    return {
        "question": f"Release {_plural(total, 'lock')} held by {jobs}?",
        "confirm_label": f"Yes, release {_plural(total, 'lock')}",
        "release_note": "Every lock of the listed jobs is freed. A job whose worker died is marked "
        "failed with that cause; your release is added to its timeline.",
    }


def applicable_actions(job: Any, holds_locks: bool) -> list[str]:
    """The actions that would do something to ``job``: no Cancel for a finished job, no Release
    for one holding no locks or still alive (its locks are refused while it lives)."""
    found = []
    if job.can_retry:
        found.append("retry")
    if job.can_cancel:
        found.append("cancel")
    if holds_locks and (not job.is_active or job.stuck):
        found.append("release")
    if job.can_delete:
        found.append("delete")
    return found
