"""The dashboard views: one neapolitan ``CRUDView`` mixin serving every page.

``TaskDashboardMixin`` takes the attributes of seed 000's ``PowerCRUDMixin`` (``model``,
``namespace``, ``use_htmx``, ``use_modal``, ``fields``, ``detail_fields``) and adds the overview,
locks, audit, export, progress and action pages, so a project's subclass is a whole dashboard and
``get_urls()`` mounts it. neapolitan's ``Role.reverse`` ignores namespaces, so every URL here is
reversed through ``page_url``, which honours the namespace the request came in through.
"""

from __future__ import annotations

import builtins
import csv
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages import constants as message_levels
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.decorators import classonlymethod
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect, push_url, trigger_client_event
from neapolitan.views import CRUDView, Role

from .. import progress as progress_cache
from ..lifecycle.submit import TASK_KEY_MAX_LENGTH
from ..models import AuditEntry, TaskEvent, TaskLogEntry
from ..progress_view import ProgressView
from ..redaction import redact
from ..statuses import ACTIVE, TaskStatus
from ..stores import TaskInfo, get_store
from ..visibility import can_view
from . import access, actions, audit, streams
from .config import ALL_COLUMNS, dashboard_config
from .deleted import deletion_of
from .export import EXPORT_FIELDS, NothingToExport, export_columns, masked_rows
from .liveness import stuck_tasks
from .lock_release import applicable_actions, release_confirmation
from .overview import build_overview
from .query import (
    COLUMN_FIELDS,
    FIELD_COLUMNS,
    STATUS_SLUGS,
    WINDOW_LABELS,
    ListState,
    attention_q,
    chip_counts,
    filter_records,
    order_records,
    status_filter,
)
from .records import (
    Job,
    Moment,
    RecordSchema,
    build_job,
    human_duration,
    job_titles,
    manager_field_map,
    pretty,
    resolve_record_model,
    short,
    split_error,
    status_of,
    title_of,
)
from .schedules import SchedulePages, schedule_summary
from .summaries import lock_groups, natural_key
from .timeline import build as build_timeline
from .timeline import clock_time, last_percent
from .workers import workers_page

__all__ = ["TaskDashboardMixin", "TaskDashboardView"]

logger = logging.getLogger("powercrud_async.dashboard")

LOG_LEVELS = [(10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"), (50, "CRITICAL")]
CHIP_LABELS = {"queued": "Queued", "running": "Running", "failed": "Failed", "cancelled": "Cancelled",
               "succeeded": "Succeeded", "attention": "Needs attention"}
COLUMN_LABELS = {"task": "Job", "status": "Status", "progress": "Progress", "user": "User",
                 "created": "Launched", "updated": "Updated", "duration": "Duration",
                 "affected": "Affected objects", "message": "Message"}
#: Record fields the detail page shows in their own sections (so each is shown once).
SECTION_FIELDS = ("result_payload", "args_payload", "kwargs_payload", "traceback", "error")
MAX_BULK = 500
SCHEDULE_ROUTES = {"schedules": "schedules/", "schedule-action": "schedules/actions/",
                   "schedule-new": "schedules/new/", "schedule-edit": "schedules/<int:schedule_id>/edit/"}


@dataclass(slots=True)
class Column:
    key: str
    label: str
    kind: str
    field: str | None
    sort_url: str = ""
    sort_state: str = ""  # "ascending" / "descending" / ""


@dataclass(slots=True)
class Cell:
    kind: str
    value: str = ""
    label: str = ""


class JobGone(Http404):
    """No record of this job is left to show (deleted, purged, or never visible to this user)."""


class TaskDashboardMixin(SchedulePages):
    """Turns a neapolitan ``CRUDView`` over a task-record model into the whole dashboard."""

    # -- seed 000's attributes ---------------------------------------------------------------------
    model: type[models.Model] | None = None
    namespace: str | None = None
    use_htmx: bool = True
    use_modal: bool = False
    fields: list[str] | None = None
    detail_fields: list[str] | None = None

    # -- ours ----------------------------------------------------------------------------------
    #: Path before every page; ``None`` means ``"<url_base>/"`` (neapolitan's layout).
    url_prefix: str | None = None
    routes: dict[str, str] = {
        "list": "",
        "overview": "overview/",
        "locks": "locks/",
        "audit": "audit/",
        "logs": "logs/",
        "events": "events/",
        "workers": "workers/",
        "action": "actions/",
        "export": "export/",
        "progress": "progress/",
        "detail": "job/<path:task_key>/",
        **SCHEDULE_ROUTES,
    }
    page_handlers: dict[str, dict[str, str]] = {
        "overview": {"get": "overview"},
        "list": {"get": "list"},
        "detail": {"get": "detail"},
        "locks": {"get": "locks"},
        "audit": {"get": "audit"},
        "logs": {"get": "logs"},
        "events": {"get": "events"},
        "workers": {"get": "workers"},
        "action": {"post": "perform_action"},
        "export": {"get": "export"},
        "progress": {"get": "progress"},
        "schedules": {"get": "schedules"},
        "schedule-action": {"post": "schedule_action"},
        "schedule-new": {"get": "schedule_new", "post": "schedule_new"},
        "schedule-edit": {"get": "schedule_edit", "post": "schedule_edit"},
    }
    lookup_url_kwarg = "task_key"
    dashboard_title: str | None = None
    page: str = ""
    # Provided by Django's View and neapolitan's CRUDView (declared for type checkers).
    request: HttpRequest
    role: Role | None
    url_base: str
    template_name: str | None

    # -- URLs ------------------------------------------------------------------------------------
    @classonlymethod
    def get_urls(cls, roles: Any = None) -> list[URLPattern]:  # type: ignore[override]
        """Every dashboard page, named ``<url_base>-<page>`` (``roles`` is accepted and ignored)."""
        prefix = cls.url_prefix if cls.url_prefix is not None else f"{cls.url_base}/"
        return [
            path(prefix + route, cls.page_view(page), name=f"{cls.url_base}-{page}")
            for page, route in cls.routes.items()
        ]

    @classonlymethod
    def page_view(cls, page: str) -> Any:
        role = {"list": Role.LIST, "detail": Role.DETAIL}.get(page)

        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            self = cls()
            self.role = role
            self.page = page
            self.setup(request, *args, **kwargs)
            return self.dispatch(request, *args, **kwargs)

        view.view_class = cls  # type: ignore[attr-defined]
        view.view_initkwargs = {"page": page}  # type: ignore[attr-defined]
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        return view

    def current_namespace(self) -> str:
        match = getattr(self.request, "resolver_match", None)
        if match is not None and match.namespace:
            return str(match.namespace)
        return self.namespace or ""

    def page_url(self, page: str, **kwargs: Any) -> str:
        namespace = self.current_namespace()
        name = f"{self.url_base}-{page}"  # type: ignore[attr-defined]
        return reverse(f"{namespace}:{name}" if namespace else name, kwargs=kwargs or None,
                       current_app=namespace or None)

    def job_url(self, key: str) -> str:
        return self.page_url("detail", task_key=key)

    # -- set-up and access -----------------------------------------------------------------------
    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)  # type: ignore[misc]
        self.config = dashboard_config()
        self.now = timezone.now()

    @cached_property
    def record_model(self) -> type[models.Model]:
        return resolve_record_model(self.model, self.config["RECORD_MODEL"])

    @cached_property
    def schema(self) -> RecordSchema:
        return RecordSchema(self.record_model, manager_field_map(self.record_model))

    @cached_property
    def sees_everything(self) -> bool:
        return access.sees_everything(self.request, self.config["OWN_TASKS_ONLY"])

    @cached_property
    def can_act(self) -> bool:
        return access.check(self.config["ACTION_ACCESS"], self.request)

    def has_view_access(self) -> bool:
        return access.check(self.config["VIEW_ACCESS"], self.request)

    def deny(self, request: HttpRequest) -> HttpResponse | None:
        """Anonymous: the login page; signed in without access: 403. Never any data."""
        if not access.is_authenticated(request):
            if getattr(request, "htmx", False):
                response = HttpResponse("Sign in to see the task dashboard.", status=401)
                response["HX-Redirect"] = redirect_to_login(request.get_full_path())["Location"]
                return response
            return redirect_to_login(request.get_full_path())
        if not self.has_view_access():
            raise PermissionDenied("You may not see the task dashboard.")
        return None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        page = self.page or {Role.LIST: "list", Role.DETAIL: "detail"}.get(getattr(self, "role", None), "")
        self.page = page
        handlers = self.page_handlers.get(page, {})
        method = request.method.lower() if request.method else "get"
        if method == "head" and "get" in handlers:
            method = "get"
        if method not in handlers:
            return HttpResponseNotAllowed([m.upper() for m in handlers])
        denied = self.deny(request)
        if denied is not None:
            return denied
        response: HttpResponseBase = getattr(self, handlers[method])(request, *args, **kwargs)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        if page != "export":
            add_never_cache_headers(response)
        return response

    # -- records ---------------------------------------------------------------------------------
    def get_queryset(self) -> QuerySet[Any]:
        qs = self.record_model._default_manager.all()
        if not self.sees_everything:
            qs = qs.filter(access.own_filter(self.request, self.schema.owner_field))
        return qs

    def get_record(self, key: str) -> Any:
        key_field = self.schema["task_name"]
        if key_field is None:
            return self.get_queryset().filter(pk=key).first() if key.isdigit() else None
        return self.get_queryset().filter(**{key_field: key}).first()

    def build_job(self, obj: Any, stuck: str = "") -> Job:
        job = build_job(self.schema, obj, self.now, stuck=stuck)
        job.url = self.job_url(job.key)
        return job

    def job_from_info(self, info: TaskInfo) -> Job:
        """A job known only to the registry (its record was deleted, or none is kept)."""
        status = status_of(info.status)
        finished = info.finished_at
        seconds = (finished - info.started_at).total_seconds() if finished and info.started_at else None
        error_type, error_message = split_error(info.reason) if status == TaskStatus.FAILED else ("", "")
        return Job(
            record=None, key=info.task_name, name=info.func_path.rsplit(".", 1)[-1],
            func_path=info.func_path, status=status, percent=None, message=info.reason,
            error_type=error_type, error_message=error_message, user=info.user_id or "",
            affected="", created=Moment.of(info.created_at, self.now), updated=Moment.of(None),
            started=Moment.of(info.started_at, self.now), finished=Moment.of(finished, self.now),
            duration=human_duration(seconds), duration_seconds=seconds, retry_of=info.retry_of,
            cleaned_up=None, url=self.job_url(info.task_name), label=info.label,
        )

    # -- rendering -------------------------------------------------------------------------------
    def get_template_names(self) -> list[str]:
        if self.template_name is not None:  # type: ignore[attr-defined]
            return [self.template_name]  # type: ignore[attr-defined]
        return [f"powercrud_async/dashboard/{self.page}.html"]

    def title(self) -> str:
        return self.dashboard_title or self.config["TITLE"]

    def base_context(self) -> dict[str, Any]:
        nav = [
            ("overview", "Overview"),
            ("list", "Jobs"),
            ("schedules", "Schedules"),
            ("locks", "Locks"),
            ("workers", "Workers"),
            ("logs", "Logs"),
            ("events", "Events"),
            ("audit", "Audit trail"),
        ]
        return {
            "view": self,
            "page": self.page,
            "title": self.title(),
            "nav": [{"page": p, "label": label, "url": self.page_url(p),
                     "current": p == self.page or (p == "schedules" and self.page.startswith("schedule"))}
                    for p, label in nav if p in self.routes],
            "use_htmx": self.use_htmx,
            "use_modal": self.use_modal,
            "refresh_interval": self.config["REFRESH_INTERVAL"],
            "refresh_ms": int(float(self.config["REFRESH_INTERVAL"]) * 1000),
            "progress_interval": self.config["PROGRESS_INTERVAL"],
            "can_act": self.can_act,
            "sees_everything": self.sees_everything,
            "timezone_name": timezone.get_current_timezone_name(),
            "now": self.now,
            "rendered_at": int(self.now.timestamp() * 1000),
            "action_url": self.page_url("action"),
            "list_url": self.page_url("list"),
            "overview_url": self.page_url("overview"),
            "locks_url": self.page_url("locks"),
            "audit_url": self.page_url("audit"),
            "window_hours": self.config["RECENT_WINDOW_HOURS"],
            "actions": actions.ACTIONS,
        }

    def render(self, context: dict[str, Any], template: str | None = None, status: int = 200) -> HttpResponse:
        full = {**self.base_context(), **context}
        names = [template] if template else self.get_template_names()
        return TemplateResponse(self.request, names, full, status=status)

    def htmx_target(self) -> str:
        htmx = getattr(self.request, "htmx", None)
        if not htmx or htmx.history_restore_request:
            return ""
        return str(htmx.target or "")

    def polled(self, region: str) -> bool:
        """Was this request the region refreshing itself (not a navigation)?"""
        htmx = getattr(self.request, "htmx", None)
        return bool(htmx and htmx.trigger == region)

    # -- overview --------------------------------------------------------------------------------
    def overview(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        data = build_overview(self.get_queryset(), self.schema, self.now,
                              window_hours=self.config["RECENT_WINDOW_HOURS"], job_url=self.job_url,
                              everything=self.sees_everything,
                              stuck_after=self.config["STUCK_QUEUE_AFTER"])
        hours = self.config["RECENT_WINDOW_HOURS"]
        window = "24h" if hours == 24 else ""
        lst = self.page_url("list")
        links = {
            "failed": f"{lst}?status=failed" + (f"&window={window}" if window else ""),
            "attention": f"{lst}?status=attention",
            "running": f"{lst}?status=running",
            "queued": f"{lst}?status=queued",
            "succeeded": f"{lst}?status=succeeded" + (f"&window={window}" if window else ""),
            "cancelled": f"{lst}?status=cancelled" + (f"&window={window}" if window else ""),
        }
        context = {"overview": data, "links": links, "region_url": request.get_full_path(),
                   "sees_everything": self.sees_everything}
        if "schedules" in self.routes:
            context["schedule_summary"] = schedule_summary(data.healthy_clusters, self.now, self.job_url,
                                                           self.schedule_edit_url)
            context["schedules_url"] = self.page_url("schedules")
        if self.htmx_target() == "pca-overview":
            return self.render(context, "powercrud_async/dashboard/partials/overview_body.html")
        return self.render(context)

    # -- list ------------------------------------------------------------------------------------
    def get_columns(self) -> list[Column]:
        keys: list[str]
        if self.fields:
            keys = [FIELD_COLUMNS.get(f, f) for f in self.fields]
        else:
            keys = list(self.config["COLUMNS"])
        columns = []
        for key in dict.fromkeys(keys):
            if key in ALL_COLUMNS:
                logical = COLUMN_FIELDS.get(key)
                field_name = self.schema[logical] if logical else None
                if key not in ("task", "progress") and field_name is None:
                    continue  # this record model does not keep it
                if key == "progress" and not self.schema["status"]:
                    continue
                columns.append(Column(key, COLUMN_LABELS[key], key, field_name))
            elif key in self.schema.names:
                columns.append(Column(key, self.schema.verbose_name(key).capitalize(), "field", key))
            else:
                raise ImproperlyConfigured(
                    f"Dashboard column {key!r} is neither one of {', '.join(ALL_COLUMNS)} nor a field of "
                    f"{self.record_model._meta.label}."
                )
        if not any(c.kind == "task" for c in columns):
            columns.insert(0, Column("task", "Job", "task", self.schema["task_name"]))
        return columns

    def list_state(self, columns: list[Column], query: QueryDict | None = None) -> ListState:
        sortable = {c.key for c in columns if c.field}
        default_sort = "-created" if "created" in sortable else (
            "-updated" if "updated" in sortable else "")
        if not default_sort and columns and columns[0].field:
            default_sort = f"-{columns[0].key}"
        sizes = list(self.config["PAGE_SIZES"])
        default_size = getattr(self, "paginate_by", None) or self.config["PAGE_SIZE"]
        if default_size not in sizes:
            sizes = sorted({*sizes, default_size})
        return ListState.from_query(self.request.GET if query is None else query, sortable=sortable, page_sizes=sizes,
                                    default_per_page=default_size, default_sort=default_sort)

    def list_context(self) -> dict[str, Any]:
        columns = self.get_columns()
        state = self.list_state(columns)
        schema = self.schema
        stuck = stuck_tasks(self.now)
        since = self.now - timedelta(hours=self.config["RECENT_WINDOW_HOURS"])
        attention = attention_q(schema, set(stuck), since)
        base = filter_records(self.get_queryset(), state, schema, now=self.now)
        counts = chip_counts(base, schema, attention)
        filtered = base.filter(status_filter(state, schema, attention))
        sort_fields = {c.key: c.field for c in columns if c.field}
        ordered = order_records(filtered, state, sort_fields)
        paginator = Paginator(ordered, state.per_page)
        paginator.__dict__["count"] = counts[state.status or "all"]  # the aggregate already counted
        page = paginator.get_page(state.page)
        if page.number != state.page:
            state = ListState(**{**state.__dict__, "page": page.number})
        list_url = self.page_url("list")
        jobs = []
        lock_owners = get_store().lock_owners()
        for obj in page.object_list:
            key = str(schema.value(obj, "task_name", "") or obj.pk)
            job = self.build_job(obj, stuck=stuck[key].reason if key in stuck else "")
            cells = []
            for column in columns:
                if column.kind == "field":
                    value = getattr(obj, column.key, "")
                    cells.append(Cell("field", "" if value is None else short(str(value), 120), column.label))
                else:
                    cells.append(Cell(column.kind))
            job.extra = {"cells": cells, "actions": applicable_actions(job, job.key in lock_owners)}  # type: ignore[dict-item]
            jobs.append(job)
        current = state.effective_sort
        for column in columns:
            if not column.field:
                continue
            if current.lstrip("-") == column.key:
                column.sort_state = "descending" if current.startswith("-") else "ascending"
                new = column.key if current.startswith("-") else f"-{column.key}"
            else:
                new = f"-{column.key}" if column.key in ("created", "updated", "duration", "progress") else column.key
            column.sort_url = list_url + state.query_string(sort=new, page=1)
        chips = [{"slug": "", "label": "All", "count": counts["all"], "active": not state.status,
                  "url": list_url + state.query_string(status="", page=1)}]
        for slug in STATUS_SLUGS:
            chips.append({"slug": slug, "label": CHIP_LABELS[slug], "count": counts.get(slug, 0),
                          "active": state.status == slug,
                          "url": list_url + state.query_string(status=slug, page=1)})
        users: list[str] = []
        if schema["user_label"]:
            users = list(
                self.get_queryset().exclude(**{schema["user_label"]: ""})
                .order_by(schema["user_label"]).values_list(schema["user_label"], flat=True).distinct()[:50]
            )
        pages = []
        if paginator.num_pages > 1:
            for number in sorted({1, paginator.num_pages, *range(max(1, page.number - 2),
                                                                   min(paginator.num_pages, page.number + 2) + 1)}):
                pages.append({"number": number, "url": list_url + state.query_string(page=number),
                              "current": number == page.number})
        gaps = []
        previous = 0
        for entry in pages:
            gaps.append(entry["number"] - previous > 1)
            previous = entry["number"]
        return {
            "state": state,
            "columns": columns,
            "jobs": jobs,
            "chips": chips,
            "counts": counts,
            "page_obj": page,
            "paginator": paginator,
            "pages": list(zip(pages, gaps, strict=True)),
            "prev_url": list_url + state.query_string(page=page.number - 1) if page.has_previous() else "",
            "next_url": list_url + state.query_string(page=page.number + 1) if page.has_next() else "",
            "self_url": list_url + state.query_string(),
            "matching_query": state.query_string(page=1) or "?",
            "max_bulk": MAX_BULK,
            "clear_url": list_url + (f"?per_page={state.per_page}" if state.per_page != state.default_per_page else ""),
            "export_csv": self.page_url("export") + "?" + urlencode([*state.params(page=1), ("format", "csv")]),
            "export_json": self.page_url("export") + "?" + urlencode([*state.params(page=1), ("format", "json")]),
            "active_filters": [{"label": label, "url": list_url + qs} for label, qs in state.active_filters()],
            "users": users,
            "page_sizes": sorted(set(self.config["PAGE_SIZES"]) | {state.default_per_page}),
            "window_labels": WINDOW_LABELS,
            "stuck_count": self.visible_count(stuck),
            "column_count": len(columns) + (2 if self.can_act else 1),
        }

    def visible_count(self, keys: Any) -> int:
        """How many of ``keys`` this viewer may see (all of them for those who see everything)."""
        if self.sees_everything or not keys:
            return len(keys)
        key_field = self.schema["task_name"]
        return self.get_queryset().filter(**{f"{key_field}__in": list(keys)}).count() if key_field else 0

    def list(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.list_context()
        target = self.htmx_target()
        empty = [key for key, values in request.GET.lists() if all(v == "" for v in values)]
        if not getattr(request, "htmx", False) and empty and not context["state"].errors:
            # A filter form submitted without JavaScript: land on the clean, shareable URL.
            return HttpResponseRedirect(context["self_url"] or self.page_url("list"))
        if target == "pca-results":
            htmx = request.htmx  # type: ignore[attr-defined]
            context["oob_filters"] = htmx.trigger not in ("pca-results", "pca-filters")
            response = self.render(context, "powercrud_async/dashboard/partials/list_results.html")
            if not self.polled("pca-results"):
                push_url(response, context["self_url"])
            return response
        return self.render(context)

    # -- detail ----------------------------------------------------------------------------------
    def progress_dict(self, job: Job) -> dict[str, Any]:
        snapshot = progress_cache.read(job.key)
        if snapshot is not None and not can_view(self.request, snapshot.user_id, job.key):
            snapshot = None  # the same owner rule as the progress endpoint
        status = job.status
        message = job.message
        percent = job.percent
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
        return {"status": status.value, "status_label": str(status.label), "percent": percent,
                "message": message, "terminal": status.is_terminal}

    def find_traceback(self, job: Job, events: builtins.list[Any]) -> str:
        text = self.schema.value(job.record, "traceback") if job.record is not None else ""
        result = self.schema.value(job.record, "result_payload") if job.record is not None else None
        if not text and isinstance(result, dict):
            text = result.get("traceback") or ""
        if not text and isinstance(result, str) and "Traceback (most recent call last)" in result:
            text = result
        if not text:
            for event in reversed(events):
                if "Traceback (most recent call last)" in (event.message or ""):
                    text = event.message
                    break
        if not text and job.status == TaskStatus.FAILED:
            try:
                from django_q.models import Task

                found = Task.objects.filter(name=job.key, success=False).values_list("result", flat=True).first()
            except Exception:  # noqa: BLE001 - django-q2's table is a fallback only
                found = None
            if isinstance(found, str) and "Traceback (most recent call last)" in found:
                text = found[found.index("Traceback (most recent call last)"):]
        return str(text or "")

    def detail_fields_rows(self, obj: Any) -> builtins.list[tuple[str, str, bool]]:
        if obj is None:
            return []
        if self.detail_fields:
            names = [f for f in self.detail_fields if f in self.schema.names]
        else:
            names = [f.name for f in self.record_model._meta.concrete_fields]
        skip = {self.schema[name] for name in SECTION_FIELDS if self.schema[name]}
        rows = []
        for name in names:
            if name in skip:
                continue
            value = getattr(obj, name, None)
            field = self.record_model._meta.get_field(name)
            if isinstance(field, models.JSONField):
                text, block = pretty(value), True
            elif value is None or value == "":
                text, block = "—", False
            elif hasattr(value, "isoformat"):
                moment = Moment.of(value, self.now)
                text, block = f"{moment.exact} ({moment.text})", False
            else:
                text = str(value)
                block = "\n" in text or len(text) > 120
            rows.append((self.schema.verbose_name(name).capitalize(), text, block))
        return rows

    def detail_context(self, key: str) -> dict[str, Any]:
        record = self.get_record(key)
        info = get_store().get(key)
        if record is None:
            if info is None or not self.sees_everything or (not info.is_active and deletion_of(key)):
                raise JobGone(key)
            job = self.job_from_info(info)
        else:
            job = self.build_job(record)
        if info is not None and not info.is_active and job.status in ACTIVE:
            job.status = status_of(info.status)  # the record lags the registry: trust the registry
        stuck = stuck_tasks(self.now, [info]) if info is not None and info.is_active else {}
        if key in stuck:
            job.stuck = stuck[key].reason
        events = list(TaskEvent.objects.filter(task_name=key).order_by("id")[:500])
        level = self.request.GET.get("level", "")
        try:
            min_level = int(level) if level.isdigit() else dict((n, v) for v, n in LOG_LEVELS).get(level.upper(), 0)
        except ValueError:
            min_level = 0
        logs_qs = TaskLogEntry.objects.filter(task_name=key)
        level_counts = dict(logs_qs.values_list("level").annotate(n=Count("pk")).order_by())
        logs = list(logs_qs.filter(level__gte=min_level).order_by("id")[:1000]) if level_counts else []
        log_rows = [
            {"level": entry.level_name, "level_class": entry.level_name.lower(), "logger": entry.logger_name,
             "time": Moment.of(entry.created_at, self.now), "clock": clock_time(entry.created_at), "first": entry.message.splitlines()[0] if entry.message else "",
             "message": entry.message, "long": "\n" in entry.message or len(entry.message) > 240}
            for entry in logs
        ]
        timeline = build_timeline(events, self.now)
        for entry in timeline:
            if entry["event"] == "fail" and job.error_type:
                entry["message"] = f"{job.error_type} (see Error)"  # the text itself is shown once
        if job.percent is None and job.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            job.percent = last_percent(events)  # keep the percent it reached
        held = get_store().locks(task_name=key)
        locks = [
            {"model": lock.model_label, "pk": lock.object_pk, "acquired": Moment.of(lock.acquired_at, self.now),
             "expires": Moment.of(lock.expires_at, self.now)}
            for lock in sorted(held, key=lambda lock: (lock.model_label, natural_key(lock.object_pk)))
        ]
        retried_as: builtins.list[dict[str, str]] = []
        key_field, retry_field = self.schema["task_name"], self.schema["retry_of"]
        if key_field and retry_field:
            for child in self.get_queryset().filter(**{retry_field: key}).values_list(key_field, flat=True)[:20]:
                retried_as.append({"key": child, "url": self.job_url(child)})
        traceback = self.find_traceback(job, events) if job.status == TaskStatus.FAILED else ""
        full_error = ""
        if job.status == TaskStatus.FAILED:
            error_text = (self.schema.value(job.record, "error") if job.record is not None else "") or ""
            result = self.schema.value(job.record, "result_payload") if job.record is not None else None
            if not error_text and isinstance(result, dict):
                error_text = result.get("error") or ""
            if not error_text and isinstance(result, str):
                error_text = result
            full_error = split_error(str(error_text or job.message))[1]
        result_value = self.schema.value(job.record, "result_payload") if job.record is not None else None
        show_result = not (job.status == TaskStatus.FAILED and (
            isinstance(result_value, str) or (isinstance(result_value, dict) and "traceback" in result_value)))
        if info is not None and job.record is None:
            args_text = ""
        else:
            args_text = pretty(redact(self.schema.value(job.record, "args_payload"))) if job.record is not None else ""
        def fact(label: str, value: Any = "", *, moment: Moment | None = None, mono: bool = False) -> dict[str, Any]:
            return {"label": label, "value": value, "moment": moment or None, "is_time": moment is not None,
                    "mono": mono}

        facts = [
            fact("Function", job.func_path or "—", mono=True),
            fact("Launched", moment=job.created),
            fact("Started", moment=job.started),
            fact("Finished", moment=job.finished),
            fact("Duration", job.duration or ("running" if job.is_active else "—")),
            fact("User", job.user or "—"),
        ]
        if info is not None:
            facts.append(fact("Attempts", str(info.attempts)))
            if info.is_active:
                facts.append(fact("Heartbeat", moment=Moment.of(info.heartbeat_at, self.now)))
            if info.cancel_requested and info.is_active:
                facts.append(fact("Cancel", "requested; it stops at its next progress update"))
            if info.group:
                facts.append(fact("Group", info.group))
        if job.cleaned_up is not None:
            facts.append(fact("Cleaned up", "yes" if job.cleaned_up else "no"))
        conflict_ids = info.conflict_ids if info is not None else {}
        return {
            "job": job,
            "info": info,
            "task": self.progress_dict(job),
            "progress_url": self.page_url("progress") + "?" + urlencode({"task_name": key}),
            "detail_url": self.job_url(key),
            "self_url": self.job_url(key),
            "body_url": self.job_url(key) + (f"?level={dict(LOG_LEVELS)[min_level]}" if min_level in dict(LOG_LEVELS) else ""),
            "events": timeline,
            "logs": log_rows,
            "log_levels": [{"value": v, "name": n, "count": sum(c for lv, c in level_counts.items() if lv >= v),
                            "selected": v == min_level} for v, n in LOG_LEVELS],
            "log_total": sum(level_counts.values()),
            "min_level": min_level,
            "locks": locks,
            "job_actions": applicable_actions(job, bool(held)),
            "lock_groups": lock_groups((lock.model_label, lock.object_pk) for lock in held),
            "retried_as": retried_as,
            "retry_of_url": self.job_url(job.retry_of) if job.retry_of else "",
            "traceback": traceback,
            "full_error": full_error,
            "result": pretty(result_value) if show_result else "",
            "args": args_text,
            "kwargs": pretty(redact(self.schema.value(job.record, "kwargs_payload"))) if job.record is not None else "",
            "facts": facts,
            "fields_rows": self.detail_fields_rows(job.record),
            "affected": job.affected,
            "conflict_ids": sorted((label, ", ".join(map(str, pks))) for label, pks in (conflict_ids or {}).items()),
        }

    def detail(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = str(kwargs.get(self.lookup_url_kwarg, ""))
        try:
            context = self.detail_context(key)
        except JobGone:
            entry = deletion_of(key) if self.sees_everything else None
            return self.render({"key": key, "deletion": entry,
                                "deleted_at": Moment.of(entry.created_at, self.now) if entry else None},
                               "powercrud_async/dashboard/gone.html", status=404)
        target = self.htmx_target()
        if target == "pca-detail-body":
            return self.render(context, "powercrud_async/dashboard/partials/detail_body.html")
        if target == "pca-logs":
            response = self.render(context, "powercrud_async/dashboard/partials/detail_logs.html")
            push_url(response, context["body_url"])
            return response
        if target == "pca-modal-body":
            return self.render(context, "powercrud_async/dashboard/partials/detail_modal.html")
        return self.render(context)

    # -- progress --------------------------------------------------------------------------------
    def progress(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """The package's progress endpoint; on the last answer (286) it tells the page to refresh."""
        key = request.GET.get("task_name") or request.GET.get("task_key") or ""
        if key and not self.sees_everything and self.get_record(key) is None:
            return JsonResponse({"error": "Unknown task.", "task_name": key}, status=404)
        response: Any = ProgressView.as_view()(request)
        if response.status_code == 286 and getattr(request, "htmx", False):
            trigger_client_event(response, "pca-job-finished")
        return response

    # -- locks -----------------------------------------------------------------------------------
    def locks(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        model = (request.GET.get("model") or "").strip().lower()
        pk = (request.GET.get("pk") or "").strip()
        task = (request.GET.get("task") or "").strip()
        store = get_store()
        found = store.locks(object_pk=pk or None)
        if model:
            found = [lock for lock in found
                     if lock.model_label == model or lock.model_label.endswith("." + model)]
        if task:
            found = [lock for lock in found if task in lock.task_name]
        owners = sorted({lock.task_name for lock in found})
        infos = store.get_many(owners[:2000])
        active = [i for i in infos.values() if i.is_active]
        stuck = stuck_tasks(self.now, active) if active else {}
        if not self.sees_everything:
            visible = set(self.get_queryset().filter(**{f"{self.schema['task_name']}__in": owners[:2000]})
                          .values_list(self.schema["task_name"], flat=True)) if self.schema["task_name"] else set()
            found = [lock for lock in found if lock.task_name in visible]
        found.sort(key=lambda lock: (lock.acquired_at, lock.model_label, natural_key(lock.object_pk)))
        paginator = Paginator(found, 100)
        page = paginator.get_page(request.GET.get("page") or 1)
        owner_locks = Counter(lock.task_name for lock in (store.locks() if model or pk or task else found))
        rows: builtins.list[dict[str, Any]] = []
        for lock in page.object_list:
            info = infos.get(lock.task_name)
            state: str
            if info is None:
                state, alive = "reservation", lock.expires_at > self.now
            elif info.is_active:
                state, alive = str(status_of(info.status).label), lock.task_name not in stuck
                if not alive:
                    state = stuck[lock.task_name].kind
            else:
                state, alive = str(status_of(info.status).label), False
            rows.append({
                "model": lock.model_label, "pk": lock.object_pk, "task": lock.task_name,
                "title": title_of(info.label, info.func_path) if info else "",
                "task_url": self.job_url(lock.task_name), "state": str(state),
                "status": status_of(info.status).value if info else "",
                "alive": alive, "acquired": Moment.of(lock.acquired_at, self.now),
                "age": human_duration((self.now - lock.acquired_at).total_seconds()),
                "expires": Moment.of(lock.expires_at, self.now),
                "reason": stuck[lock.task_name].reason if lock.task_name in stuck else "",
                "owner_locks": owner_locks.get(lock.task_name, 0),
            })
        answer = ""
        if model and pk:
            holders = sorted({str(r["task"]) for r in rows})
            nobody = "Nobody holds" if self.sees_everything else "None of your jobs holds"
            answer = (f"{model} {pk} is held by {', '.join(holders)}." if holders
                      else f"{nobody} {model} {pk}.")
        every = store.locks() if self.sees_everything else found
        labels = sorted({lock.model_label for lock in every}) if len(found) < 5000 else []
        query = {k: v for k, v in (("model", model), ("pk", pk), ("task", task)) if v}
        base = self.page_url("locks")
        context: dict[str, Any] = {
            "rows": rows, "page_obj": page, "paginator": paginator, "model": model, "pk": pk, "task": task,
            "answer": answer, "labels": labels, "filtered": bool(query),
            "self_url": base + ("?" + urlencode(query) if query else ""),
            "prev_url": base + "?" + urlencode({**query, "page": page.number - 1}) if page.has_previous() else "",
            "next_url": base + "?" + urlencode({**query, "page": page.number + 1}) if page.has_next() else "",
            "total": len(found),
        }
        if self.htmx_target() == "pca-locks-results":
            response = self.render(context, "powercrud_async/dashboard/partials/locks_results.html")
            if not self.polled("pca-locks-results"):
                push_url(response, context["self_url"])
            return response
        return self.render(context)

    # -- audit -----------------------------------------------------------------------------------
    def audit(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = (request.GET.get("user") or "").strip()
        action = (request.GET.get("action") or "").strip()
        target = (request.GET.get("target") or "").strip()
        qs = AuditEntry.objects.all()
        if not self.sees_everything:
            qs = qs.filter(user_id=str(request.user.pk))
        if user:
            qs = qs.filter(username__icontains=user)
        if action:
            qs = qs.filter(action=action)
        if target:
            qs = qs.filter(targets__icontains=target)
        paginator = Paginator(qs.order_by("-created_at", "-id"), 50)
        page = paginator.get_page(request.GET.get("page") or 1)
        entries = []
        titles = job_titles(self.schema, self.get_queryset(),  # schedule actions target schedules
                            {str(t) for entry in page.object_list if not entry.action.startswith("schedule-")
                             for t in (entry.targets or [])[:6]})
        for entry in page.object_list:
            targets = [str(t) for t in (entry.targets or [])]
            entries.append({
                "entry": entry, "time": Moment.of(entry.created_at, self.now),
                "targets": [{"key": t, "url": self.audit_target_url(entry.action, t), "title": titles.get(t, "")}
                            for t in targets[:6]],
                "more": max(0, len(targets) - 6),
                "label": actions.ACTIONS[entry.action].label if entry.action in actions.ACTIONS else entry.action,
            })
        query = {k: v for k, v in (("user", user), ("action", action), ("target", target)) if v}
        base = self.page_url("audit")
        context = {
            "entries": entries, "page_obj": page, "paginator": paginator,
            "user_filter": user, "action_filter": action, "target_filter": target,
            "action_choices": [(a.name, a.label) for a in actions.ACTIONS.values()],
            "filtered": bool(query),
            "prev_url": base + "?" + urlencode({**query, "page": page.number - 1}) if page.has_previous() else "",
            "next_url": base + "?" + urlencode({**query, "page": page.number + 1}) if page.has_next() else "",
        }
        return self.render(context)

    # -- logs and events across jobs ---------------------------------------------------------------
    def logs(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return streams.logs_page(self, request)

    def events(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return streams.events_page(self, request)

    def workers(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return workers_page(self, request)

    # -- export ----------------------------------------------------------------------------------
    EXPORT_FIELDS = EXPORT_FIELDS

    def export(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        fmt = (request.GET.get("format") or "csv").lower()
        if fmt not in ("csv", "json"):
            return HttpResponseBadRequest("format must be csv or json.")
        columns = self.get_columns()
        state = self.list_state(columns)
        stuck = stuck_tasks(self.now) if state.status == "attention" else {}
        since = self.now - timedelta(hours=self.config["RECENT_WINDOW_HOURS"])
        attention = attention_q(self.schema, set(stuck), since)
        qs = filter_records(self.get_queryset(), state, self.schema, now=self.now)
        qs = order_records(qs.filter(status_filter(state, self.schema, attention)), state,
                           {c.key: c.field for c in columns if c.field})
        try:
            names = export_columns(self.schema, self.EXPORT_FIELDS)
        except NothingToExport as exc:
            logger.error("Export refused: %s", exc)
            return HttpResponse(f"Export is not configured: {exc}", status=500, content_type="text/plain")
        limit = self.config["EXPORT_LIMIT"] or None
        rows = qs.values_list(*[name for _, name in names])
        if limit:
            rows = rows[:limit]
        headers = [logical for logical, _ in names]
        stamp = self.now.strftime("%Y%m%d-%H%M%S")
        if fmt == "csv":
            response = StreamingHttpResponse(_csv_rows(headers, rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="jobs-{stamp}.csv"'
        else:
            response = StreamingHttpResponse(_json_rows(headers, rows), content_type="application/json")
            response["Content-Disposition"] = f'attachment; filename="jobs-{stamp}.json"'
        add_never_cache_headers(response)
        return response

    # -- actions ---------------------------------------------------------------------------------
    def safe_next(self, default: str) -> str:
        target = self.request.POST.get("next") or ""
        if target and url_has_allowed_host_and_scheme(target, {self.request.get_host()},
                                                       require_https=self.request.is_secure()):
            return target
        return default

    def perform_action(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        name = request.POST.get("action", "")
        action = actions.ACTIONS.get(name)
        if action is None:
            return HttpResponseBadRequest("Unknown action. Expected one of: " + ", ".join(actions.ACTIONS) + ".")
        posted = list(dict.fromkeys(k.strip() for k in request.POST.getlist("tasks") if k.strip()))[:MAX_BULK]
        if request.POST.get("matching") is not None and request.POST.get("confirmed") != "1":
            posted = self.matching_keys(request.POST["matching"])
        too_long = [k for k in posted if len(k) > TASK_KEY_MAX_LENGTH]  # cannot be task keys
        keys = [k for k in posted if k not in too_long]
        back = self.safe_next(self.page_url("list"))
        if not self.can_act:
            audit.record(request, name, posted, "Refused: no permission to act on jobs.", refused=len(posted))
            raise PermissionDenied("You may see the task dashboard but not act on jobs.")
        if not keys:
            return self.respond_report(None, back, "Select at least one job first.", "warning")
        key_field = self.schema["task_name"]
        records: dict[str, Any] = {}
        if key_field:
            for obj in self.get_queryset().filter(**{f"{key_field}__in": keys}):
                records[str(getattr(obj, key_field))] = obj
        hidden = [] if self.sees_everything else [k for k in keys if k not in records]
        keys = [k for k in keys if k not in hidden]
        if action.destructive and request.POST.get("confirmed") != "1" and keys:
            return self.confirm(action, keys, records, back)
        try:
            report = actions.run(name, keys, records, self.schema, request.user)
        except Exception as exc:
            audit.record(request, name, keys, f"Failed: {type(exc).__name__}: {exc}", refused=len(keys))
            raise
        for key in hidden + too_long:
            report.outcomes.append(actions.Outcome(key, actions.REFUSED, "no such job"))
        audit.record(request, name, report.targets, report.summary, succeeded=report.succeeded,
                     refused=report.refused + report.errors, results=report.results)
        return self.respond_report(report, back, report.summary, report.level)

    def matching_keys(self, query: str) -> builtins.list[str]:
        """The keys of every job the list shows for ``query`` (all its pages, at most ``MAX_BULK``)."""
        key_field = self.schema["task_name"]
        if not key_field:
            return []
        columns = self.get_columns()
        state = self.list_state(columns, QueryDict(query.lstrip("?")))
        stuck = stuck_tasks(self.now) if state.status == "attention" else {}
        since = self.now - timedelta(hours=self.config["RECENT_WINDOW_HOURS"])
        qs = filter_records(self.get_queryset(), state, self.schema, now=self.now)
        qs = order_records(qs.filter(status_filter(state, self.schema, attention_q(self.schema, set(stuck), since))),
                           state, {c.key: c.field for c in columns if c.field})
        return [str(k) for k in qs.values_list(key_field, flat=True)[:MAX_BULK]]

    def confirm(self, action: actions.Action, keys: builtins.list[str], records: dict[str, Any],
                back: str) -> HttpResponse:
        named = []
        for key in keys[:10]:
            record = records.get(key)
            func = str(self.schema.value(record, "func_path", "") or "") if record is not None else ""
            label = str(self.schema.value(record, "label", "") or "") if record is not None else ""
            named.append({"key": key, "name": title_of(label, func), "url": self.job_url(key)})
        context = {
            "confirm_action": action, "keys": keys, "named": named, "more": max(0, len(keys) - 10),
            "next": back, "follow": self.request.POST.get("follow", ""),
            "question": action.ask(len(keys)),
            "confirm_label": action.confirm_label(len(keys)),
        }
        if action.name == "release":
            context.update(release_confirmation(keys, named))
        if getattr(self.request, "htmx", False):
            return self.render(context, "powercrud_async/dashboard/partials/confirm.html")
        return self.render(context, "powercrud_async/dashboard/confirm.html")

    def respond_report(self, report: actions.Report | None, back: str, summary: str, level: str) -> HttpResponse:
        lines = []
        if report is not None:
            for outcome in report.outcomes[:25]:
                lines.append({"key": outcome.key, "url": self.job_url(outcome.key), "result": outcome.result,
                              "detail": outcome.detail, "new_key": outcome.new_key,
                              "new_url": self.job_url(outcome.new_key) if outcome.new_key else ""})
        context = {"report": report, "summary": summary, "level": level, "lines": lines,
                   "more_lines": max(0, len(report.outcomes) - 25) if report else 0, "next": back}
        messages_on = apps.is_installed("django.contrib.messages") and hasattr(self.request, "_messages")
        if getattr(self.request, "htmx", False):
            if self.request.POST.get("follow") == "1" and messages_on:
                from django.contrib import messages

                messages.add_message(self.request, _LEVELS[level], summary)
                return HttpResponseClientRedirect(back)
            response = self.render(context, "powercrud_async/dashboard/partials/report.html")
            trigger_client_event(response, "pca-refresh")
            return response
        if messages_on:
            from django.contrib import messages

            messages.add_message(self.request, _LEVELS[level], summary)
            return HttpResponseRedirect(back, status=303)
        return self.render(context, "powercrud_async/dashboard/report.html")


_LEVELS = {"success": message_levels.SUCCESS, "warning": message_levels.WARNING,
           "error": message_levels.ERROR}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = value if isinstance(value, str) else json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text  # keep spreadsheets from evaluating it
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(headers: list[str], rows: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers)
    for row in masked_rows(headers, rows.iterator(chunk_size=2000)):
        yield writer.writerow([_cell(v) for v in row])


def _json_rows(headers: list[str], rows: Any) -> Iterator[str]:
    yield "["
    first = True
    for row in masked_rows(headers, rows.iterator(chunk_size=2000)):
        item = {h: (v.isoformat() if hasattr(v, "isoformat") else v) for h, v in zip(headers, row, strict=True)}
        yield ("" if first else ",") + "\n" + json.dumps(item, default=str, ensure_ascii=False)
        first = False
    yield "\n]\n"


class TaskDashboardView(TaskDashboardMixin, CRUDView):
    """The ready-made dashboard ``powercrud_async.dashboard.urls`` mounts.

    Its record model is ``DASHBOARD["RECORD_MODEL"]`` or the default manager's.
    """

    url_base = "tasks"
    url_prefix = ""
    routes = {
        "overview": "",
        "list": "jobs/",
        "locks": "locks/",
        "audit": "audit/",
        "logs": "logs/",
        "events": "events/",
        "workers": "workers/",
        "action": "actions/",
        "export": "export/",
        "progress": "progress/",
        "detail": "jobs/<path:task_key>/",
        **SCHEDULE_ROUTES,
    }
