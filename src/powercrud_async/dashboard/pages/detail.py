"""One job's page: its facts, progress, timeline, log lines, error, payloads and locks.

A job is shown from its record, or from the registry alone to those who see everything when
the record is gone; with neither (or after a recorded deletion) the page says it is gone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.db import models
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django_htmx.http import push_url

from ... import broker
from ... import progress as progress_cache
from ...models import TaskEvent, TaskLogEntry
from ...redaction import redact
from ...statuses import ACTIVE, TaskStatus
from ...stores import TaskInfo, get_store
from ...visibility import can_view
from ..deleted import deletion_of
from ..liveness import stuck_tasks
from ..lock_release import applicable_actions
from ..records import Job, Moment, human_duration, pretty, split_error, status_of
from ..responses import TEMPLATES
from ..streams import LEVELS
from ..summaries import lock_groups, natural_key
from ..timeline import build as build_timeline
from ..timeline import clock_time, last_percent

#: Record fields the detail page shows in their own sections (so each is shown once).
SECTION_FIELDS = ("result_payload", "args_payload", "kwargs_payload", "traceback", "error")
TRACEBACK = "Traceback (most recent call last)"


class JobGone(Http404):
    """No record of this job is left to show (deleted, purged, or never visible to this user)."""


def registry_job(view: Any, info: TaskInfo) -> Job:
    """A job known only to the registry (its record was deleted, or none is kept)."""
    status = status_of(info.status)
    finished = info.finished_at
    seconds = (finished - info.started_at).total_seconds() if finished and info.started_at else None
    error_type, error_message = (
        split_error(info.reason) if status == TaskStatus.FAILED else ("", "")
    )
    return Job(
        record=None,
        key=info.task_name,
        name=info.func_path.rsplit(".", 1)[-1],
        func_path=info.func_path,
        status=status,
        percent=None,
        message=info.reason,
        error_type=error_type,
        error_message=error_message,
        user=info.user_id or "",
        affected="",
        created=Moment.of(info.created_at, view.now),
        updated=Moment.of(None),
        started=Moment.of(info.started_at, view.now),
        finished=Moment.of(finished, view.now),
        duration=human_duration(seconds),
        duration_seconds=seconds,
        retry_of=info.retry_of,
        cleaned_up=None,
        url=view.job_url(info.task_name),
        label=info.label,
    )


def progress_dict(view: Any, job: Job) -> dict[str, Any]:
    """The progress bar's first state: the record, or the fresher cache when the viewer may see it."""
    snapshot = progress_cache.read(job.key)
    if snapshot is not None and not can_view(view.request, snapshot.user_id, job.key):
        snapshot = None  # the same owner rule as the progress endpoint
    status, message, percent = job.status, job.message, job.percent
    if snapshot is not None:
        cached = status_of(snapshot.status)
        if cached.rank >= status.rank:
            status = cached
            message = snapshot.message or message
            percent = snapshot.percent if snapshot.percent is not None else percent
    if status == TaskStatus.SUCCESS and percent is None:
        percent = 100.0
    if status == TaskStatus.FAILED:
        message = "Failed: the error is below."  # said once, in the error panel
    return {
        "status": status.value,
        "status_label": str(status.label),
        "percent": percent,
        "message": message,
        "terminal": status.is_terminal,
    }


def record_value(view: Any, job: Job, name: str, default: Any = None) -> Any:
    return view.schema.value(job.record, name, default) if job.record is not None else default


def find_traceback(view: Any, job: Job, events: list[Any]) -> str:
    """The record's traceback, else one in its result, its events or django-q2's task."""
    text = record_value(view, job, "traceback", "")
    result = record_value(view, job, "result_payload")
    if not text and isinstance(result, dict):
        text = result.get("traceback") or ""
    if not text and isinstance(result, str) and TRACEBACK in result:
        text = result
    if not text:
        for event in reversed(events):
            if TRACEBACK in (event.message or ""):
                text = event.message
                break
    if not text and job.status == TaskStatus.FAILED:
        try:
            found = (
                broker.task_model()
                .objects.filter(name=job.key, success=False)
                .values_list("result", flat=True)
                .first()
            )
        except Exception:  # noqa: BLE001 - django-q2's table is a fallback only
            found = None
        if isinstance(found, str) and TRACEBACK in found:
            text = found[found.index(TRACEBACK) :]
    return str(text or "")


def fields_rows(view: Any, obj: Any) -> list[tuple[str, str, bool]]:
    """(label, text, shown as a block) for the record fields not shown in their own section."""
    if obj is None:
        return []
    schema, model = view.schema, view.record_model
    if view.detail_fields:
        names = [f for f in view.detail_fields if f in schema.names]
    else:
        names = [f.name for f in model._meta.concrete_fields]
    skip = {schema[name] for name in SECTION_FIELDS if schema[name]}
    rows = []
    for name in names:
        if name in skip:
            continue
        value = getattr(obj, name, None)
        if isinstance(model._meta.get_field(name), models.JSONField):
            text, block = pretty(value), True
        elif value is None or value == "":
            text, block = "—", False
        elif hasattr(value, "isoformat"):
            moment = Moment.of(value, view.now)
            text, block = f"{moment.exact} ({moment.text})", False
        else:
            text = str(value)
            block = "\n" in text or len(text) > 120
        rows.append((schema.verbose_name(name).capitalize(), text, block))
    return rows


def the_job(view: Any, key: str, info: TaskInfo | None) -> Job:
    """The job from its record (registry status when the record lags), or from the registry."""
    record = view.get_record(key)
    if record is None:
        if info is None or not view.sees_everything or (not info.is_active and deletion_of(key)):
            raise JobGone(key)
        job: Job = view.job_from_info(info)
    else:
        job = view.build_job(record)
    if info is not None and not info.is_active and job.status in ACTIVE:
        job.status = status_of(info.status)  # the record lags the registry: trust the registry
    stuck = stuck_tasks(view.now, [info]) if info is not None and info.is_active else {}
    if key in stuck:
        job.stuck = stuck[key].reason
    return job


def log_section(view: Any, key: str) -> dict[str, Any]:
    """The job's log lines at or above the chosen level, and how many there are at each level."""
    level = view.request.GET.get("level", "")
    try:
        min_level = (
            int(level) if level.isdigit() else {n: v for v, n in LEVELS}.get(level.upper(), 0)
        )
    except ValueError:  # digits int() does not take, such as "²"
        min_level = 0
    logs_qs = TaskLogEntry.objects.filter(task_name=key)
    counts = dict(logs_qs.values_list("level").annotate(n=Count("pk")).order_by())
    logs = list(logs_qs.filter(level__gte=min_level).order_by("id")[:1000]) if counts else []
    names = dict(LEVELS)
    return {
        "logs": [
            {
                "level": entry.level_name,
                "level_class": entry.level_name.lower(),
                "logger": entry.logger_name,
                "time": Moment.of(entry.created_at, view.now),
                "clock": clock_time(entry.created_at),
                "first": entry.message.splitlines()[0] if entry.message else "",
                "message": entry.message,
                "long": "\n" in entry.message or len(entry.message) > 240,
            }
            for entry in logs
        ],
        "log_levels": [
            {
                "value": v,
                "name": n,
                "count": sum(c for lv, c in counts.items() if lv >= v),
                "selected": v == min_level,
            }
            for v, n in LEVELS
        ],
        "log_total": sum(counts.values()),
        "min_level": min_level,
        "body_url": view.job_url(key)
        + (f"?level={names[min_level]}" if min_level in names else ""),
    }


def error_section(view: Any, job: Job, events: list[Any]) -> dict[str, Any]:
    """Traceback, full error, result and arguments (redacted), each shown once."""
    failed = job.status == TaskStatus.FAILED
    result = record_value(view, job, "result_payload")
    full_error = ""
    if failed:
        error_text = record_value(view, job, "error", "") or ""
        if not error_text and isinstance(result, dict):
            error_text = result.get("error") or ""
        if not error_text and isinstance(result, str):
            error_text = result
        full_error = split_error(str(error_text or job.message))[1]
    show_result = not (
        failed and (isinstance(result, str) or (isinstance(result, dict) and "traceback" in result))
    )
    return {
        "traceback": find_traceback(view, job, events) if failed else "",
        "full_error": full_error,
        "result": pretty(result) if show_result else "",
        "args": pretty(redact(record_value(view, job, "args_payload")))
        if job.record is not None
        else "",
        "kwargs": pretty(redact(record_value(view, job, "kwargs_payload")))
        if job.record is not None
        else "",
    }


def fact(
    label: str, value: Any = "", *, moment: Moment | None = None, mono: bool = False
) -> dict[str, Any]:
    return {
        "label": label,
        "value": value,
        "moment": moment or None,
        "is_time": moment is not None,
        "mono": mono,
    }


def facts(view: Any, job: Job, info: TaskInfo | None) -> list[dict[str, Any]]:
    """The job's key facts, with the registry's attempts, heartbeat, cancel and group when known."""
    found = [
        fact("Function", job.func_path or "—", mono=True),
        fact("Launched", moment=job.created),
        fact("Started", moment=job.started),
        fact("Finished", moment=job.finished),
        fact("Duration", job.duration or ("running" if job.is_active else "—")),
        fact("User", job.user or "—"),
    ]
    if info is not None:
        found.append(fact("Attempts", str(info.attempts)))
        if info.is_active:
            found.append(fact("Heartbeat", moment=Moment.of(info.heartbeat_at, view.now)))
        if info.cancel_requested and info.is_active:
            found.append(fact("Cancel", "requested; it stops at its next progress update"))
        if info.group:
            found.append(fact("Group", info.group))
    if job.cleaned_up is not None:
        found.append(fact("Cleaned up", "yes" if job.cleaned_up else "no"))
    return found


def retries(view: Any, key: str) -> list[dict[str, str]]:
    """The jobs launched as retries of this one."""
    key_field, retry_field = view.schema["task_name"], view.schema["retry_of"]
    if not (key_field and retry_field):
        return []
    children = (
        view.get_queryset().filter(**{retry_field: key}).values_list(key_field, flat=True)[:20]
    )
    return [{"key": child, "url": view.job_url(child)} for child in children]


def context(view: Any, key: str) -> dict[str, Any]:
    """Everything the detail page shows; raises ``JobGone`` when there is nothing to show."""
    info = get_store().get(key)
    job = the_job(view, key, info)
    events = list(TaskEvent.objects.filter(task_name=key).order_by("id")[:500])
    timeline = build_timeline(events, view.now)
    for entry in timeline:
        if entry["event"] == "fail" and job.error_type:
            entry["message"] = f"{job.error_type} (see Error)"  # the text itself is shown once
    if job.percent is None and job.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        job.percent = last_percent(events)  # keep the percent it reached
    held = get_store().locks(task_name=key)
    conflict_ids = info.conflict_ids if info is not None else {}
    return {
        "job": job,
        "info": info,
        "task": view.progress_dict(job),
        "progress_url": view.page_url("progress") + "?" + urlencode({"task_name": key}),
        "detail_url": view.job_url(key),
        "self_url": view.job_url(key),
        "events": timeline,
        **log_section(view, key),
        "locks": [
            {
                "model": lock.model_label,
                "pk": lock.object_pk,
                "acquired": Moment.of(lock.acquired_at, view.now),
                "expires": Moment.of(lock.expires_at, view.now),
            }
            for lock in sorted(
                held, key=lambda lock: (lock.model_label, natural_key(lock.object_pk))
            )
        ],
        "job_actions": applicable_actions(job, bool(held)),
        "lock_groups": lock_groups((lock.model_label, lock.object_pk) for lock in held),
        "retried_as": retries(view, key),
        "retry_of_url": view.job_url(job.retry_of) if job.retry_of else "",
        **error_section(view, job, events),
        "facts": facts(view, job, info),
        "fields_rows": view.detail_fields_rows(job.record),
        "affected": job.affected,
        "conflict_ids": sorted(
            (label, ", ".join(map(str, pks))) for label, pks in (conflict_ids or {}).items()
        ),
    }


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The job page, its live body, its log panel, its dialog, or the "gone" page (404)."""
    key = str(kwargs.get(view.lookup_url_kwarg, ""))
    try:
        ctx = view.detail_context(key)
    except JobGone:
        entry = deletion_of(key) if view.sees_everything else None
        return view.render(
            {
                "key": key,
                "deletion": entry,
                "deleted_at": Moment.of(entry.created_at, view.now) if entry else None,
            },
            TEMPLATES + "gone.html",
            status=404,
        )
    partials = {
        "pca-detail-body": "detail_body.html",
        "pca-logs": "detail_logs.html",
        "pca-modal-body": "detail_modal.html",
    }
    partial = partials.get(view.htmx_target())
    if partial is None:
        return view.render(ctx)
    response: HttpResponse = view.render(ctx, TEMPLATES + "partials/" + partial)
    if partial == "detail_logs.html":
        push_url(response, ctx["body_url"])
    return response
