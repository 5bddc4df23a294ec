"""The record model the dashboard reads, its columns (through the manager's field map), and the
plain view-model (``Job``) templates render, so templates need no custom tags."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils import timezone

from ..statuses import ACTIVE, TaskStatus
from ..tracking.config import DEFAULT_FIELD_MAP, record_columns

#: The tracking name (``field_map`` key) of each logical column the dashboard knows; the
#: dashboard names a column as ``AbstractAsyncTaskRecord`` does (``user_id`` for ``user_pk``).
TRACKING_NAMES: dict[str, str] = {
    ("user_id" if logical == "user_id" else column): logical
    for logical, column in DEFAULT_FIELD_MAP.items()
}
LOGICAL_FIELDS = tuple(TRACKING_NAMES)

#: Other names a ``field_map`` may use for a column (PowerCRUD's payload keys).
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_pk",),
    "args_payload": ("task_args",),
    "kwargs_payload": ("task_kwargs",),
    "affected_objects": ("objects",),
}


def default_manager() -> Any:
    from ..async_manager import AsyncManager

    return AsyncManager.resolve_manager()


def resolve_record_model(
    view_model: type[models.Model] | None = None, configured: str | None = None
) -> type[models.Model]:
    """The view's ``model``, else ``DASHBOARD["RECORD_MODEL"]``, else the default manager's."""
    if view_model is not None:
        return view_model
    if configured:
        try:
            return apps.get_model(configured)
        except (LookupError, ValueError) as exc:
            raise ImproperlyConfigured(
                f'POWERCRUD_SETTINGS["DASHBOARD"]["RECORD_MODEL"] is {configured!r}, which is not an '
                "installed model ('app_label.ModelName')."
            ) from exc
    getter = getattr(default_manager(), "get_record_model", None)
    model = getter() if callable(getter) else None
    if model is None:
        raise ImproperlyConfigured(
            "The task dashboard has no record model: set `model` on your dashboard view, "
            'POWERCRUD_SETTINGS["DASHBOARD"]["RECORD_MODEL"], or point '
            'POWERCRUD_SETTINGS["ASYNC_MANAGER_DEFAULT"] at a ModelTrackingAsyncManager subclass '
            "with a record_model_path."
        )
    return model


def manager_field_map(model: type[models.Model]) -> dict[str, str]:
    """The default manager's field map, if that manager tracks ``model``."""
    manager = default_manager()
    get_model = getattr(manager, "get_record_model", None)
    get_map = getattr(manager, "get_field_map", None)
    if not callable(get_model) or not callable(get_map):
        return {}
    try:
        if get_model() is not model:
            return {}
        return dict(get_map() or {})
    except Exception:  # noqa: BLE001 - a broken map must not take the dashboard down
        return {}


class RecordSchema:
    """Where each logical column lives on a project's record model (``None`` if nowhere)."""

    def __init__(self, model: type[models.Model], field_map: dict[str, str] | None = None):
        self.model = model
        self.names = {f.name for f in model._meta.concrete_fields}
        self.columns: dict[str, str | None] = {}
        field_map = field_map or {}
        placed = record_columns(model)  # where the writer puts each column by default
        self.defaults = {logical: placed.get(TRACKING_NAMES[logical]) for logical in LOGICAL_FIELDS}
        for logical in LOGICAL_FIELDS:
            self.columns[logical] = self._find(logical, field_map)

    def _find(self, logical: str, field_map: dict[str, str]) -> str | None:
        keys = {logical, TRACKING_NAMES[logical], *ALIASES.get(logical, ())}
        for key, value in field_map.items():
            if key in keys and isinstance(value, str) and value in self.names:
                return value
        for key, value in field_map.items():  # a map written the other way round
            if isinstance(value, str) and value in keys and key in self.names:
                return key
        return self.defaults[logical] or (logical if logical in self.names else None)

    @cached_property
    def owner_field(self) -> str | None:
        """Where the launcher's id lives: the user id column, else a relation to the user model.
        The display label never decides ownership."""
        if self.columns.get("user_id"):
            return self.columns["user_id"]
        label = self.columns.get("user_label")
        if label and self.model._meta.get_field(label).is_relation:
            return label
        return None

    def __getitem__(self, logical: str) -> str | None:
        return self.columns.get(logical)

    def value(self, obj: Any, logical: str, default: Any = None) -> Any:
        name = self.columns.get(logical)
        return getattr(obj, name, default) if name else default

    def verbose_name(self, name: str) -> str:
        try:
            found: Any = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return name.replace("_", " ")
        return str(getattr(found, "verbose_name", name.replace("_", " ")))

    @cached_property
    def text_search_fields(self) -> list[str]:
        wanted = ("task_name", "label", "func_path", "user_label", "message", "affected_objects")
        return [self.columns[k] for k in wanted if self.columns.get(k)]  # type: ignore[misc]


_EXC_RE = re.compile(r"^([A-Za-z_][\w.]*)\s*:\s*(.*)$", re.S)


def split_error(text: str) -> tuple[str, str]:
    """``"ValueError: boom"`` -> ``("ValueError", "boom")``; free text -> ``("", text)``."""
    text = (text or "").strip()
    for prefix in ("Failed: ", "Failed:"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    prefix = ""
    if text.startswith("Timed out: "):
        prefix, text = "Timed out: ", text[len("Timed out: ") :]
    first = text.splitlines()[0] if text else ""
    match = _EXC_RE.match(first)
    if match and (match.group(1)[:1].isupper() or "." in match.group(1)):
        return match.group(1), (prefix + match.group(2)).strip()
    return "", (prefix + first).strip()


def short(text: str, limit: int = 140) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def pretty(value: Any) -> str:
    """Readable JSON for results and arguments; strings that hold JSON are parsed first."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(when: datetime | None, now: datetime | None = None) -> str:
    """Compact, one format everywhere: "just now", "42 s ago", "3 min ago", "in 5 min"."""
    if when is None:
        return ""
    now = now or timezone.now()
    delta = (now - when).total_seconds()
    future = delta < 0
    delta = abs(delta)
    if delta < 5:
        return "just now"
    if delta < 60:
        text = f"{delta:.0f} s"
    elif delta < 3570:
        text = f"{round(delta / 60):.0f} min"
    elif delta < 86400 * 2:
        text = f"{round(delta / 3600):.0f} h"
    else:
        text = f"{round(delta / 86400):.0f} d"
    return f"in {text}" if future else f"{text} ago"


def absolute(when: datetime | None) -> str:
    if when is None:
        return ""
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M:%S")  # the zone is said once per page


def iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""


@dataclass(frozen=True, slots=True)
class Moment:
    """A time shown as "3 min ago" with the exact time in its tooltip and ``datetime``."""

    value: datetime | None
    text: str
    exact: str
    iso: str

    @classmethod
    def of(cls, when: datetime | None, now: datetime | None = None) -> Moment:
        return cls(when, relative(when, now), absolute(when), iso(when))

    def __bool__(self) -> bool:
        return self.value is not None


def status_of(raw: Any) -> TaskStatus:
    try:
        return TaskStatus(raw)
    except ValueError:
        return TaskStatus.UNKNOWN


@dataclass(slots=True)
class Job:
    """One record as the templates see it."""

    record: Any
    key: str
    name: str
    func_path: str
    status: TaskStatus
    percent: float | None
    message: str
    error_type: str
    error_message: str
    user: str
    affected: str
    created: Moment
    updated: Moment
    started: Moment
    finished: Moment
    duration: str
    duration_seconds: float | None
    retry_of: str
    cleaned_up: bool | None
    url: str = ""
    stuck: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    #: What the launch site called the job; empty for a launch that gave none.
    label: str = ""

    @property
    def title(self) -> str:
        """What a person reads as the job's name: its label, else its function, else its key."""
        return self.label or self.name or self.key

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_cancel(self) -> bool:
        return self.status in ACTIVE

    @property
    def can_retry(self) -> bool:
        return self.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def can_delete(self) -> bool:
        return self.status not in ACTIVE

    @property
    def status_value(self) -> str:
        return str(self.status.value)

    @property
    def status_label(self) -> str:
        return str(self.status.label)

    @property
    def short_key(self) -> str:
        return self.key if len(self.key) <= 13 else self.key[:8] + "…"

    @property
    def percent_int(self) -> int | None:
        return None if self.percent is None else int(round(self.percent))


def title_of(label: str, func_path: str) -> str:
    """A job's title where only its label and function are at hand (empty if neither is)."""
    return label or func_path.rsplit(".", 1)[-1]


def job_titles(schema: RecordSchema, qs: Any, keys: Any) -> dict[str, str]:
    """``{key: title}`` for the records of ``keys`` in ``qs``, in one query, so a stream of log
    lines or locks can name its jobs the way the job list does."""
    key_field, label_field, func_field = schema["task_name"], schema["label"], schema["func_path"]
    keys = {str(key) for key in keys}
    if not key_field or not keys or not (label_field or func_field):
        return {}
    fields = [name for name in (key_field, label_field, func_field) if name]
    titles: dict[str, str] = {}
    for row in qs.filter(**{f"{key_field}__in": keys}).values(*fields):
        title = title_of(
            str(row.get(label_field) or "") if label_field else "",
            str(row.get(func_field) or "") if func_field else "",
        )
        if title:
            titles[str(row[key_field])] = title
    return titles


def finished_time(schema: RecordSchema, obj: Any) -> datetime | None:
    for logical in ("completed_at", "failed_at", "cancelled_at"):
        when = schema.value(obj, logical)
        if when:
            return when
    return None


def build_job(
    schema: RecordSchema, obj: Any, now: datetime, *, url: str = "", stuck: str = ""
) -> Job:
    status = status_of(schema.value(obj, "status", TaskStatus.UNKNOWN))
    func_path = str(schema.value(obj, "func_path", "") or "")
    message = str(schema.value(obj, "message", "") or "")
    error_type = error_message = ""
    if status == TaskStatus.FAILED:
        error_text = schema.value(obj, "error") or ""
        result = schema.value(obj, "result_payload")
        if not error_text and isinstance(result, dict):
            error_text = str(result.get("error") or "")
        if not error_text and isinstance(result, str):
            error_text = result
        error_type, error_message = split_error(str(error_text or message))
    started = schema.value(obj, "started_at")
    finished = finished_time(schema, obj)
    seconds = schema.value(obj, "duration")
    if seconds is None and started is not None:
        end = finished or (now if status in ACTIVE else None)
        seconds = (end - started).total_seconds() if end else None
    percent = schema.value(obj, "percent")
    if status == TaskStatus.SUCCESS and percent is None:
        percent = 100.0
    key = str(schema.value(obj, "task_name", "") or obj.pk)
    return Job(
        record=obj,
        key=key,
        name=func_path.rsplit(".", 1)[-1] if func_path else "",
        func_path=func_path,
        status=status,
        percent=float(percent) if percent is not None else None,
        message=message,
        error_type=error_type,
        error_message=short(error_message, 160),
        user=str(schema.value(obj, "user_label", "") or ""),
        affected=str(schema.value(obj, "affected_objects", "") or ""),
        created=Moment.of(schema.value(obj, "created_at"), now),
        updated=Moment.of(schema.value(obj, "updated_at"), now),
        started=Moment.of(started, now),
        finished=Moment.of(finished, now),
        duration=human_duration(seconds),
        duration_seconds=seconds,
        retry_of=str(schema.value(obj, "retry_of", "") or ""),
        cleaned_up=schema.value(obj, "cleaned_up"),
        url=url,
        stuck=stuck,
        label=str(schema.value(obj, "label", "") or ""),
    )
