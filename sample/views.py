"""The sample's pages: home, the book CRUD with background bulk actions, a task page, and the
seed's "regular view" launch site."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views import View
from django.views.decorators.http import require_POST
from neapolitan.views import CRUDView, Role

from powercrud_async.exceptions import ConflictError
from powercrud_async.launch import AsyncMixin, LaunchResult, describe_conflict
from powercrud_async.mixins import PowerCRUDMixin
from powercrud_async.statuses import TaskStatus
from powercrud_async.visibility import can_view

from .async_helpers import BooksBusy, launch_custom_task
from .models import AsyncTaskRecord, Book, Chapter

DASHBOARD_NAMESPACE = "powercrud_async_dashboard"


def task_url(task_key: str, user: Any = None) -> str:
    """Where a task key links to: the dashboard's job page for staff (who may open the
    dashboard by default), the sample's own task page for everyone else."""
    if user is None or getattr(user, "is_staff", False):
        try:
            return reverse(f"{DASHBOARD_NAMESPACE}:tasks-detail", kwargs={"task_key": task_key})
        except NoReverseMatch:
            pass
    return reverse("task-detail", kwargs={"task_key": task_key})


def dashboard_url() -> str | None:
    try:
        return reverse(f"{DASHBOARD_NAMESPACE}:tasks-overview")
    except NoReverseMatch:
        return None


def progress_context(request: HttpRequest, manager: Any, task_key: str) -> dict[str, Any] | None:
    """What the package's progress partial renders, for the first paint without JavaScript;
    ``None`` for an unknown task or one this user may not see (same rule as the endpoint)."""
    data = manager.get_progress(task_key)
    if data is None or not can_view(request, data.get("user_id"), task_key):
        return None
    status = (
        TaskStatus(data["status"]) if data["status"] in TaskStatus.values else TaskStatus.UNKNOWN
    )
    return {**data, "status_label": str(status.label), "terminal": status.is_terminal}


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "book_count": Book.objects.count(),
        "chapter_count": Chapter.objects.count(),
        "record_count": AsyncTaskRecord.objects.count(),
        "running": AsyncTaskRecord.objects.filter(status=TaskStatus.IN_PROGRESS).count(),
        "dashboard_url": dashboard_url(),
    }
    return render(request, "sample/home.html", context)


class BookAccessMixin(LoginRequiredMixin):
    """Signed-in users only; each role needs the matching model permission."""

    role: Role
    permission_for_role = {
        Role.LIST: "view",
        Role.DETAIL: "view",
        Role.CREATE: "add",
        Role.UPDATE: "change",
        Role.DELETE: "delete",
    }

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.user.is_authenticated:
            action = self.permission_for_role[self.role]
            if not request.user.has_perm(f"sample.{action}_book"):
                raise PermissionDenied(f"You may not {action} books.")
        return super().dispatch(request, *args, **kwargs)


class BookCRUDView(BookAccessMixin, AsyncMixin, CRUDView):
    """Books: list with selection and background bulk actions; locked rows say who holds them."""

    model = Book
    fields = ["title", "author", "year", "price", "needs_refresh"]
    paginate_by = 25

    def get_queryset(self) -> QuerySet[Book]:
        queryset = (
            Book.objects.select_related("author")
            .annotate(chapter_count=Count("chapters"))
            .order_by("title", "pk")
        )
        query = self.request.GET.get("q", "").strip()
        if query and self.role == Role.LIST:
            queryset = queryset.filter(Q(title__icontains=query) | Q(author__name__icontains=query))
        return queryset

    def get_template_names(self) -> list[str]:
        if self.role == Role.LIST and getattr(self.request, "htmx", False):
            return ["sample/partials/book_table.html"]
        return super().get_template_names()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.role == Role.LIST:
            rows = list(self.object_list)
            locks = self.get_lock_states(rows)
            for book in rows:
                state = locks.get(str(book.pk))
                book.lock = state
                book.lock_url = task_url(state.task_key, self.request.user) if state else None
            context["rows"] = rows
            context["any_locked"] = bool(locks)
            context["query"] = self.request.GET.get("q", "")
            watch = self.request.GET.get("watch", "")
            if watch:
                context["watch"] = progress_context(self.request, self.get_async_manager(), watch)
                context["watch_key"] = watch
                context["watch_url"] = task_url(watch, self.request.user)
            context["table_url"] = self.request.get_full_path()
            context["refresh"] = bool(getattr(self.request, "htmx", False))
        if self.object is not None and self.role != Role.LIST:
            state = self.get_lock_states([self.object]).get(str(self.object.pk))
            context["lock"] = state
            context["lock_url"] = task_url(state.task_key, self.request.user) if state else None
        return context

    def _refuse_if_locked(self, book: Book) -> HttpResponse | None:
        state = self.get_lock_states([book]).get(str(book.pk))
        if state is None:
            return None
        messages.error(
            self.request,
            format_html(
                '"{}" is {}; try again when <a href="{}">that task</a> has finished.',
                book.title,
                str(state),
                task_url(state.task_key, self.request.user),
            ),
        )
        return HttpResponseRedirect(reverse("book-detail", kwargs={"pk": book.pk}))

    def form_valid(self, form: Any) -> HttpResponse:
        if form.instance.pk is not None:
            state = self.get_lock_states([form.instance]).get(str(form.instance.pk))
            if state is not None:  # refused: keep what the user typed, on the form, with the reason
                form.add_error(
                    None,
                    format_html(
                        'Not saved: "{}" is {}. Your changes are kept below; save again when '
                        '<a href="{}">that task</a> has finished.',
                        form.instance.title,
                        str(state),
                        task_url(state.task_key, self.request.user),
                    ),
                )
                return self.form_invalid(form)
        try:
            self.object = form.save()
        except ConflictError as exc:
            self.object = form.instance
            messages.warning(
                self.request,
                f"Saved. The chapter refresh was not started: {describe_conflict(exc)}",
            )
            return HttpResponseRedirect(self.get_success_url())
        key = self.object.launched_task_key
        if key:
            messages.success(
                self.request,
                format_html(
                    'Saved. Its chapters are being refreshed by <a href="{}">task {}</a>.',
                    task_url(key, self.request.user),
                    key,
                ),
            )
        else:
            messages.success(self.request, f'Saved "{self.object}".')
        return HttpResponseRedirect(self.get_success_url())

    def process_deletion(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        if refusal := self._refuse_if_locked(self.object):
            return refusal
        title = str(self.object)
        self.object.delete()
        messages.success(request, f'Deleted "{title}".')
        return HttpResponseRedirect(self.get_success_url())


class BookBulkView(LoginRequiredMixin, AsyncMixin, View):
    """POST: launch "update in background" or "delete in background" over the selected books."""

    http_method_names = ["post"]
    model = Book
    actions = {
        "update": ("sample.jobs.bulk_update_books", "change", "update"),
        "delete": ("sample.jobs.bulk_delete_books", "delete", "delete"),
    }

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        if action not in self.actions:
            messages.error(request, "Choose update or delete.")
            return self._back(request)
        func, permission, verb = self.actions[action]
        if not request.user.has_perm(f"sample.{permission}_book"):
            raise PermissionDenied(f"You may not {verb} books.")
        try:
            ids = sorted({int(pk) for pk in request.POST.getlist("selected")})
        except ValueError:
            messages.error(request, "The selection was not understood; nothing was started.")
            return self._back(request)
        books = Book.objects.filter(pk__in=ids)
        task_kwargs: dict[str, Any] = {}
        if action == "update":
            try:
                task_kwargs["price_percent"] = float(request.POST.get("price_percent") or 0)
            except ValueError:
                messages.error(request, "The price change must be a number (percent).")
                return self._back(request)
        result = self.launch_async(
            func, books, description=f"{verb} in background", task_kwargs=task_kwargs
        )
        self._report(request, result)
        return self._back(request, watch=result.task_key)

    def _report(self, request: HttpRequest, result: LaunchResult) -> None:
        if result.ok:
            assert result.task_key is not None
            messages.success(
                request,
                format_html(
                    '{} <a href="{}">Follow the task</a>.',
                    result.message,
                    task_url(result.task_key, request.user),
                ),
            )
            return
        if result.holders:
            messages.error(
                request,
                refusal_with_titles(result, self.get_async_manager(), request.user),
                extra_tags="refusal",
            )
        else:
            messages.error(request, result.message)

    def _back(self, request: HttpRequest, watch: str | None = None) -> HttpResponse:
        target = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("book-list")
        if watch:
            base, _, query = target.partition("?")
            params = [(k, v) for k, v in _parse(query) if k != "watch"] + [("watch", watch)]
            target = f"{base}?{urlencode(params)}"
        return HttpResponseRedirect(target)


def refusal_with_titles(result: LaunchResult, manager: Any, user: Any) -> str:
    """ "Not started: “Dune”, “Emma” are locked by task 1a2b…, 35%." — books by title, not by id."""
    pks = result.conflicts.get("sample.book", {})
    titles = dict(
        Book.objects.filter(pk__in=[int(pk) for pk in pks if str(pk).isdigit()]).values_list(
            "pk", "title"
        )
    )
    by_holder: dict[str, list[str]] = {}
    for pk, holder in pks.items():
        by_holder.setdefault(holder, []).append(
            titles.get(int(pk), f"book {pk}") if str(pk).isdigit() else str(pk)
        )
    parts = []
    for holder, names in sorted(by_holder.items()):
        snapshot = manager.get_progress(holder) or {}
        percent = snapshot.get("percent")
        how_far = (
            f", {percent:.0f}%"
            if percent is not None
            else (", queued" if snapshot.get("status") == TaskStatus.PENDING else "")
        )
        parts.append(
            format_html(
                '{} {} locked by <a href="{}">task {}</a>{}',
                format_html_join(", ", "“{}”", ((name,) for name in sorted(names))),
                "is" if len(names) == 1 else "are",
                task_url(holder, user),
                holder[:8] + "…",
                how_far,
            )
        )
    return format_html(
        "Not started: {}. Try again when that task has finished.",
        format_html_join("; ", "{}", ((p,) for p in parts)),
    )


def _parse(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


@login_required
def task_detail(request: HttpRequest, task_key: str) -> HttpResponse:
    """A small page for one task: live progress and its record (the dashboard has the rest)."""
    record = AsyncTaskRecord.objects.filter(task_name=task_key).first()
    manager = AsyncMixin().get_async_manager()
    progress = progress_context(request, manager, task_key)
    if record is None and progress is None:
        raise Http404("No such task.")
    info = manager.get_task_info(task_key)
    if info is not None:
        allowed = can_view(request, info.user_id, task_key)
    else:  # purged from the registry: only the record is left to judge by
        allowed = request.user.is_staff or (
            record is not None and record.user_label == request.user.get_username()
        )
    if not allowed:
        raise Http404("No such task.")
    return render(
        request,
        "sample/task_detail.html",
        {
            "task_key": task_key,
            "record": record,
            "progress": progress,
            "dashboard_url": dashboard_url(),
            "task_url": task_url(task_key),
        },
    )


# -- seed 000 section 3: the dashboard declared over the sample's record model --------------------


class AsyncTaskRecordCRUDView(PowerCRUDMixin, CRUDView):
    model = AsyncTaskRecord
    namespace = "async"
    use_htmx = True
    use_modal = True
    fields = ["task_name", "status", "user_label", "updated_at"]
    detail_fields = [
        "task_name",
        "status",
        "message",
        "progress_payload",
        "result_payload",
        "completed_at",
        "failed_at",
    ]


#: The name seed 000 section 3 uses for the same class.
AsyncTaskRecordView = AsyncTaskRecordCRUDView


# -- the seed's "regular view" launch site ---------------------------------------------------------


def _refusal_as_message(view: Any) -> Any:
    """Show a refusal from ``launch_custom_task`` as a message instead of an error page."""

    def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
        try:
            return view(request, pk)
        except BooksBusy as exc:
            messages.error(request, f"Not started: {exc}")
        except ConflictError as exc:
            messages.error(request, describe_conflict(exc))
        return redirect("book-detail", pk=pk)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@require_POST
@login_required
@permission_required("sample.change_book", raise_exception=True)
@_refusal_as_message
def start_rebuild(request, pk):  # type: ignore[no-untyped-def]
    book = get_object_or_404(Book, pk=pk)
    key = launch_custom_task(user=request.user, affected_objects=[book])
    messages.success(
        request,
        format_html(
            'Rebuilding “{}” in background. <a href="{}">Follow the task</a>.',
            book.title,
            task_url(key, request.user),
        ),
    )
    return HttpResponseRedirect(f"{reverse('book-list')}?{urlencode({'watch': key})}")
