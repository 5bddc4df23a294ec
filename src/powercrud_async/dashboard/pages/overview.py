"""The overview page: counts, chart, stuck jobs, queues and the schedules summary."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from ..overview import build_overview
from ..responses import region_or_page
from ..schedules import schedule_summary

#: Statuses whose overview link is limited to the recent window (the others are "now").
WINDOWED = ("failed", "succeeded", "cancelled")


def status_links(view: Any) -> dict[str, str]:
    """Each overview count links to the list filtered the same way."""
    window = "24h" if view.config["RECENT_WINDOW_HOURS"] == 24 else ""
    lst = view.page_url("list")
    links = {}
    for status in ("failed", "attention", "running", "queued", "succeeded", "cancelled"):
        links[status] = f"{lst}?status={status}" + (
            f"&window={window}" if window and status in WINDOWED else ""
        )
    return links


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The overview page, or just its body for the live refresh."""
    data = build_overview(
        view.get_queryset(),
        view.schema,
        view.now,
        window_hours=view.config["RECENT_WINDOW_HOURS"],
        job_url=view.job_url,
        everything=view.sees_everything,
        stuck_after=view.config["STUCK_QUEUE_AFTER"],
    )
    context = {
        "overview": data,
        "links": status_links(view),
        "region_url": request.get_full_path(),
        "sees_everything": view.sees_everything,
    }
    if "schedules" in view.routes:
        context["schedule_summary"] = schedule_summary(
            data.healthy_clusters, view.now, view.job_url, view.schedule_edit_url
        )
        context["schedules_url"] = view.page_url("schedules")
    return region_or_page(view, context, "pca-overview", "overview_body.html", push=False)
