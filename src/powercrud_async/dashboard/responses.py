"""htmx-aware responses shared by the dashboard pages: which region asked, the region-or-page
answer, and the after-an-action report (fragment, flash message and redirect, or a page)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django_htmx.http import push_url, trigger_client_event

TEMPLATES = "powercrud_async/dashboard/"


def htmx_target(request: HttpRequest) -> str:
    """The element an htmx request will swap (none for history restores, which want the page)."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request:
        return ""
    return str(htmx.target or "")


def polled(request: HttpRequest, region: str) -> bool:
    """Was this request the region refreshing itself (not a navigation)?"""
    htmx = getattr(request, "htmx", None)
    return bool(htmx and htmx.trigger == region)


def region_or_page(
    view: Any,
    context: dict[str, Any],
    region: str,
    partial: str,
    *,
    push: bool = True,
    page: str | None = None,
) -> HttpResponse:
    """Only ``region`` when htmx asks for it (its URL pushed unless it polled itself), else the page."""
    if view.htmx_target() != region:
        return view.render(context, page)
    response: HttpResponse = view.render(context, TEMPLATES + "partials/" + partial)
    if push and not view.polled(region):
        push_url(response, str(context["self_url"]))
    return response


def flash(request: HttpRequest, level: int, text: str) -> bool:
    """Queue ``text`` for the next page; ``False`` when the messages framework is not on."""
    if not (apps.is_installed("django.contrib.messages") and hasattr(request, "_messages")):
        return False
    from django.contrib import messages

    messages.add_message(request, level, text)
    return True


def report(view: Any, context: dict[str, Any], name: str, back: str, level: int) -> HttpResponse:
    """After an action: htmx gets the report fragment and refreshes the page under it; otherwise
    the summary is flashed and the browser goes back (303), or, without messages, sees a page."""
    if getattr(view.request, "htmx", False):
        response: HttpResponse = view.render(context, f"{TEMPLATES}partials/{name}.html")
        trigger_client_event(response, "pca-refresh")
        return response
    if flash(view.request, level, str(context["summary"])):
        return HttpResponseRedirect(back, status=303)
    return view.render(context, f"{TEMPLATES}{name}.html")
