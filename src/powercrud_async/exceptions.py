"""Every exception the package raises on purpose. Catch ``AsyncManagerError`` to catch them all
(except ``TaskCancelled``, which a job should let through)."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured


class AsyncManagerError(Exception):
    """Base class of our errors. Do not raise directly."""


class InvalidConflictIds(AsyncManagerError, ValueError):
    """``conflict_ids`` is not a mapping of ``"app_label.Model"`` to an iterable of pks."""


class InvalidConflictIdsType(InvalidConflictIds, TypeError):
    """``conflict_ids`` (or one of its id collections) has the wrong type."""


class UnknownModel(AsyncManagerError, LookupError):
    """A conflict label names a model that is not installed."""


class InvalidTaskName(AsyncManagerError, ValueError):
    """A task name or key is empty, not a string, or too long."""


class InvalidTaskFunction(AsyncManagerError, ValueError):
    """``func`` cannot be imported, or is not a module-level callable django-q2 can find."""


class InvalidLaunchOption(AsyncManagerError, ValueError, TypeError):
    """A ``launch_async_task`` option (``task_kwargs``, ``q_options``, ``timeout``, ``group``) has
    the wrong type or value."""


class InvalidUrlPrefix(AsyncManagerError, ValueError, TypeError):
    """``AsyncManager.get_urlpatterns(prefix=...)`` got something that is not a plain URL path."""


class InvalidProgress(AsyncManagerError, TypeError, ValueError):
    """``update_progress`` got a message that is not a string, or numbers that are not finite
    numbers."""


class ConflictError(AsyncManagerError):
    """Some objects are locked by other tasks; nothing was locked or launched."""

    def __init__(self, conflicts: Mapping[str, Mapping[str, str]], message: str | None = None):
        #: ``{"app_label.model": {pk: holding_task_name}}``
        self.conflicts = {label: dict(pks) for label, pks in conflicts.items()}
        holders = sorted({h for pks in self.conflicts.values() for h in pks.values()})
        if message is None:
            parts = [
                f"{label} {', '.join(sorted(pks))}" for label, pks in sorted(self.conflicts.items())
            ]
            message = f"Objects already locked by task {', '.join(holders)}: {'; '.join(parts)}."
        self.holders = holders
        super().__init__(message)


class LockStoreUnavailable(AsyncManagerError):
    """The lock/registry store failed after bounded retries. Never means "conflict"."""


class EnqueueError(AsyncManagerError):
    """django-q2 refused the job; every lock and registration made for it was rolled back."""


class UnknownTask(AsyncManagerError, LookupError):
    """No live or recently finished task has this key."""


class TaskNotRetryable(AsyncManagerError, ValueError):
    """The task is still live, or its callable and arguments were not kept."""


class TaskStillLive(AsyncManagerError):
    """Refused: the task is queued in the broker or running with a live heartbeat."""


class TaskCancelled(BaseException):
    """Raised inside a worker at its next progress call after ``cancel_task``.

    Like ``asyncio.CancelledError`` it derives from ``BaseException``, not ``Exception``: a
    job's ``except Exception:`` must not swallow a cancellation and end as a success. Code that
    names it (``except TaskCancelled:``) catches it as before; ``except AsyncManagerError:``
    does not.
    """


class InvalidFieldMap(AsyncManagerError, ImproperlyConfigured):
    """A ``field_map`` or record model does not fit the model it names."""


class InvalidManagerClass(AsyncManagerError, ImportError, TypeError):
    """A manager's dotted path cannot be imported, or does not name an ``AsyncManager`` subclass."""


class TamperedPayload(AsyncManagerError, ValueError):
    """A stored job payload failed its signature check (or was never signed): it is not run."""


class InvalidSchedule(AsyncManagerError, ValueError):
    """A schedule's name, trigger, arguments or manager is wrong; nothing was created or changed."""


class UnknownSchedule(AsyncManagerError, LookupError):
    """No django-q2 ``Schedule`` has this id."""


class TaskSuperseded(BaseException):
    """Raised inside a job whose attempt was taken over by a newer one (its fencing token is
    stale): this attempt must stop at once and leave the task to the attempt that owns it.

    A ``BaseException``, like ``SystemExit``, so job code's ``except Exception`` cannot swallow
    it and carry on working on objects it no longer owns.
    """
