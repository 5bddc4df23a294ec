"""The jobs list: its columns, the filtered and sorted selection, chips, paging and bulk-select
query. Export and "select every matching job" reuse ``selection`` so they see what the list shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict

from ...stores import get_store
from ..config import ALL_COLUMNS
from ..liveness import stuck_tasks
from ..lock_release import applicable_actions
from ..query import (
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
from ..records import short
from ..responses import region_or_page

MAX_BULK = 500
CHIP_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "succeeded": "Succeeded",
    "attention": "Needs attention",
}
COLUMN_LABELS = {
    "task": "Job",
    "status": "Status",
    "progress": "Progress",
    "user": "User",
    "created": "Launched",
    "updated": "Updated",
    "duration": "Duration",
    "affected": "Affected objects",
    "message": "Message",
}
#: Columns whose first click sorts newest/longest/furthest first.
DESCENDING_FIRST = ("created", "updated", "duration", "progress")


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


def columns(view: Any) -> list[Column]:
    """The view's ``fields`` (or ``DASHBOARD["COLUMNS"]``) as columns this record model can fill."""
    schema = view.schema
    keys = (
        [FIELD_COLUMNS.get(f, f) for f in view.fields]
        if view.fields
        else list(view.config["COLUMNS"])
    )
    found = []
    for key in dict.fromkeys(keys):
        if key in ALL_COLUMNS:
            logical = COLUMN_FIELDS.get(key)
            field_name = schema[logical] if logical else None
            if key not in ("task", "progress") and field_name is None:
                continue  # this record model does not keep it
            if key == "progress" and not schema["status"]:
                continue
            found.append(Column(key, COLUMN_LABELS[key], key, field_name))
        elif key in schema.names:
            found.append(Column(key, schema.verbose_name(key).capitalize(), "field", key))
        else:
            raise ImproperlyConfigured(
                f"Dashboard column {key!r} is neither one of {', '.join(ALL_COLUMNS)} nor a field of "
                f"{view.record_model._meta.label}."
            )
    if not any(c.kind == "task" for c in found):
        found.insert(0, Column("task", "Job", "task", schema["task_name"]))
    return found


def list_state(view: Any, cols: list[Column], query: QueryDict | None = None) -> ListState:
    """The list's filters, sort and page from ``query`` (the request's by default), validated."""
    sortable = {c.key for c in cols if c.field}
    default_sort = (
        "-created" if "created" in sortable else ("-updated" if "updated" in sortable else "")
    )
    if not default_sort and cols and cols[0].field:
        default_sort = f"-{cols[0].key}"
    sizes = list(view.config["PAGE_SIZES"])
    default_size = getattr(view, "paginate_by", None) or view.config["PAGE_SIZE"]
    if default_size not in sizes:
        sizes = sorted({*sizes, default_size})
    return ListState.from_query(
        view.request.GET if query is None else query,
        sortable=sortable,
        page_sizes=sizes,
        default_per_page=default_size,
        default_sort=default_sort,
    )


def attention(view: Any, stuck: Any) -> Q:
    """ "Needs attention": stuck now, or failed within the recent window."""
    since = view.now - timedelta(hours=view.config["RECENT_WINDOW_HOURS"])
    return attention_q(view.schema, set(stuck), since)


def sort_fields(cols: list[Column]) -> dict[str, str]:
    return {c.key: c.field for c in cols if c.field}


def selection(view: Any, state: ListState, cols: list[Column]) -> QuerySet[Any]:
    """Every job the list shows for ``state`` (all pages), in its order: for export and bulk select."""
    stuck = stuck_tasks(view.now) if state.status == "attention" else {}
    qs = filter_records(view.get_queryset(), state, view.schema, now=view.now)
    return order_records(
        qs.filter(status_filter(state, view.schema, attention(view, stuck))),
        state,
        sort_fields(cols),
    )


def matching_keys(view: Any, query: str) -> list[str]:
    """The keys of every job the list shows for ``query`` (all its pages, at most ``MAX_BULK``)."""
    key_field = view.schema["task_name"]
    if not key_field:
        return []
    cols = view.get_columns()
    qs = selection(view, view.list_state(cols, QueryDict(query.lstrip("?"))), cols)
    return [str(k) for k in qs.values_list(key_field, flat=True)[:MAX_BULK]]


def job_rows(view: Any, objects: Any, cols: list[Column], stuck: Any) -> list[Any]:
    """The page's jobs, each with its cells and the actions that apply to it."""
    lock_owners = get_store().lock_owners()
    jobs = []
    for obj in objects:
        key = str(view.schema.value(obj, "task_name", "") or obj.pk)
        job = view.build_job(obj, stuck=stuck[key].reason if key in stuck else "")
        cells = []
        for column in cols:
            if column.kind == "field":
                value = getattr(obj, column.key, "")
                cells.append(
                    Cell("field", "" if value is None else short(str(value), 120), column.label)
                )
            else:
                cells.append(Cell(column.kind))
        job.extra = {"cells": cells, "actions": applicable_actions(job, job.key in lock_owners)}
        jobs.append(job)
    return jobs


def sort_links(cols: list[Column], state: ListState, list_url: str) -> None:
    """Give each sortable column its state and the URL its header links to."""
    current = state.effective_sort
    for column in cols:
        if not column.field:
            continue
        if current.lstrip("-") == column.key:
            column.sort_state = "descending" if current.startswith("-") else "ascending"
            new = column.key if current.startswith("-") else f"-{column.key}"
        else:
            new = f"-{column.key}" if column.key in DESCENDING_FIRST else column.key
        column.sort_url = list_url + state.query_string(sort=new, page=1)


def chips(counts: dict[str, int], state: ListState, list_url: str) -> list[dict[str, Any]]:
    found = [
        {
            "slug": "",
            "label": "All",
            "count": counts["all"],
            "active": not state.status,
            "url": list_url + state.query_string(status="", page=1),
        }
    ]
    for slug in STATUS_SLUGS:
        found.append(
            {
                "slug": slug,
                "label": CHIP_LABELS[slug],
                "count": counts.get(slug, 0),
                "active": state.status == slug,
                "url": list_url + state.query_string(status=slug, page=1),
            }
        )
    return found


def page_numbers(paginator: Paginator, page: Any, state: ListState, list_url: str) -> list[Any]:
    """First, last and two either side of the current page, each with whether a gap precedes it."""
    pages: list[dict[str, Any]] = []
    if paginator.num_pages > 1:
        near = range(max(1, page.number - 2), min(paginator.num_pages, page.number + 2) + 1)
        for number in sorted({1, paginator.num_pages, *near}):
            pages.append(
                {
                    "number": number,
                    "url": list_url + state.query_string(page=number),
                    "current": number == page.number,
                }
            )
    gaps = []
    previous = 0
    for entry in pages:
        gaps.append(entry["number"] - previous > 1)
        previous = entry["number"]
    return list(zip(pages, gaps, strict=True))


def user_choices(view: Any) -> list[str]:
    field = view.schema["user_label"]
    if not field:
        return []
    qs = view.get_queryset().exclude(**{field: ""}).order_by(field)
    return list(qs.values_list(field, flat=True).distinct()[:50])


def context(view: Any) -> dict[str, Any]:
    """Everything the list template shows."""
    cols = view.get_columns()
    state = view.list_state(cols)
    schema = view.schema
    stuck = stuck_tasks(view.now)
    needs_attention = attention(view, stuck)
    base = filter_records(view.get_queryset(), state, schema, now=view.now)
    counts = chip_counts(base, schema, needs_attention)
    ordered = order_records(
        base.filter(status_filter(state, schema, needs_attention)), state, sort_fields(cols)
    )
    paginator = Paginator(ordered, state.per_page)
    paginator.__dict__["count"] = counts[state.status or "all"]  # the aggregate already counted
    page = paginator.get_page(state.page)
    if page.number != state.page:
        state = ListState(**{**state.__dict__, "page": page.number})
    list_url = view.page_url("list")
    jobs = job_rows(view, page.object_list, cols, stuck)
    sort_links(cols, state, list_url)
    export_url = view.page_url("export") + "?"
    return {
        "state": state,
        "columns": cols,
        "jobs": jobs,
        "chips": chips(counts, state, list_url),
        "counts": counts,
        "page_obj": page,
        "paginator": paginator,
        "pages": page_numbers(paginator, page, state, list_url),
        "prev_url": list_url + state.query_string(page=page.number - 1)
        if page.has_previous()
        else "",
        "next_url": list_url + state.query_string(page=page.number + 1) if page.has_next() else "",
        "self_url": list_url + state.query_string(),
        "matching_query": state.query_string(page=1) or "?",
        "max_bulk": MAX_BULK,
        "clear_url": list_url
        + (f"?per_page={state.per_page}" if state.per_page != state.default_per_page else ""),
        "export_csv": export_url + urlencode([*state.params(page=1), ("format", "csv")]),
        "export_json": export_url + urlencode([*state.params(page=1), ("format", "json")]),
        "active_filters": [
            {"label": label, "url": list_url + qs} for label, qs in state.active_filters()
        ],
        "users": user_choices(view),
        "page_sizes": sorted(set(view.config["PAGE_SIZES"]) | {state.default_per_page}),
        "window_labels": WINDOW_LABELS,
        "stuck_count": view.visible_count(stuck),
        "column_count": len(cols) + (2 if view.can_act else 1),
    }


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The list page, or just its results for the live refresh and in-page filtering."""
    ctx = view.list_context()
    empty = [key for key, values in request.GET.lists() if all(v == "" for v in values)]
    if not getattr(request, "htmx", False) and empty and not ctx["state"].errors:
        # A filter form submitted without JavaScript: land on the clean, shareable URL.
        return HttpResponseRedirect(ctx["self_url"] or view.page_url("list"))
    if view.htmx_target() == "pca-results":
        ctx["oob_filters"] = request.htmx.trigger not in ("pca-results", "pca-filters")  # type: ignore[attr-defined]
    return region_or_page(view, ctx, "pca-results", "list_results.html")
