"""A tracked manager's options checked against its record model: the resolved ``Tracking``
(cached per process, used by every write) and the system-check messages for a bad one.

Kept apart from ``config`` so the startup checks and the plain settings each read on their own.
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import models, router
from django.utils.module_loading import import_string

from ..exceptions import InvalidFieldMap
from .config import (
    CONFIG_KEYS,
    ManagerSettings,
    Options,
    Tracking,
    model_columns,
    model_field,
    options_for,
    place_column,
    plain_config,
)

logger = logging.getLogger("powercrud_async.tracking.config")


def _find_model(path: Any) -> type[models.Model]:
    if not isinstance(path, str) or path.count(".") != 1:
        raise LookupError(path)
    return apps.get_model(path)


def _is_unique(model: type[models.Model], column: str) -> bool:
    if model_field(model, column).unique:
        return True
    for constraint in model._meta.constraints:
        if (
            isinstance(constraint, models.UniqueConstraint)
            and list(constraint.fields) == [column]
            and constraint.condition is None
        ):
            return True
    return any(list(together) == [column] for together in model._meta.unique_together)


def _error(
    owner: str, message: str, hint: str, check_id: str = "powercrud_async.E024"
) -> checks.Error:
    """One system-check error about ``owner`` (ids spelled out in full, so docs tests find them)."""
    return checks.Error(message, hint=hint, obj=owner, id=check_id)


def _missing_column(
    owner: str, label: str, logical: str, column: str, explicit: bool, columns: Mapping[str, Any]
) -> checks.Error | None:
    """The problem with mapping ``logical`` to a ``column`` the model lacks (defaults the
    model lacks are skipped silently, except the task key)."""
    if logical == "task_name":
        return _error(
            owner,
            f"{owner}: record model {label} has no column {column!r} to hold the task key "
            "(task_name).",
            f"Add task_name = models.CharField(max_length=255, unique=True) to {label}, or map "
            "'task_name' to an existing unique column in field_map.",
            "powercrud_async.E022",
        )
    if not explicit:
        return None
    close = difflib.get_close_matches(column, list(columns), n=1)
    return _error(
        owner,
        f"{owner}: field_map maps {logical!r} to {column!r}, but record model {label} has no "
        f"column {column!r}.",
        (f"Did you mean {close[0]!r}? " if close else "")
        + f"Columns of {label}: {', '.join(sorted(columns))}.",
        "powercrud_async.E023",
    )


def analyse(options: Options) -> tuple[Tracking | None, list[checks.CheckMessage]]:
    """Resolve ``options`` against the model; returns what works plus every problem found."""
    problems: list[checks.CheckMessage] = []
    owner = options.owner
    path = options.record_model_path
    if not path:
        return None, [
            _error(
                owner,
                f"{owner} has no record model.",
                'Set record_model_path = "myapp.AsyncTaskRecord" on the class, or pass '
                "record_model_path in its config.",
                "powercrud_async.E020",
            )
        ]
    try:
        model = _find_model(path)
    except (LookupError, ValueError):
        return None, [
            _error(
                owner,
                f"{owner}: record_model_path {path!r} is not an installed model.",
                "Use 'app_label.ModelName' (e.g. 'myapp.AsyncTaskRecord') and make sure the app "
                "is in INSTALLED_APPS.",
                "powercrud_async.E021",
            )
        ]
    label = model._meta.label
    columns = model_columns(model)
    if options.invalid_map is not None:
        problems.append(
            _error(
                owner,
                f"{owner}: field_map must be a dict of logical name -> column, got "
                f"{options.invalid_map!r}.",
                'For example {"status": "state", "message": "note"}.',
            )
        )
    effective: dict[str, str] = {}
    for logical, column in options.field_map.items():
        if column in (None, ""):
            continue  # explicitly switched off
        if not isinstance(column, str) or not isinstance(logical, str):
            problems.append(
                _error(
                    owner,
                    f"{owner}: field_map entry {logical!r}: {column!r} is not a column name.",
                    "Map each logical name to the name of a field of the record model, or None.",
                )
            )
            continue
        explicit = logical in options.explicit
        placed = place_column(logical, column, columns, explicit=explicit)
        if placed is None:
            problem = _missing_column(owner, label, logical, column, explicit, columns)
            if problem is not None:
                problems.append(problem)
            continue
        effective[logical] = placed
    task_column = effective.get("task_name")
    if task_column is not None and not _is_unique(model, task_column):
        problems.append(
            checks.Warning(
                f"{owner}: column {task_column!r} of record model {label} is not unique; concurrent "
                "events could create two records for one task.",
                hint=f"Declare {task_column} with unique=True.",
                obj=owner,
                id="powercrud_async.W020",
            )
        )
    create_defaults = options.create_defaults
    if not isinstance(create_defaults, Mapping):
        problems.append(
            _error(
                owner,
                f"{owner}: create_defaults must be a dict of column -> value, got "
                f"{create_defaults!r}.",
                "Remove it or give a dict.",
            )
        )
        create_defaults = {}
    for column in create_defaults:
        if column not in columns:
            problems.append(
                _error(
                    owner,
                    f"{owner}: create_defaults names column {column!r}, but record model "
                    f"{label} has no such column.",
                    f"Columns of {label}: {', '.join(sorted(columns))}.",
                    "powercrud_async.E023",
                )
            )
    interval = options.progress_interval
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0
    ):
        problems.append(
            _error(
                owner,
                f"{owner}: progress_interval must be a number of seconds >= 0, got {interval!r}.",
                "Leave it unset to use PROGRESS_WRITE_INTERVAL.",
            )
        )
        interval = None
    timeline = options.timeline
    if not isinstance(timeline, bool):
        problems.append(
            _error(
                owner,
                f"{owner}: timeline must be True or False, got {timeline!r}.",
                "Set timeline_enabled = False on the class to switch the timeline off.",
            )
        )
        timeline = bool(timeline)
    for key, path_value in options.formatters.items():
        try:
            found = import_string(path_value) if isinstance(path_value, str) else path_value
        except ImportError as exc:
            found = exc
        if not callable(found):
            problems.append(
                _error(
                    owner,
                    f"{owner}: {key} {path_value!r} is not an importable callable.",
                    "Give the dotted path of a module-level function taking one value.",
                )
            )
    if task_column is None:
        if not any(p.id == "powercrud_async.E022" for p in problems):
            problems.append(
                _error(
                    owner,
                    f"{owner}: field_map maps no column of record model {label} to task_name.",
                    "Map 'task_name' to a unique CharField of the model; it is the only required "
                    "field.",
                    "powercrud_async.E022",
                )
            )
        return None, problems
    auto_now = tuple(
        name
        for name, f in columns.items()
        if getattr(f, "auto_now", False) and name not in effective.values()
    )
    tracking = Tracking(
        model=model,
        label=label,
        db=router.db_for_write(model),
        field_map=effective,
        fields={column: columns[column] for column in set(effective.values())},
        task_column=task_column,
        status_column=effective.get("status"),
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


def resolve(cls: type[ManagerSettings], config: Mapping[str, Any] | None) -> Tracking:
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
        raise InvalidFieldMap(
            " ".join(f"{p.msg} {p.hint}" for p in problems if p.level >= checks.ERROR)
        )
    if problems and key not in _reported:
        _reported.add(key)
        for problem in problems:
            logger.warning("%s (%s) %s", problem.msg, problem.id, problem.hint or "")
    return tracking


def check(
    cls: type[ManagerSettings], config: Mapping[str, Any] | None
) -> list[checks.CheckMessage]:
    """System-check messages for a manager class and config (``powercrud_async.E02x``)."""
    try:
        config = plain_config(config or {})
    except TypeError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Use plain data and dotted paths in the config.",
                obj=cls.__qualname__,
                id="powercrud_async.E024",
            )
        ]
    return analyse(options_for(cls, config))[1]


def clear_cache() -> None:
    with _resolved_lock:
        _resolved.clear()
        _reported.clear()
