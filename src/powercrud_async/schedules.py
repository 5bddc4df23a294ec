"""Entry points for django-q2 ``Schedule`` objects."""

from __future__ import annotations

from typing import Any

from . import conf

__all__ = ["cleanup_async_artifacts", "ensure_cleanup_schedule"]

SCHEDULE_NAME = "powercrud_async cleanup"


def cleanup_async_artifacts(manager_class: str | None = None) -> dict[str, Any]:
    """What the schedule runs: ``cleanup_completed_tasks`` on the project's manager."""
    from .async_manager import AsyncManager

    return AsyncManager.resolve_manager(manager_class).cleanup_completed_tasks()


def ensure_cleanup_schedule() -> Any:
    """Create (or update) the django-q2 ``Schedule`` running cleanup every
    ``CLEANUP_SCHEDULE_INTERVAL`` seconds. Idempotent; returns the ``Schedule``."""
    from django_q.models import Schedule

    minutes = max(1, round(conf.get("CLEANUP_SCHEDULE_INTERVAL") / 60))
    schedule, _ = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "powercrud_async.schedules.cleanup_async_artifacts",
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
            "repeats": -1,
        },
    )
    return schedule
