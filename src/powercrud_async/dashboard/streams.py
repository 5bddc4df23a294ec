"""One place to read everything that happened: every job's log lines and lifecycle events as two
searchable, filterable, live streams that link to their jobs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django_htmx.http import push_url

from ..models import TaskEvent, TaskLogEntry
from .records import Moment, job_titles, short, status_of
from .timeline import clock_time

LEVELS = [(10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"), (50, "CRITICAL")]
EVENT_TYPES = ["create", "start", "progress", "complete", "fail", "cancel", "cleanup", "release"]
PAGE_SIZE = 50


def _visible(view: Any, qs: QuerySet[Any]) -> QuerySet[Any]:
    """Only lines of jobs this user may see (all of them for staff who see everything)."""
    if view.sees_everything:
        return qs
    key_field = view.schema["task_name"]
    if not key_field:
        return qs.none()
    return qs.filter(task_name__in=view.get_queryset().values(key_field))


def _search(qs: QuerySet[Any], q: str, *fields: str) -> QuerySet[Any]:
    for word in q.split():
        match = Q(task_name__icontains=word)
        for name in fields:
            match |= Q(**{f"{name}__icontains": word})
        qs = qs.filter(match)
    return qs


def _respond(view: Any, request: HttpRequest, context: dict[str, Any], page: str, region: str) -> HttpResponse:
    if view.htmx_target() == region:
        response = view.render(context, f"powercrud_async/dashboard/partials/{page}_results.html")
        if not view.polled(region):
            push_url(response, context["self_url"])
        return response
    return view.render(context)


def _titles(view: Any, context: dict[str, Any]) -> dict[str, str]:
    return job_titles(view.schema, view.get_queryset(), {row.task_name for row in context["page_obj"].object_list})


def _paging(view: Any, page_name: str, qs: QuerySet[Any], query: dict[str, str], number: str) -> dict[str, Any]:
    paginator = Paginator(qs, PAGE_SIZE)
    page = paginator.get_page(number or 1)
    base = view.page_url(page_name)

    def url(**extra: Any) -> str:
        pairs = {**query, **extra}
        return base + ("?" + urlencode(pairs) if pairs else "")

    return {
        "page_obj": page, "paginator": paginator, "self_url": url(**({"page": page.number} if page.number > 1 else {})),
        "prev_url": url(page=page.number - 1) if page.has_previous() else "",
        "next_url": url(page=page.number + 1) if page.has_next() else "",
        "filtered": bool(query), "stream_url": base,
    }


def logs_page(view: Any, request: HttpRequest) -> HttpResponse:
    """Every captured log line, newest first; level means "this level and above"."""
    q = (request.GET.get("q") or "").strip()
    level_name = (request.GET.get("level") or "").strip().upper()
    min_level = dict((name, value) for value, name in LEVELS).get(level_name, 0)
    qs = _search(_visible(view, TaskLogEntry.objects.all()), q, "message", "logger_name")
    if min_level:
        qs = qs.filter(level__gte=min_level)
    query = {k: v for k, v in (("q", q), ("level", level_name if min_level else "")) if v}
    context = _paging(view, "logs", qs.order_by("-created_at", "-id"), query, request.GET.get("page", ""))
    titles = _titles(view, context)
    context.update(
        q=q, level=level_name if min_level else "",
        levels=[name for value, name in LEVELS if value > 10],
        rows=[{
            "entry": entry, "clock": clock_time(entry.created_at), "time": Moment.of(entry.created_at, view.now),
            "level_class": entry.level_name.lower(), "job_url": view.job_url(entry.task_name),
            "title": titles.get(entry.task_name, ""),
            "first": (entry.message.splitlines() or [""])[0],
            "long": "\n" in entry.message or len(entry.message) > 240,
        } for entry in context["page_obj"].object_list],
    )
    return _respond(view, request, context, "logs", "pca-stream-results")


def events_page(view: Any, request: HttpRequest) -> HttpResponse:
    """Every lifecycle event of every job, newest first, by type."""
    q = (request.GET.get("q") or "").strip()
    kind = (request.GET.get("event") or "").strip().lower()
    qs = _search(_visible(view, TaskEvent.objects.all()), q, "message")
    if kind in EVENT_TYPES:
        qs = qs.filter(event=kind)
    else:
        kind = ""
    query = {k: v for k, v in (("q", q), ("event", kind)) if v}
    context = _paging(view, "events", qs.order_by("-created_at", "-id"), query, request.GET.get("page", ""))
    titles = _titles(view, context)
    context.update(
        q=q, event=kind, event_types=EVENT_TYPES,
        rows=[{
            "entry": event, "clock": clock_time(event.created_at), "time": Moment.of(event.created_at, view.now),
            "status": status_of(event.status) if event.status else None, "message": short(event.message, 300),
            "job_url": view.job_url(event.task_name), "title": titles.get(event.task_name, ""),
        } for event in context["page_obj"].object_list],
    )
    return _respond(view, request, context, "events", "pca-stream-results")
