"""The export endpoint: the jobs the list shows (every page), streamed as CSV or JSON."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers

from ..export import NothingToExport, csv_rows, export_columns, json_rows
from . import jobs

logger = logging.getLogger("powercrud_async.dashboard")
FORMATS = {"csv": (csv_rows, "text/csv; charset=utf-8"), "json": (json_rows, "application/json")}


def show(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
    """``?format=csv|json`` plus the list's filters; at most ``EXPORT_LIMIT`` rows."""
    fmt = (request.GET.get("format") or "csv").lower()
    if fmt not in FORMATS:
        return HttpResponseBadRequest("format must be csv or json.")
    cols = view.get_columns()
    qs = jobs.selection(view, view.list_state(cols), cols)
    try:
        names = export_columns(view.schema, view.EXPORT_FIELDS)
    except NothingToExport as exc:
        logger.error("Export refused: %s", exc)
        return HttpResponse(
            f"Export is not configured: {exc}", status=500, content_type="text/plain"
        )
    limit = view.config["EXPORT_LIMIT"] or None
    rows = qs.values_list(*[name for _, name in names])
    if limit:
        rows = rows[:limit]
    headers = [logical for logical, _ in names]
    write, content_type = FORMATS[fmt]
    response = StreamingHttpResponse(write(headers, rows), content_type=content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="jobs-{view.now.strftime("%Y%m%d-%H%M%S")}.{fmt}"'
    )
    add_never_cache_headers(response)
    return response
