"""``ModelTrackingAsyncManager``'s configuration: class attributes and config reduced to a
``Tracking`` (record model, columns, options), and the system-check messages for a bad one.

Separate from ``tracking`` (which writes events) so the startup checks and the hot write path
each stay readable on their own.
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.core import checks
from django.db import models, router
from django.utils.module_loading import import_string

from .. import conf
from ..exceptions import InvalidFieldMap
from ..statuses import TaskStatus

if TYPE_CHECKING:
    from ..async_dashboard import ModelTrackingAsyncManager

logger = logging.getLogger("powercrud_async.tracking.config")

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

_UNSET_STATUS = ("", TaskStatus.UNKNOWN.value)

#: Config keys this manager reads (all plain data, so the config travels to workers).
CONFIG_KEYS = (
    "record_model_path", "field_map", "create_defaults", "progress_interval", "timeline",
    "format_user", "format_affected", "format_payload",
)
FORMATTER_KEYS = ("format_user", "format_affected", "format_payload")

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


def options_for(cls: type[ModelTrackingAsyncManager], config: Mapping[str, Any] | None) -> Options:
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


def _columns(model: type[models.Model]) -> dict[str, models.Field]:
    return {f.name: f for f in model._meta.concrete_fields}


def _find_model(path: Any) -> type[models.Model]:
    if not isinstance(path, str) or path.count(".") != 1:
        raise LookupError(path)
    return apps.get_model(path)


def _field(model: type[models.Model], column: str) -> models.Field:
    return cast(models.Field, model._meta.get_field(column))


def _is_unique(model: type[models.Model], column: str) -> bool:
    if _field(model, column).unique:
        return True
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and list(constraint.fields) == [column] \
                and constraint.condition is None:
            return True
    return any(list(together) == [column] for together in model._meta.unique_together)


def analyse(options: Options) -> tuple[Tracking | None, list[checks.CheckMessage]]:
    """Resolve ``options`` against the model; returns what works plus every problem found."""
    problems: list[checks.CheckMessage] = []
    owner = options.owner
    path = options.record_model_path
    if not path:
        problems.append(checks.Error(
            f"{owner} has no record model.",
            hint='Set record_model_path = "myapp.AsyncTaskRecord" on the class, or pass '
                 "record_model_path in its config.",
            obj=owner, id="powercrud_async.E020",
        ))
        return None, problems
    try:
        model = _find_model(path)
    except (LookupError, ValueError):
        problems.append(checks.Error(
            f"{owner}: record_model_path {path!r} is not an installed model.",
            hint="Use 'app_label.ModelName' (e.g. 'myapp.AsyncTaskRecord') and make sure the app "
                 "is in INSTALLED_APPS.",
            obj=owner, id="powercrud_async.E021",
        ))
        return None, problems
    label = model._meta.label
    columns = _columns(model)
    field_map = options.field_map
    invalid = options.invalid_map
    if invalid is not None:
        problems.append(checks.Error(
            f"{owner}: field_map must be a dict of logical name -> column, got {invalid!r}.",
            hint='For example {"status": "state", "message": "note"}.',
            obj=owner, id="powercrud_async.E024",
        ))
    effective: dict[str, str] = {}
    for logical, column in field_map.items():
        if column in (None, ""):
            continue  # explicitly switched off
        explicit = logical in options.explicit
        if not isinstance(column, str) or not isinstance(logical, str):
            problems.append(checks.Error(
                f"{owner}: field_map entry {logical!r}: {column!r} is not a column name.",
                hint="Map each logical name to the name of a field of the record model, or None.",
                obj=owner, id="powercrud_async.E024",
            ))
            continue
        if column not in columns and not explicit and POWERCRUD_COLUMNS.get(logical) in columns:
            column = POWERCRUD_COLUMNS[logical]
        if column not in columns:
            if logical == "task_name":
                problems.append(checks.Error(
                    f"{owner}: record model {label} has no column {column!r} to hold the task "
                    "key (task_name).",
                    hint=f"Add task_name = models.CharField(max_length=255, unique=True) to {label}, "
                         "or map 'task_name' to an existing unique column in field_map.",
                    obj=owner, id="powercrud_async.E022",
                ))
            elif explicit:
                close = difflib.get_close_matches(column, list(columns), n=1)
                problems.append(checks.Error(
                    f"{owner}: field_map maps {logical!r} to {column!r}, but record model {label} "
                    f"has no column {column!r}.",
                    hint=(f"Did you mean {close[0]!r}? " if close else "")
                    + f"Columns of {label}: {', '.join(sorted(columns))}.",
                    obj=owner, id="powercrud_async.E023",
                ))
            continue
        effective[logical] = column
    task_column = effective.get("task_name")
    if task_column is not None and not _is_unique(model, task_column):
        problems.append(checks.Warning(
            f"{owner}: column {task_column!r} of record model {label} is not unique; concurrent "
            "events could create two records for one task.",
            hint=f"Declare {task_column} with unique=True.",
            obj=owner, id="powercrud_async.W020",
        ))
    create_defaults = options.create_defaults
    if not isinstance(create_defaults, Mapping):
        problems.append(checks.Error(
            f"{owner}: create_defaults must be a dict of column -> value, got {create_defaults!r}.",
            hint="Remove it or give a dict.", obj=owner, id="powercrud_async.E024",
        ))
        create_defaults = {}
    for column in create_defaults:
        if column not in columns:
            problems.append(checks.Error(
                f"{owner}: create_defaults names column {column!r}, but record model {label} has "
                "no such column.",
                hint=f"Columns of {label}: {', '.join(sorted(columns))}.",
                obj=owner, id="powercrud_async.E023",
            ))
    interval = options.progress_interval
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                 or interval < 0):
        problems.append(checks.Error(
            f"{owner}: progress_interval must be a number of seconds >= 0, got {interval!r}.",
            hint="Leave it unset to use PROGRESS_WRITE_INTERVAL.", obj=owner,
            id="powercrud_async.E024",
        ))
        interval = None
    timeline = options.timeline
    if not isinstance(timeline, bool):
        problems.append(checks.Error(
            f"{owner}: timeline must be True or False, got {timeline!r}.",
            hint="Set timeline_enabled = False on the class to switch the timeline off.",
            obj=owner, id="powercrud_async.E024",
        ))
        timeline = bool(timeline)
    for key, path_value in options.formatters.items():
        try:
            found = import_string(path_value) if isinstance(path_value, str) else path_value
        except ImportError as exc:
            found = exc
        if not callable(found):
            problems.append(checks.Error(
                f"{owner}: {key} {path_value!r} is not an importable callable.",
                hint="Give the dotted path of a module-level function taking one value.",
                obj=owner, id="powercrud_async.E024",
            ))
    if task_column is None:
        if not any(p.id == "powercrud_async.E022" for p in problems):
            problems.append(checks.Error(
                f"{owner}: field_map maps no column of record model {label} to task_name.",
                hint="Map 'task_name' to a unique CharField of the model; it is the only "
                     "required field.",
                obj=owner, id="powercrud_async.E022",
            ))
        return None, problems
    status_column = effective.get("status")
    auto_now = tuple(
        name for name, f in columns.items()
        if getattr(f, "auto_now", False) and name not in effective.values()
    )
    tracking = Tracking(
        model=model,
        label=label,
        db=router.db_for_write(model),
        field_map=effective,
        fields={column: columns[column] for column in set(effective.values())},
        task_column=task_column,
        status_column=status_column,
        unique_task=_is_unique(model, task_column),
        auto_now=auto_now,
        create_defaults={k: v for k, v in create_defaults.items() if k in columns},
        progress_interval=interval,
        timeline=timeline,
    )
    return tracking, problems


_resolved: dict[tuple[type, str], tuple[Tracking | None, list[checks.CheckMessage]]] = {}
_resolved_lock = threading.Lock()
_reported: set[tuple[type, str]] = set()


def _cache_key(cls: type, config: Mapping[str, Any] | None) -> tuple[type, str]:
    ours = {key: (config or {}).get(key) for key in CONFIG_KEYS}
    return cls, json.dumps(ours, sort_keys=True, default=repr)


def resolve(cls: type[ModelTrackingAsyncManager], config: Mapping[str, Any] | None) -> Tracking:
    """The ``Tracking`` for a manager class and config (cached per process).

    Raises ``InvalidFieldMap`` when the record model cannot be used at all; lesser problems
    (a column that does not exist) are skipped here and reported by the system check.
    """
    key = _cache_key(cls, config)
    with _resolved_lock:
        found = _resolved.get(key)
    if found is None:
        found = analyse(options_for(cls, config))
        with _resolved_lock:
            _resolved[key] = found
    tracking, problems = found
    if tracking is None:
        raise InvalidFieldMap(" ".join(f"{p.msg} {p.hint}" for p in problems if p.level >= checks.ERROR))
    if problems and key not in _reported:
        _reported.add(key)
        for problem in problems:
            logger.warning("%s (%s) %s", problem.msg, problem.id, problem.hint or "")
    return tracking


def check(cls: type[ModelTrackingAsyncManager], config: Mapping[str, Any] | None) -> list[checks.CheckMessage]:
    """System-check messages for a manager class and config (``powercrud_async.E02x``)."""
    try:
        config = plain_config(config or {})
    except TypeError as exc:
        return [checks.Error(str(exc), hint="Use plain data and dotted paths in the config.",
                             obj=cls.__qualname__, id="powercrud_async.E024")]
    return analyse(options_for(cls, config))[1]


def clear_cache() -> None:
    with _resolved_lock:
        _resolved.clear()
        _reported.clear()
