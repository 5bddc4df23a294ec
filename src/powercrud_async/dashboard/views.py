"""The dashboard views: one neapolitan ``CRUDView`` mixin serving every page.

``TaskDashboardMixin`` takes the attributes of PowerCRUD's ``PowerCRUDMixin`` (``model``,
``namespace``, ``use_htmx``, ``use_modal``, ``fields``, ``detail_fields``) and adds the overview,
locks, audit, export, progress and action pages, so a project's subclass is a whole dashboard and
``get_urls()`` mounts it. The pages are listed once, in ``routing.Page``; their handlers live in
``dashboard.pages`` and get this view, which owns access, visibility, URLs and rendering.
neapolitan's ``Role.reverse`` ignores namespaces, so every URL here is reversed through
``page_url``, which honours the namespace the request came in through.
"""

from __future__ import annotations

import builtins
from functools import cached_property
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.decorators import classonlymethod
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect
from neapolitan.views import CRUDView, Role

from ..stores import TaskInfo
from . import access, actions, responses
from .config import dashboard_config
from .export import EXPORT_FIELDS
from .pages import detail, jobs
from .pages.detail import JobGone
from .pages.jobs import Cell, Column
from .query import ListState
from .records import Job, RecordSchema, build_job, manager_field_map, resolve_record_model
from .routing import Page, nav_entries
from .schedules import SchedulePages

__all__ = ["Cell", "Column", "JobGone", "TaskDashboardMixin", "TaskDashboardView"]

#: neapolitan's roles for the pages that are its list and detail (for ``as_view(role=...)``).
ROLE_PAGES = {Role.LIST: "list", Role.DETAIL: "detail"}


class TaskDashboardMixin(SchedulePages):
    """Turns a neapolitan ``CRUDView`` over a task-record model into the whole dashboard."""

    # -- PowerCRUD's attributes ---------------------------------------------------------------------
    model: type[models.Model] | None = None
    namespace: str | None = None
    use_htmx: bool = True
    use_modal: bool = False
    fields: list[str] | None = None
    detail_fields: list[str] | None = None

    # -- ours ----------------------------------------------------------------------------------
    #: Path before every page; ``None`` means ``"<url_base>/"`` (neapolitan's layout).
    url_prefix: str | None = None
    #: Page slug → path below the prefix; a page left out is not mounted (nor in the nav).
    routes: dict[str, str] = Page.routes(
        list="", overview="overview/", detail="job/<path:task_key>/"
    )
    lookup_url_kwarg = "task_key"
    dashboard_title: str | None = None
    page: str = ""
    EXPORT_FIELDS = EXPORT_FIELDS
    # Provided by Django's View and neapolitan's CRUDView (declared for type checkers).
    request: HttpRequest
    role: Role | None
    url_base: str
    template_name: str | None

    # -- URLs ------------------------------------------------------------------------------------
    @classonlymethod
    def get_urls(cls, roles: Any = None) -> list[URLPattern]:
        """Every routed page, named ``<url_base>-<page>`` (``roles`` is accepted and ignored)."""
        prefix = cls.url_prefix if cls.url_prefix is not None else f"{cls.url_base}/"
        return [
            path(prefix + route, cls.page_view(page), name=f"{cls.url_base}-{page}")
            for page, route in cls.routes.items()
        ]

    @classonlymethod
    def page_view(cls, page: str) -> Any:
        """The view function for one page (neapolitan's ``as_view`` serves one role instead)."""
        role = {name: role for role, name in ROLE_PAGES.items()}.get(page)

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
        name = f"{self.url_base}-{page}"
        return reverse(
            f"{namespace}:{name}" if namespace else name,
            kwargs=kwargs or None,
            current_app=namespace or None,
        )

    def job_url(self, key: str) -> str:
        return self.page_url("detail", task_key=key)

    def safe_next(self, default: str) -> str:
        """The posted ``next`` when it stays on this site, else ``default`` (no open redirects)."""
        target = self.request.POST.get("next") or ""
        if target and url_has_allowed_host_and_scheme(
            target, {self.request.get_host()}, require_https=self.request.is_secure()
        ):
            return target
        return default

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
            login = redirect_to_login(request.get_full_path())
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(
                    login["Location"], content="Sign in to see the task dashboard.", status=401
                )
            return login
        if not self.has_view_access():
            raise PermissionDenied("You may not see the task dashboard.")
        return None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Method check, then access, then the page's handler; nothing an operator sees is cached."""
        self.page = self.page or ROLE_PAGES.get(getattr(self, "role", None), "")
        page = Page.of(self.page)
        handlers = page.handlers() if page is not None else {}
        method = request.method.lower() if request.method else "get"
        if method == "head" and "get" in handlers:
            method = "get"
        if method not in handlers:
            return HttpResponseNotAllowed([m.upper() for m in handlers])
        denied = self.deny(request)
        if denied is not None:
            return denied
        response = handlers[method](self, request, *args, **kwargs)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        if page is not Page.EXPORT:
            add_never_cache_headers(response)
        return response

    # -- records and visibility ------------------------------------------------------------------
    def get_queryset(self) -> QuerySet[Any]:
        """The records this viewer may see: all, or (``OWN_TASKS_ONLY``) those their user id owns."""
        qs = self.record_model._default_manager.all()
        if not self.sees_everything:
            qs = qs.filter(access.own_filter(self.request, self.schema.owner_field))
        return qs

    def get_record(self, key: str) -> Any:
        key_field = self.schema["task_name"]
        if key_field is None:
            return self.get_queryset().filter(pk=key).first() if key.isdigit() else None
        return self.get_queryset().filter(**{key_field: key}).first()

    def visible_jobs(self, keys: Any) -> QuerySet[Any]:
        """The visible records among job ``keys`` (none without a key column)."""
        key_field = self.schema["task_name"]
        if not key_field:
            return self.get_queryset().none()
        return self.get_queryset().filter(**{f"{key_field}__in": builtins.list(keys)})

    def visible_keys(self, keys: Any) -> set[str]:
        key_field = self.schema["task_name"]
        return (
            set(self.visible_jobs(keys).values_list(key_field, flat=True)) if key_field else set()
        )

    def visible_count(self, keys: Any) -> int:
        """How many of ``keys`` this viewer may see (all of them for those who see everything)."""
        if self.sees_everything or not keys:
            return len(keys)
        return self.visible_jobs(keys).count()

    def visible_lines(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        """Log lines or events of jobs this viewer may see (all of them for those who see everything)."""
        if self.sees_everything:
            return qs
        key_field = self.schema["task_name"]
        if not key_field:
            return qs.none()
        return qs.filter(task_name__in=self.get_queryset().values(key_field))

    def build_job(self, obj: Any, stuck: str = "") -> Job:
        job = build_job(self.schema, obj, self.now, stuck=stuck)
        job.url = self.job_url(job.key)
        return job

    def job_from_info(self, info: TaskInfo) -> Job:
        """A job known only to the registry (its record was deleted, or none is kept)."""
        return detail.registry_job(self, info)

    # -- hooks the pages call (override to change one page's data) -------------------------------
    def get_columns(self) -> builtins.list[Column]:
        return jobs.columns(self)

    def list_state(
        self, columns: builtins.list[Column], query: QueryDict | None = None
    ) -> ListState:
        return jobs.list_state(self, columns, query)

    def list_context(self) -> dict[str, Any]:
        return jobs.context(self)

    def matching_keys(self, query: str) -> builtins.list[str]:
        return jobs.matching_keys(self, query)

    def detail_context(self, key: str) -> dict[str, Any]:
        return detail.context(self, key)

    def progress_dict(self, job: Job) -> dict[str, Any]:
        return detail.progress_dict(self, job)

    def find_traceback(self, job: Job, events: builtins.list[Any]) -> str:
        return detail.find_traceback(self, job, events)

    def detail_fields_rows(self, obj: Any) -> builtins.list[tuple[str, str, bool]]:
        return detail.fields_rows(self, obj)

    # -- rendering -------------------------------------------------------------------------------
    def get_template_names(self) -> builtins.list[str]:
        if self.template_name is not None:
            return [self.template_name]
        page = Page.of(self.page)
        return [
            page.template_name()
            if page is not None
            else f"powercrud_async/dashboard/{self.page}.html"
        ]

    def title(self) -> str:
        return self.dashboard_title or self.config["TITLE"]

    def base_context(self) -> dict[str, Any]:
        """What every dashboard template may use: the nav, refresh settings, access and links."""
        return {
            "view": self,
            "page": self.page,
            "title": self.title(),
            "nav": nav_entries(self),
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

    def render(
        self, context: dict[str, Any], template: str | None = None, status: int = 200
    ) -> HttpResponse:
        full = {**self.base_context(), **context}
        names = [template] if template else self.get_template_names()
        return TemplateResponse(self.request, names, full, status=status)

    def htmx_target(self) -> str:
        return responses.htmx_target(self.request)

    def polled(self, region: str) -> bool:
        """Was this request the region refreshing itself (not a navigation)?"""
        return responses.polled(self.request, region)


class TaskDashboardView(TaskDashboardMixin, CRUDView):
    """The ready-made dashboard ``powercrud_async.dashboard.urls`` mounts.

    Its record model is ``DASHBOARD["RECORD_MODEL"]`` or the default manager's.
    """

    url_base = "tasks"
    url_prefix = ""
    routes = Page.routes()
