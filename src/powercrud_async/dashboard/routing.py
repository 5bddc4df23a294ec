"""The table of dashboard pages, in the spirit of neapolitan's ``Role``: one enum member per page
names its handlers, URL pattern, URL name, template and nav entry, so URLs and the nav are made
from one place and a page is added by adding a member (and its handler module).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http.response import HttpResponseBase

from . import streams, workers
from .pages import (
    audit_trail,
    detail,
    export,
    job_actions,
    jobs,
    locks,
    overview,
    progress,
    schedules,
)

#: ``handler(view, request, *args, **url_kwargs)``; the view is the ``TaskDashboardMixin`` in use.
Handler = Callable[..., HttpResponseBase]


@dataclass(frozen=True, eq=False)
class Spec:
    """One page: its slug (``<url_base>-<slug>`` is its URL name), path, handlers and nav entry."""

    slug: str
    route: str
    get: Handler | None = None
    post: Handler | None = None
    template: str = (
        ""  # below powercrud_async/dashboard/; "" for endpoints with no page of their own
    )
    label: str = ""  # its nav entry
    in_nav: bool = False
    order: int = 0  # its place in the nav
    section: str = ""  # the nav entry it is shown under, when not its own


def nav_page(slug: str, route: str, get: Handler, label: str, order: int) -> Spec:
    """A page with an entry in the nav, rendered from ``<slug>.html``."""
    return Spec(slug, route, get, template=f"{slug}.html", label=label, in_nav=True, order=order)


class Page(enum.Enum):
    """Every dashboard page. Routes are the packaged dashboard's (``TaskDashboardView``)."""

    OVERVIEW = nav_page("overview", "", overview.show, "Overview", 1)
    LIST = nav_page("list", "jobs/", jobs.show, "Jobs", 2)
    LOCKS = nav_page("locks", "locks/", locks.show, "Locks", 4)
    AUDIT = nav_page("audit", "audit/", audit_trail.show, "Audit trail", 8)
    LOGS = nav_page("logs", "logs/", streams.logs_page, "Logs", 6)
    EVENTS = nav_page("events", "events/", streams.events_page, "Events", 7)
    WORKERS = nav_page("workers", "workers/", workers.workers_page, "Workers", 5)
    ACTION = Spec("action", "actions/", post=job_actions.perform)
    EXPORT = Spec("export", "export/", export.show)
    PROGRESS = Spec("progress", "progress/", progress.show)
    DETAIL = Spec("detail", "jobs/<path:task_key>/", detail.show, template="detail.html")
    SCHEDULES = nav_page("schedules", "schedules/", schedules.show, "Schedules", 3)
    SCHEDULE_ACTION = Spec(
        "schedule-action", "schedules/actions/", post=schedules.act, section="schedules"
    )
    SCHEDULE_NEW = Spec(
        "schedule-new",
        "schedules/new/",
        schedules.new,
        schedules.new,
        template="schedule_form.html",
        section="schedules",
    )
    SCHEDULE_EDIT = Spec(
        "schedule-edit",
        "schedules/<int:schedule_id>/edit/",
        schedules.edit,
        schedules.edit,
        template="schedule_form.html",
        section="schedules",
    )

    @property
    def spec(self) -> Spec:
        return self.value

    @property
    def slug(self) -> str:
        return self.spec.slug

    def url_name(self, url_base: str) -> str:
        return f"{url_base}-{self.slug}"

    def handlers(self) -> dict[str, Handler]:
        """HTTP method → handler; HEAD is answered by GET, as Django does."""
        found = {"get": self.spec.get, "post": self.spec.post}
        return {method: handler for method, handler in found.items() if handler is not None}

    def template_name(self) -> str:
        return f"powercrud_async/dashboard/{self.spec.template or self.slug + '.html'}"

    def nav_section(self) -> str:
        """The nav entry marked current on this page."""
        return self.spec.section or self.slug

    @classmethod
    def of(cls, slug: str) -> Page | None:
        return next((page for page in cls if page.slug == slug), None)

    @classmethod
    def routes(cls, **changes: str) -> dict[str, str]:
        """Slug → path for every page, with ``changes`` (by slug) applied."""
        return {page.slug: changes.get(page.slug, page.spec.route) for page in cls}

    @classmethod
    def nav(cls) -> list[Page]:
        return sorted((page for page in cls if page.spec.in_nav), key=lambda page: page.spec.order)


def nav_entries(view: Any) -> list[dict[str, Any]]:
    """The nav: the pages this view routes, in order, the current page's section marked."""
    current = Page.of(view.page)
    section = current.nav_section() if current is not None else view.page
    return [
        {
            "page": page.slug,
            "label": page.spec.label,
            "url": view.page_url(page.slug),
            "current": page.slug == section,
        }
        for page in Page.nav()
        if page.slug in view.routes
    ]
