"""The progress endpoint: its view (JSON for scripts, an HTML fragment for htmx, HTTP 286 at the
end) and its URL wiring, in both styles a project may use.

``AsyncManager.get_urlpatterns(prefix=...)`` returns one pattern that goes straight into
``urlpatterns`` (the PowerCRUD style); ``AsyncManager.get_urlconf()`` returns what ``include()``
takes, under a path of the project's choosing. Either way the endpoint is namespaced
``powercrud_async`` and answers to ``progress`` and ``async_progress``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, URLResolver, path
from django.urls.resolvers import RoutePattern
from django.views import View
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseStopPolling

from . import progress
from .exceptions import InvalidUrlPrefix
from .statuses import TaskStatus
from .visibility import can_view

APP_NAME = "powercrud_async"
URL_NAMES = ("progress", "async_progress")
ENDPOINT = "progress/"
MOUNT = "async/"

_MIXED_UP = (
    "AsyncManager.get_urlconf() is for include(): write path('async/', "
    "include(AsyncManager.get_urlconf())), or put AsyncManager.get_urlpatterns() itself in "
    "urlpatterns (no include())."
)


def endpoint_patterns(view: Callable[..., Any]) -> list[URLPattern]:
    """The endpoint under both names (ours, and the one PowerCRUD templates reverse)."""
    return [path(ENDPOINT, view, name=name) for name in URL_NAMES]


def normalize_prefix(prefix: Any) -> str:
    """``"powercrud"``, ``"/powercrud/"`` and ``"powercrud/"`` all mean ``"powercrud/"``."""
    if not isinstance(prefix, str):
        raise InvalidUrlPrefix(f"prefix must be a string like 'powercrud/', got {prefix!r}.")
    stripped = prefix.strip("/")
    if any(c in stripped for c in "<>?#") or stripped != stripped.strip():
        raise InvalidUrlPrefix(f"prefix {prefix!r} is not a plain URL path like 'powercrud/'.")
    return f"{stripped}/" if stripped else ""


class IncludeOnly(tuple):
    """``(patterns, app_name)`` for ``include()``; placed in ``urlpatterns`` by mistake it fails
    with a message that says what to write, at ``manage.py check`` and at request time."""

    __slots__ = ()

    @property
    def pattern(self) -> Any:
        raise ImproperlyConfigured(_MIXED_UP)

    def resolve(self, path: str) -> Any:
        raise ImproperlyConfigured(_MIXED_UP)

    def check(self) -> list[checks.CheckMessage]:
        return [checks.Error(_MIXED_UP, id="powercrud_async.E030")]


class ProgressResolver(URLResolver):
    """The pattern ``get_urlpatterns()`` returns: a normal resolver mounted at
    ``<prefix>async/``. Passed to ``include()`` instead (the older style), it offers its endpoint
    patterns so ``path("async/", include(AsyncManager.get_urlpatterns()))`` keeps working; with an
    explicit prefix that would drop the prefix, so that mix-up is an error."""

    def __init__(self, prefix: str, view: Callable[..., Any], explicit_prefix: bool):
        super().__init__(
            RoutePattern(prefix + MOUNT),
            endpoint_patterns(view),
            app_name=APP_NAME,
            namespace=APP_NAME,
        )
        self.explicit_prefix = explicit_prefix

    @property
    def urlpatterns(self) -> list[URLPattern]:
        if self.explicit_prefix:
            raise ImproperlyConfigured(
                f"AsyncManager.get_urlpatterns(prefix={str(self.pattern)[: -len(MOUNT)]!r}) already "
                "mounts the progress endpoint; put it straight into urlpatterns, or use "
                "include(AsyncManager.get_urlconf()) under a path of your own."
            )
        return list(self.urlconf_name)


def direct(prefix: str | None, view: Callable[..., Any]) -> ProgressResolver:
    """See ``AsyncManager.get_urlpatterns``."""
    explicit = prefix is not None
    return ProgressResolver(
        normalize_prefix("powercrud/" if prefix is None else prefix), view, explicit
    )


def for_include(view: Callable[..., Any]) -> IncludeOnly:
    """See ``AsyncManager.get_urlconf``."""
    return IncludeOnly((endpoint_patterns(view), APP_NAME))


class ProgressView(View):
    """``GET ?task_name=<key>`` → ``{task_name, status, progress, percent, ...}``."""

    http_method_names = ["get", "head", "options"]
    template_name = "powercrud_async/partials/progress.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        task_name = (
            request.GET.get("task_name") or request.GET.get("task_key") or kwargs.get("task_name")
        )
        if not task_name:
            return JsonResponse({"error": "The task_name query parameter is required."}, status=400)
        snapshot = progress.resolve(task_name)  # no SQL of ours while the job runs
        if snapshot is None or not can_view(request, snapshot.user_id, task_name):
            return JsonResponse({"error": "Unknown task.", "task_name": task_name}, status=404)
        status = TaskStatus(snapshot.status)
        code = HTMX_STOP_POLLING if status.is_terminal else 200
        data = snapshot.as_dict()
        data.pop("user_id", None)
        data.update(status_label=str(status.label), terminal=status.is_terminal)
        if getattr(request, "htmx", False):
            html = render_to_string(
                self.template_name, {"task": data, "status": status}, request=request
            )
            return HttpResponseStopPolling(html) if status.is_terminal else HttpResponse(html)
        return JsonResponse(data, status=code)


class ProgressEndpoint:
    """The progress endpoint's URL helpers as ``AsyncManager`` classmethods (PowerCRUD's API)."""

    @classmethod
    def as_view(cls, template_name: str | None = None) -> Callable[..., Any]:
        """The progress view; ``template_name`` replaces the HTMX fragment's template."""
        if template_name is None:
            return ProgressView.as_view()
        return ProgressView.as_view(template_name=template_name)

    @classmethod
    def get_url(
        cls, pattern: str = "powercrud/async/progress/", name: str = "powercrud_async_progress"
    ) -> URLPattern:
        """One un-namespaced ``path()`` for the progress view."""
        return path(pattern, cls.as_view(), name=name)

    @classmethod
    def get_urlpatterns(cls, prefix: str | None = None) -> URLResolver:
        """A pattern for ``urlpatterns`` itself: the endpoint at ``<prefix>async/progress/``
        (``prefix`` defaults to ``"powercrud/"``), named ``powercrud_async:progress`` and
        ``powercrud_async:async_progress``. Raises ``InvalidUrlPrefix`` for a bad prefix."""
        return direct(prefix, cls.as_view())

    @classmethod
    def get_urlconf(cls) -> tuple[list[URLPattern], str]:
        """For ``path("any/", include(AsyncManager.get_urlconf()))``: the endpoint at
        ``any/progress/``, with the same names as ``get_urlpatterns``."""
        return for_include(cls.as_view())
