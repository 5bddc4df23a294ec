"""``ModelTrackingAsyncManager``: every lifecycle event of a job persisted into a model you own.

Point it at a record model (``class AsyncTaskRecord(AbstractAsyncTaskRecord): pass`` or your own
columns through ``field_map``) and a dashboard becomes a declaration::

    class AppAsyncManager(ModelTrackingAsyncManager):
        record_model_path = "myapp.AsyncTaskRecord"

Configure it with class attributes, constructor keywords, or an ``AsyncDashboardConfig``; the
configuration is reduced to plain data so the worker and the completion hook rebuild the same
manager. The machinery lives in ``powercrud_async.tracking``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from django.core.checks import CheckMessage
from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from .async_manager import AsyncManager
from .exceptions import InvalidFieldMap
from .payloads import default_format_objects, default_format_user, json_safe
from .tracking import cleanup as record_cleanup
from .tracking import config as tracking_config
from .tracking import validation, writer

__all__ = ["AsyncDashboardConfig", "ModelTrackingAsyncManager"]

logger = logging.getLogger("powercrud_async.tracking")

Formatter = Callable[[Any], Any]


@dataclass(frozen=True, kw_only=True)
class AsyncDashboardConfig:
    """A reusable tracking configuration, for projects with several managers or models.

    ``record_model`` is a model class or ``"app_label.ModelName"``; formatters are module-level
    functions (or their dotted paths) taking one value. ``as_config()`` gives the plain dict the
    manager keeps in ``self.config`` (and ``ASYNC_MANAGER_DEFAULT["config"]`` accepts).
    """

    record_model: str | type[models.Model] | None = None
    record_model_path: str | None = None
    """PowerCRUD's name for ``record_model`` (either may be given)."""
    field_map: Mapping[str, str | None] = field(default_factory=dict)
    create_defaults: Mapping[str, Any] = field(default_factory=dict)
    progress_interval: float | None = None
    """Seconds between progress writes to the record (default ``PROGRESS_WRITE_INTERVAL``)."""
    timeline: bool | None = None
    """``False`` stores no timeline events for this manager."""
    format_user: Formatter | str | None = None
    format_affected: Formatter | str | None = None
    format_payload: Formatter | str | None = None

    def as_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        record_model = (
            self.record_model if self.record_model is not None else self.record_model_path
        )
        if record_model is not None:
            config["record_model_path"] = record_model
        if self.field_map:
            config["field_map"] = dict(self.field_map)
        if self.create_defaults:
            config["create_defaults"] = dict(self.create_defaults)
        if self.progress_interval is not None:
            config["progress_interval"] = self.progress_interval
        if self.timeline is not None:
            config["timeline"] = self.timeline
        for key in tracking_config.FORMATTER_KEYS:
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return tracking_config.plain_config(config)

    def resolve_field(self, logical_name: str, default: str | None) -> str | None:
        """The column this config maps ``logical_name`` to, else ``default`` (as in PowerCRUD)."""
        return self.field_map.get(logical_name, default)


@lru_cache(maxsize=256)
def _import_formatter(path: str) -> Formatter | None:
    try:
        found = import_string(path)
    except ImportError:
        logger.error("Formatter %r cannot be imported; using the default.", path)
        return None
    return found if callable(found) else None


class ModelTrackingAsyncManager(AsyncManager):
    """An ``AsyncManager`` that writes each task's lifecycle into a record model and a timeline.

    Event rules: ``create`` makes the record (idempotently; any event creates a missing one),
    each event writes only the fields it carries, ``None`` never overwrites a value, and the
    status never moves backwards. Progress writes are coalesced per task. A failed write is
    logged and repaired by the task's next event or by ``cleanup_completed_tasks()``.
    """

    #: ``"app_label.ModelName"`` of the record model.
    record_model_path: ClassVar[str | None] = None
    #: Logical name -> column, merged over the defaults (``None`` switches a default off).
    field_map: ClassVar[Mapping[str, str | None]] = {}
    #: Column values set only when a record is created.
    create_defaults: ClassVar[Mapping[str, Any]] = {}
    #: Seconds between progress writes per task (``None``: ``PROGRESS_WRITE_INTERVAL``).
    progress_interval: ClassVar[float | None] = None
    #: Store every event in ``TaskEvent`` (also bounded by ``TIMELINE_MAX_EVENTS``).
    timeline_enabled: ClassVar[bool] = True

    def __init__(
        self, config: Mapping[str, Any] | AsyncDashboardConfig | None = None, **options: Any
    ):
        if isinstance(config, AsyncDashboardConfig):
            config = config.as_config()
        for key, value in list(options.items()):
            if isinstance(value, AsyncDashboardConfig):
                options.pop(key)
                options.update(value.as_config())
        super().__init__(config, **options)
        self.config = tracking_config.plain_config(self.config)
        self._tracking: tracking_config.Tracking | None = None

    # -- configuration -----------------------------------------------------------------------
    @classmethod
    def check_configuration(cls, config: Mapping[str, Any] | None = None) -> list[CheckMessage]:
        """System-check messages (``powercrud_async.E020``–``E024``, ``W020``) for this class
        with ``config``; ``manage.py check`` runs it for ``ASYNC_MANAGER_DEFAULT``."""
        return validation.check(cls, config)

    def get_tracking(self) -> tracking_config.Tracking:
        """The resolved configuration; raises ``InvalidFieldMap`` if the model is unusable."""
        if self._tracking is None:
            self._tracking = validation.resolve(type(self), self.config)
        return self._tracking

    def get_record_model_path(self) -> str:
        """``"app_label.ModelName"`` of the record model; raises ``InvalidFieldMap`` (an
        ``ImproperlyConfigured``) if none is usable."""
        return self.get_tracking().label

    def get_record_model(self) -> type[models.Model]:
        return self.get_tracking().model

    def get_field_map(self) -> dict[str, str]:
        """Logical name -> column, for the columns the record model has."""
        return dict(self.get_tracking().field_map)

    def get_record(self, task_name: str) -> models.Model | None:
        """The record of ``task_name``, or ``None``."""
        t = self.get_tracking()
        return t.manager().filter(**{t.task_column: task_name}).first()

    def get_timeline(self, task_name: str) -> models.QuerySet[Any]:
        """The ``TaskEvent`` rows of ``task_name``, oldest first."""
        from django.db import router

        from .models import TaskEvent

        return (
            TaskEvent.objects.using(router.db_for_read(TaskEvent))
            .filter(task_name=task_name)
            .order_by("created_at", "id")
        )

    def flush_pending(self, task_name: str | None = None) -> int:
        """Write progress this process is still coalescing (and retry failed writes) now."""
        return writer.flush(task_name)

    # -- lifecycle -----------------------------------------------------------------------------
    def event_batch(self, task_name: str, *, marked: bool = False) -> AbstractContextManager[None]:
        """The events inside are written as one record UPDATE and one timeline INSERT (in a
        cluster worker, with other jobs' ends, within ``RECORD_WRITE_DELAY``)."""
        return writer.batch(self, task_name, marked=marked)

    def prepare_within(
        self, using: str, event: str, task_name: str, **payload: Any
    ) -> Callable[[], None] | None:
        """Write the event with the caller's transaction when the record and timeline live on
        ``using``; not when a subclass handles events itself (its side effects must not run
        inside a transaction that may be retried)."""
        cls = type(self)
        if (
            cls.async_task_lifecycle is not ModelTrackingAsyncManager.async_task_lifecycle
            or cls.emit is not AsyncManager.emit
        ):
            return None
        payload.setdefault("timestamp", timezone.now())
        return writer.prepare_within(self, event, task_name, payload, using)

    def async_task_lifecycle(self, event: str, task_name: str, **payload: Any) -> None:
        """Persist the event. Never raises: a subclass calling ``super()`` first still gets to
        run its own side effects when the database is down."""
        try:
            writer.persist(self, event, task_name, payload)
        except InvalidFieldMap as exc:
            logger.error("The %r event of task %s was not recorded: %s", event, task_name, exc)
        except Exception:  # noqa: BLE001
            logger.exception("Could not persist the %r event of task %s", event, task_name)

    # -- formatting hooks ------------------------------------------------------------------------
    def _configured(self, key: str) -> Formatter | None:
        path = self.config.get(key)
        return _import_formatter(path) if isinstance(path, str) and path else None

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(ModelTrackingAsyncManager, name)

    def format_user(self, user: Any) -> str:
        """The label stored for the launching user (default: ``get_username()``)."""
        configured = self._configured("format_user")
        return str(configured(user) if configured else default_format_user(user))

    def format_affected(self, affected: Any) -> str:
        """The label stored for ``affected_objects`` (default: ``", ".join(map(str, ...))``)."""
        if self._overrides("format_objects") and not self._overrides("format_affected"):
            return self.format_objects(affected)
        return self._default_objects(affected)

    def format_objects(self, objects: Any) -> str:
        """Alias of ``format_affected``: override either one."""
        if self._overrides("format_affected") and not self._overrides("format_objects"):
            return self.format_affected(objects)
        return self._default_objects(objects)

    def _default_objects(self, objects: Any) -> str:
        configured = self._configured("format_affected")
        return str(configured(objects) if configured else default_format_objects(objects))

    def format_payload(self, value: Any) -> Any:
        """JSON-safe, readable data for args, kwargs, results and progress."""
        configured = self._configured("format_payload")
        return json_safe(configured(value)) if configured else json_safe(value)

    # -- cleanup ---------------------------------------------------------------------------------
    def cleanup_completed_tasks(self, *, dry_run: bool = False) -> dict[str, Any]:
        """The base cleanup, plus records: lost terminal states repaired from the registry,
        ``cleaned_up`` set once a task's locks are gone (also for reclaimed and purged tasks)."""
        records: dict[str, Any] = {"repaired": [], "cleaned": 0}
        try:
            if not dry_run:
                writer.flush()
            records = record_cleanup.reconcile(self, dry_run=dry_run)
        except Exception:  # noqa: BLE001 - the registry cleanup must still run
            logger.exception("Reconciling task records failed")
        summary = super().cleanup_completed_tasks(dry_run=dry_run)
        released = [item["task_name"] for item in summary.get("orphaned_locks", [])]
        if released and not dry_run:
            try:
                records["cleaned"] += record_cleanup.mark_cleaned(self.get_tracking(), released)
            except Exception:  # noqa: BLE001
                logger.exception("Marking records cleaned up failed")
        summary["records_repaired"] = records["repaired"]
        summary["records_cleaned"] = records["cleaned"]
        counts = summary.setdefault("counts", {})
        counts["records_repaired"] = len(records["repaired"])
        counts["records_cleaned"] = records["cleaned"]
        return summary

    def cleanup_dashboard_data(self, task_name: str) -> int:
        """Called for each purged task: marks its record cleaned up. Override to remove extra
        artefacts of your own; return how many you removed."""
        try:
            record_cleanup.mark_cleaned(self.get_tracking(), [task_name])
        except Exception:  # noqa: BLE001
            logger.exception("Marking the record of task %s cleaned up failed", task_name)
        return 0
