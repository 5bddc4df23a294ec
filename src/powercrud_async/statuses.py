"""Task statuses and lifecycle events: one vocabulary for the registry, the progress cache,
the lifecycle handlers and the records."""

from __future__ import annotations

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskStatus(models.TextChoices):
    PENDING = "pending", _("Queued")
    """Launched and waiting in the broker."""
    IN_PROGRESS = "in_progress", _("Running")
    """A worker is running it and beating its heartbeat."""
    SUCCESS = "success", _("Succeeded")
    FAILED = "failed", _("Failed")
    """The worker raised or returned ``False``, or the job died (the reason says which)."""
    CANCELLED = "cancelled", _("Cancelled")
    UNKNOWN = "unknown", _("Unknown")
    """Only ever reported, never stored: the key is not known."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Order used so a status never moves backwards (a late progress after complete)."""
        match self:
            case TaskStatus.PENDING | TaskStatus.UNKNOWN:
                return 0
            case TaskStatus.IN_PROGRESS:
                return 1
            case _:
                return 2


ACTIVE: tuple[TaskStatus, ...] = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)
TERMINAL: tuple[TaskStatus, ...] = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Event(StrEnum):
    """What ``async_task_lifecycle`` receives; a plain string to handlers (``event == "complete"``)."""

    CREATE = "create"
    START = "start"
    PROGRESS = "progress"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    CLEANUP = "cleanup"
    SUPERSEDED = "superseded"


#: The event each terminal status emits.
FINISH_EVENTS: dict[TaskStatus, Event] = {
    TaskStatus.SUCCESS: Event.COMPLETE,
    TaskStatus.FAILED: Event.FAIL,
    TaskStatus.CANCELLED: Event.CANCEL,
}
