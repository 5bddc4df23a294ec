"""Locks this process reserved by name with ``add_conflict_ids`` before launching a job.

Seed 002's basic pattern reserves under a fixed name, then launches with the same ids; the launch
adopts those locks instead of conflicting with itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .conflicts import LockKey

_lock = threading.Lock()
_reserved: dict[str, set[LockKey]] = {}


def remember(task_name: str, keys: Iterable[LockKey]) -> None:
    with _lock:
        _reserved.setdefault(task_name, set()).update(keys)


def holders_of(keys: Iterable[LockKey]) -> set[str]:
    """Names whose reservations overlap ``keys``."""
    wanted = set(keys)
    with _lock:
        return {name for name, held in _reserved.items() if held & wanted}


def forget(names: Iterable[str], keys: Iterable[LockKey] | None = None) -> None:
    """Drop ``keys`` (or everything) from the reservations of ``names``."""
    drop = set(keys) if keys is not None else None
    with _lock:
        for name in names:
            held = _reserved.get(name)
            if held is None:
                continue
            if drop is None:
                held.clear()
            else:
                held -= drop
            if not held:
                del _reserved[name]
