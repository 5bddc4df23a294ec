"""Pagination and the links between pages, shared by every paged dashboard page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import QuerySet


def link(base: str, query: Mapping[str, Any]) -> str:
    """``base`` with ``query`` as its query string; empty values are left out so links stay short."""
    pairs = {key: value for key, value in query.items() if value not in ("", None)}
    return base + ("?" + urlencode(pairs) if pairs else "")


def paged(
    items: QuerySet[Any] | Sequence[Any],
    per_page: int,
    number: Any,
    base: str,
    query: Mapping[str, Any],
) -> dict[str, Any]:
    """One page of ``items`` and its previous/next links (which keep the page's filters)."""
    paginator = Paginator(items, per_page)
    page = paginator.get_page(number or 1)
    return {
        "page_obj": page,
        "paginator": paginator,
        "prev_url": link(base, {**query, "page": page.number - 1}) if page.has_previous() else "",
        "next_url": link(base, {**query, "page": page.number + 1}) if page.has_next() else "",
    }
