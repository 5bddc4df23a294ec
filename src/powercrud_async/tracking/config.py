"""A tracked manager's configuration: the record field map, its options as plain data that
travels to workers, and the resolved ``Tracking`` every write works from.

Also the one reading of a field map (``record_columns``, ``Tracking.column``), and the
protocols saying what tracking needs from its manager, so nothing here imports the manager.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

from django.db import models
from django.utils.module_loading import import_string

from .. import conf
from ..statuses import TaskStatus

#: Logical name -> column on ``AbstractAsyncTaskRecord``. Columns a model lacks are skipped.
DEFAULT_FIELD_MAP: dict[str, str] = {
    "task_name": "task_name",
    "status": "status",
    "message": "message",
    "progress": "progress_payload",
    "percent": "percent",
    "user": "user_label",
    "user_id": "user_pk",
    "affected": "affected_objects",
    "func_path": "func_path",
    "args": "args_payload",
    "kwargs": "kwargs_payload",
    "result": "result_payload",
    "cleaned": "cleaned_up",
    "retry_of": "retry_of",
    "label": "label",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "failed_at": "failed_at",
    "cancelled_at": "cancelled_at",
    "duration": "duration",
    "error": "error",
    "traceback": "traceback",
}

#: PowerCRUD's default columns, used when the model has these instead of ours.
POWERCRUD_COLUMNS: dict[str, str] = {"args": "task_args", "kwargs": "task_kwargs"}

#: Status values of a record no event has given a status yet (a guarded write may still land).
UNSET_STATUS = ("", TaskStatus.UNKNOWN.value)

#: Config keys this manager reads (all plain data, so the config travels to workers).
CONFIG_KEYS = (
    "record_model_path",
    "field_map",
    "create_defaults",
    "progress_interval",
    "timeline",
    "format_user",
    "format_affected",
    "format_payload",
)
FORMATTER_KEYS = ("format_user", "format_affected", "format_payload")


# -- what tracking needs from its manager -------------------------------------------------------
class ManagerSettings(Protocol):
    """The class attributes a tracked manager is configured by (``ModelTrackingAsyncManager``
    has them); spelled out here so configuration never imports the manager back."""

    record_model_path: ClassVar[str | None]
    field_map: ClassVar[Mapping[str, str | None]]
    create_defaults: ClassVar[Mapping[str, Any]]
    progress_interval: ClassVar[float | None]
    timeline_enabled: ClassVar[bool]


class RecordFormatters(Protocol):
    """How a manager turns payload values into column values (its formatting hooks)."""

    def format_user(self, user: Any) -> str: ...

    def format_affected(self, affected: Any) -> str: ...

    def format_payload(self, value: Any) -> Any: ...


class TrackedManager(RecordFormatters, Protocol):
    """A manager whose events are written to records: its formatters and the resolved
    configuration its writes follow."""

    def get_tracking(self) -> Tracking: ...


# -- configuration ------------------------------------------------------------------------------
def model_label(value: Any) -> Any:
    """``"app_label.ModelName"`` for a model class; anything else unchanged."""
    if isinstance(value, type) and issubclass(value, models.Model):
        return value._meta.label
    return value


def callable_path(value: Any, what: str) -> Any:
    """A dotted path for a module-level function (so it can travel); strings unchanged."""
    if value is None or isinstance(value, str):
        return value
    if not callable(value):
        raise TypeError(f"{what} must be a callable or a dotted path, got {value!r}.")
    path = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
    try:
        found = import_string(path)
    except ImportError:
        found = None
    if found is not value:
        raise TypeError(
            f"{what} must be a module-level function so workers can import it; {value!r} is not "
            "(lambdas, methods and nested functions cannot travel with the config)."
        )
    return path


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Reduce our keys to JSON-friendly data: model classes to labels, functions to paths."""
    out = dict(config)
    if "record_model" in out:
        out.setdefault("record_model_path", out.pop("record_model"))
    if "record_model_path" in out:
        out["record_model_path"] = model_label(out["record_model_path"])
    for key in FORMATTER_KEYS:
        if key in out:
            out[key] = callable_path(out[key], key)
    for key in ("field_map", "create_defaults"):
        if key in out and isinstance(out[key], Mapping):
            out[key] = dict(out[key])
    ours = {key: out[key] for key in CONFIG_KEYS if key in out}
    try:
        json.dumps(ours)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"ModelTrackingAsyncManager options must be plain data (they travel to workers as "
            f"JSON): {exc}."
        ) from exc
    return out


@dataclass(frozen=True)
class Options:
    """The effective options of one manager class + config, before the model is looked at."""

    owner: str
    record_model_path: Any
    field_map: dict[str, Any]
    explicit: dict[str, Any]
    invalid_map: Any
    create_defaults: Any
    progress_interval: Any
    timeline: Any
    formatters: dict[str, Any]


def options_for(cls: type[ManagerSettings], config: Mapping[str, Any] | None) -> Options:
    """A class's attributes overlaid with ``config`` (the config wins, maps are merged)."""
    config = dict(config or {})
    raw_class_map = getattr(cls, "field_map", None) or {}
    class_map = dict(raw_class_map) if isinstance(raw_class_map, Mapping) else {}
    config_map = config.get("field_map")
    explicit = {**class_map, **(config_map if isinstance(config_map, Mapping) else {})}
    field_map = {**DEFAULT_FIELD_MAP, **explicit}
    invalid_map = None
    if config_map is not None and not isinstance(config_map, Mapping):
        invalid_map = config_map
    elif not isinstance(raw_class_map, Mapping):
        invalid_map = raw_class_map
    create_defaults = config.get("create_defaults", None)
    if create_defaults is None:
        create_defaults = dict(getattr(cls, "create_defaults", None) or {})
    elif isinstance(create_defaults, Mapping):
        create_defaults = {**dict(getattr(cls, "create_defaults", None) or {}), **create_defaults}
    return Options(
        owner=f"{cls.__module__}.{cls.__qualname__}",
        record_model_path=model_label(config.get("record_model_path") or cls.record_model_path),
        field_map=field_map,
        explicit=explicit,
        invalid_map=invalid_map,
        create_defaults=create_defaults,
        progress_interval=config.get("progress_interval", cls.progress_interval),
        timeline=config.get("timeline", cls.timeline_enabled),
        formatters={key: config.get(key) for key in FORMATTER_KEYS if config.get(key)},
    )


@dataclass(frozen=True)
class Tracking:
    """A resolved configuration: the record model and where each logical field goes."""

    model: type[models.Model]
    label: str
    db: str
    field_map: dict[str, str]
    fields: dict[str, models.Field]
    task_column: str
    status_column: str | None
    unique_task: bool
    auto_now: tuple[str, ...]
    create_defaults: dict[str, Any]
    progress_interval: float | None
    timeline: bool

    def interval(self) -> float:
        if self.progress_interval is not None:
            return float(self.progress_interval)
        return float(conf.get("PROGRESS_WRITE_INTERVAL"))

    def timeline_limit(self) -> int:
        return int(conf.get("TIMELINE_MAX_EVENTS")) if self.timeline else 0

    def manager(self) -> models.Manager:
        return self.model._base_manager.db_manager(self.db)

    def column(self, logical: str) -> str | None:
        """The column holding ``logical`` (``"status"``, ``"cleaned"`` ...), or ``None``."""
        return self.field_map.get(logical)

    def datetime_column(self, *logicals: str) -> str | None:
        """The first of ``logicals`` held by a date-time column (what ages and stamps use)."""
        for logical in logicals:
            column = self.field_map.get(logical)
            if column and isinstance(self.fields[column], models.DateTimeField):
                return column
        return None


def model_columns(model: type[models.Model]) -> dict[str, models.Field]:
    """Column name -> field of ``model`` (concrete fields only: what a record write can set)."""
    return {f.name: f for f in model._meta.concrete_fields}


def model_field(model: type[models.Model], column: str) -> models.Field:
    """The field object of ``column`` (typed: ``get_field`` may also return a relation)."""
    return cast(models.Field, model._meta.get_field(column))


def place_column(
    logical: str, column: str, columns: Mapping[str, Any], *, explicit: bool
) -> str | None:
    """The column of ``columns`` holding ``logical`` when mapped to ``column``: PowerCRUD's
    name stands in for a default the model lacks; ``None`` when the model has neither."""
    if column not in columns and not explicit and POWERCRUD_COLUMNS.get(logical) in columns:
        column = POWERCRUD_COLUMNS[logical]
    return column if column in columns else None


def record_columns(
    model: type[models.Model], field_map: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """Logical name -> column of ``model`` for ``field_map`` over the defaults: the one reading
    of a field map (the writer's ``Tracking.field_map`` is built the same way), for code that
    has a record model but no manager."""
    columns = model_columns(model)
    explicit = dict(field_map or {})
    found: dict[str, str] = {}
    for logical, column in {**DEFAULT_FIELD_MAP, **explicit}.items():
        if isinstance(logical, str) and isinstance(column, str) and column:
            placed = place_column(logical, column, columns, explicit=logical in explicit)
            if placed is not None:
                found[logical] = placed
    return found
