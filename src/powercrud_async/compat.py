"""The parts of PowerCRUD's ``AsyncManager`` surface that only answer questions, so code written
for ``powercrud.async_manager`` keeps working: its settings attributes, cache accessors and the
status helpers, each in terms of this package's own state (the registry, not django-q2's
``Task`` table, which has no row until a job ends).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured

from . import conf, health
from .statuses import TaskStatus


class PowerCrudSurface:
    """Mixed into ``AsyncManager``; relies on its ``get_status``."""

    def get_status(self, task_key: str) -> str:  # provided by AsyncManager
        raise NotImplementedError

    def emit(self, event: str, task_name: str, **payload: Any) -> None:  # provided by AsyncManager
        raise NotImplementedError

    def _emit_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        """PowerCRUD's name for ``emit``, which subclasses written for it call."""
        self.emit(event, task_name, **payload)

    # -- settings, read live (PowerCRUD copied them at construction) --------------------------
    @property
    def cache_name(self) -> str:
        return str(conf.get("CACHE_NAME"))

    @property
    def conflict_ttl(self) -> int:
        return int(conf.get("CONFLICT_TTL"))

    @property
    def progress_ttl(self) -> int:
        return int(conf.get("PROGRESS_TTL"))

    @property
    def cleanup_grace_period(self) -> int:
        return int(conf.get("CLEANUP_GRACE_PERIOD"))

    @property
    def max_task_duration(self) -> int:
        return int(conf.get("MAX_TASK_DURATION"))

    @property
    def cleanup_schedule_interval(self) -> int:
        return int(conf.get("CLEANUP_SCHEDULE_INTERVAL"))

    @property
    def qcluster_settings(self) -> dict[str, Any]:
        from django.conf import settings

        return dict(getattr(settings, "Q_CLUSTER", {}) or {})

    @property
    def cache(self) -> BaseCache | None:
        return self.get_cache()

    def get_cache_name(self) -> str:
        return self.cache_name

    def get_cache(self) -> BaseCache | None:
        """The progress cache, or ``None`` if its alias is not configured."""
        try:
            return caches[self.cache_name]
        except Exception:  # noqa: BLE001 - InvalidCacheBackendError and friends
            return None

    def validate_cache_backend(self) -> None:
        """Raise ``ImproperlyConfigured`` unless the progress cache is shared between processes."""
        from .health import validate_cache

        if not validate_cache():
            raise ImproperlyConfigured(
                f"Cache {self.cache_name!r} is missing, process-local (LocMem/Dummy) or failing; "
                "progress needs a cache every process shares (database, Redis, Memcached)."
            )

    # -- task names and status -----------------------------------------------------------------
    def generate_task_name(self) -> str:
        return str(uuid.uuid4())

    def get_task_status_nowait(self, task_name: str) -> str:
        """One of ``STATUSES``; never blocks and never reads django-q2's tables."""
        return self.get_status(task_name)

    def get_task_status(self, task_name: str) -> str:
        """As ``get_task_status_nowait``: the registry knows at once, so there is nothing to wait for."""
        return self.get_status(task_name)

    get_task_status_cache_only = get_task_status_nowait

    def is_task_complete(self, task_name: str) -> bool:
        """True once the task succeeded, failed or was cancelled."""
        status = self.get_status(task_name)
        return status in TaskStatus.values and TaskStatus(status).is_terminal

    is_task_complete_cache_only = is_task_complete

    # -- health (PowerCRUD's names) --------------------------------------------------------------
    @classmethod
    def validate_async_cache(cls) -> bool:
        return health.validate_cache()

    @classmethod
    def validate_async_qcluster(cls, timeout_ms: int | None = None) -> bool:
        return health.validate_qcluster(timeout_ms)

    @classmethod
    def validate_async_system(cls) -> dict[str, Any]:
        return health.validate_system()
