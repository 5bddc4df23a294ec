"""One place to read everything that happened: every job's log lines and lifecycle events as two
searchable, filterable, live streams that link to their jobs."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse

from ..models import TaskEvent, TaskLogEntry
from .paging import link, paged
from .records import Moment, job_titles, short, status_of
from .responses import region_or_page
from .timeline import clock_time

LEVELS = [(10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"), (50, "CRITICAL")]
EVENT_TYPES = ["create", "start", "progress", "complete", "fail", "cancel", "cleanup", "release"]
PAGE_SIZE = 50


def _search(qs: QuerySet[Any], q: str, *fields: str) -> QuerySet[Any]:
    for word in q.split():
        match = Q(task_name__icontains=word)
        for name in fields:
            match |= Q(**{f"{name}__icontains": word})
        qs = qs.filter(match)
    return qs


def _titles(view: Any, context: dict[str, Any]) -> dict[str, str]:
    return job_titles(
        view.schema, view.get_queryset(), {row.task_name for row in context["page_obj"].object_list}
    )


def _paging(
    view: Any, page_name: str, qs: QuerySet[Any], query: dict[str, str], number: str
) -> dict[str, Any]:
    base = view.page_url(page_name)
    context = paged(qs, PAGE_SIZE, number, base, query)
    shown = context["page_obj"].number
    context.update(
        self_url=link(base, {**query, "page": shown if shown > 1 else ""}),
        filtered=bool(query),
        stream_url=base,
    )
    return context


def logs_page(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every captured log line, newest first; level means "this level and above"."""
    q = (request.GET.get("q") or "").strip()
    level_name = (request.GET.get("level") or "").strip().upper()
    min_level = dict((name, value) for value, name in LEVELS).get(level_name, 0)
    qs = _search(view.visible_lines(TaskLogEntry.objects.all()), q, "message", "logger_name")
    if min_level:
        qs = qs.filter(level__gte=min_level)
    query = {k: v for k, v in (("q", q), ("level", level_name if min_level else "")) if v}
    context = _paging(
        view, "logs", qs.order_by("-created_at", "-id"), query, request.GET.get("page", "")
    )
    titles = _titles(view, context)
    context.update(
        q=q,
        level=level_name if min_level else "",
        levels=[name for value, name in LEVELS if value > 10],
        rows=[
            {
                "entry": entry,
                "clock": clock_time(entry.created_at),
                "time": Moment.of(entry.created_at, view.now),
                "level_class": entry.level_name.lower(),
                "job_url": view.job_url(entry.task_name),
                "title": titles.get(entry.task_name, ""),
                "first": (entry.message.splitlines() or [""])[0],
                "long": "\n" in entry.message or len(entry.message) > 240,
            }
            for entry in context["page_obj"].object_list
        ],
    )
    return region_or_page(view, context, "pca-stream-results", "logs_results.html")


def events_page(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every lifecycle event of every job, newest first, by type."""
    q = (request.GET.get("q") or "").strip()
    kind = (request.GET.get("event") or "").strip().lower()
    qs = _search(view.visible_lines(TaskEvent.objects.all()), q, "message")
    if kind in EVENT_TYPES:
        qs = qs.filter(event=kind)
    else:
        kind = ""
    query = {k: v for k, v in (("q", q), ("event", kind)) if v}
    context = _paging(
        view, "events", qs.order_by("-created_at", "-id"), query, request.GET.get("page", "")
    )
    titles = _titles(view, context)
    context.update(
        q=q,
        event=kind,
        event_types=EVENT_TYPES,
        rows=[
            {
                "entry": event,
                "clock": clock_time(event.created_at),
                "time": Moment.of(event.created_at, view.now),
                "status": status_of(event.status) if event.status else None,
                "message": short(event.message, 300),
                "job_url": view.job_url(event.task_name),
                "title": titles.get(event.task_name, ""),
            }
            for event in context["page_obj"].object_list
        ],
    )
    return region_or_page(view, context, "pca-stream-results", "events_results.html")
