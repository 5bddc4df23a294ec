"""Admin launch sites: ``async_admin_action`` (the package helper) and the seed's hand-written
action, side by side."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseBase

from powercrud_async.exceptions import ConflictError
from powercrud_async.launch import AsyncMixin, async_admin_action, describe_conflict

from .async_helpers import BooksBusy, launch_custom_task
from .models import AsyncTaskRecord, Author, Book, Chapter


@admin.action(description="Rebuild books in background")
def rebuild_books(modeladmin, request, queryset):  # type: ignore[no-untyped-def]
    launch_custom_task(user=request.user, affected_objects=queryset)


class ChapterInline(admin.TabularInline):
    model = Chapter
    extra = 0
    fields = ["number", "title", "revision"]
    readonly_fields = ["revision"]


@admin.register(Book)
class BookAdmin(AsyncMixin, admin.ModelAdmin):
    list_display = ["title", "author", "year", "price", "needs_refresh", "revision"]
    list_filter = ["needs_refresh", "author"]
    search_fields = ["title", "author__name"]
    inlines = [ChapterInline]
    actions = [
        async_admin_action(
            "sample.jobs.bulk_update_books",
            description="Update selected books in background",
            permissions=["change"],
        ),
        async_admin_action(
            "sample.jobs.bulk_delete_books",
            description="Delete selected books in background",
            permissions=["delete"],
        ),
        rebuild_books,
    ]

    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponseBase | None:
        """The seed's action raises when the books are busy: show that as a message."""
        try:
            return super().response_action(request, queryset)
        except BooksBusy as exc:
            self.message_user(request, f"Not started: {exc}", messages.ERROR)
        except ConflictError as exc:
            self.message_user(request, describe_conflict(exc), messages.ERROR)
        return None

    def save_model(self, request: HttpRequest, obj: Book, form: Any, change: bool) -> None:
        try:
            obj.save()
        except ConflictError as exc:
            self.message_user(
                request,
                f"Saved, but the chapter refresh was not started. {describe_conflict(exc)}",
                messages.WARNING,
            )
            return
        if obj.launched_task_key:
            self.message_user(request, f"Chapter refresh started as task {obj.launched_task_key}.")


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(AsyncTaskRecord)
class AsyncTaskRecordAdmin(admin.ModelAdmin):
    """Read-only: records are written by the manager, not by people."""

    list_display = ["task_name", "status", "user_label", "message", "updated_at"]
    list_filter = ["status"]
    search_fields = ["task_name", "user_label", "affected_objects"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
