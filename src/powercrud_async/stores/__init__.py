"""Where locks and the live-task registry live: never a cache that may cull or evict."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from .. import conf
from .base import LockInfo, TaskInfo, TaskStore

__all__ = ["LockInfo", "TaskInfo", "TaskStore", "get_store"]


@cache
def get_store() -> TaskStore:
    """The configured store (``POWERCRUD_SETTINGS["LOCK_STORE"]``), one per process."""
    kind = conf.get("LOCK_STORE")
    if kind == "redis":
        from .redis import RedisTaskStore

        return RedisTaskStore.from_settings()
    from .database import DatabaseTaskStore

    return DatabaseTaskStore()


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("POWERCRUD_SETTINGS", "DATABASES"):
        get_store.cache_clear()
