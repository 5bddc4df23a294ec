"""The "management command" launch site: rebuild every book flagged ``needs_refresh``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from powercrud_async.exceptions import ConflictError
from sample.async_helpers import BooksBusy, launch_custom_task
from sample.models import Book


class Command(BaseCommand):
    help = "Launch one background job that rebuilds the books flagged needs_refresh."

    def handle(self, *args: Any, **options: Any) -> None:
        books = Book.objects.filter(needs_refresh=True)
        if not books.exists():
            self.stdout.write("No book needs a refresh; nothing was launched.")
            return
        try:
            key = launch_custom_task(user=None, affected_objects=books)
        except (BooksBusy, ConflictError) as exc:
            raise CommandError(f"Not started: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Launched task {key} for {books.count()} books."))
