"""Job functions the sample launches. Workers import them by dotted path, so they live at module
level and take primary keys, never model instances (django-q2 pickles arguments)."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from powercrud_async.async_context import register_descendant_conflicts, update_progress

logger = logging.getLogger("sample.jobs")


def _delay(factor: float = 1.0) -> None:
    seconds = float(getattr(settings, "SAMPLE_WORK_DELAY", 0.0)) * factor
    if seconds:
        time.sleep(seconds)


def bulk_update_books(
    ids: list[int], *, price_percent: float = 0, task_key: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The book list's "update in background": reprice, clear ``needs_refresh``, save.

    Each ``save()`` runs inside this job, so chapters are locked and processed here, under this
    task's key, and the progress bar covers them.
    """
    from sample.models import Book

    books = list(Book.objects.filter(pk__in=ids).order_by("title"))
    factor = Decimal(1) + Decimal(str(price_percent)) / 100
    chapters = 0
    for index, book in enumerate(books):
        update_progress(
            f"Book {index + 1}/{len(books)}: {book.title}", current=index, total=len(books)
        )
        if price_percent:
            book.price = (book.price * factor).quantize(Decimal("0.01"))
        book.needs_refresh = False
        book.revision += 1
        book.save()
        chapters += book.chapters.count()
        logger.info("Updated %s (revision %s)", book.title, book.revision)
    update_progress(f"Updated {len(books)} books", current=len(books), total=len(books))
    return {"updated": len(books), "chapters": chapters, "missing": len(set(ids)) - len(books)}


def bulk_delete_books(
    ids: list[int], *, task_key: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The book list's "delete in background": chapters first (locked), then the book."""
    from sample.models import Book, Chapter

    books = list(Book.objects.filter(pk__in=ids).order_by("title"))
    for index, book in enumerate(books, start=1):
        chapter_ids = list(book.chapters.values_list("pk", flat=True))
        register_descendant_conflicts("sample.Chapter", chapter_ids)
        _delay(2)
        with transaction.atomic():
            Chapter.objects.filter(pk__in=chapter_ids).delete()
            book.delete()
        update_progress(
            f"Deleted {index}/{len(books)}: {book.title}", current=index, total=len(books)
        )
    return {"deleted": len(books)}


def refresh_book(book_id: int) -> dict[str, Any]:
    """What ``Book.save()`` launches outside a job: the same save, now inside one."""
    from sample.models import Book

    book = Book.objects.get(pk=book_id)
    book.save()
    return {"book": book_id, "chapters": book.chapters.count()}


def rebuild_books(
    *book_ids: int, task_key: str | None = None, manager_class: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The worker of the launch-site examples (seed 002's ``rebuild_project``, for books)."""
    from powercrud_async.async_manager import AsyncManager
    from sample.models import Book

    manager = AsyncManager.resolve_manager(manager_class)
    books = list(Book.objects.filter(pk__in=book_ids).order_by("title"))
    for idx, book in enumerate(books, start=1):
        _delay()
        Book.objects.filter(pk=book.pk).update(needs_refresh=False, revision=book.revision + 1)
        manager.update_progress(
            task_key, f"Book {idx}/{len(books)}: {book.title}", current=idx, total=len(books)
        )
    return {"books": [b.pk for b in books], "extra": kwargs}


# -- the scripted demo (demo_jobs) ----------------------------------------------------------------


def count_words(*, task_key: str | None = None) -> dict[str, int]:
    """A quick success."""
    from sample.models import Book, Chapter

    update_progress("Counting", current=0, total=1)
    result = {"books": Book.objects.count(), "chapters": Chapter.objects.count()}
    update_progress("Counted", current=1, total=1)
    return result


def import_catalogue(source: str) -> None:
    """A failure, with a traceback and a clear error in the dashboard."""
    update_progress(f"Fetching {source}")
    _delay()
    raise ValueError(f"The catalogue feed at {source} returned HTTP 503")


def reindex_library(steps: int = 60, pause: float = 1.0, *, task_key: str | None = None) -> str:
    """A long job with steady progress (and the one the demo cancels)."""
    for step in range(1, steps + 1):
        time.sleep(pause)
        update_progress(f"Indexed shelf {step}/{steps}", current=step, total=steps)
    return f"indexed {steps} shelves"


def audit_prices(ids: list[int], pause: float = 0.5) -> dict[str, Any]:
    """A locked job over some books, so a second launch over them is refused."""
    from sample.models import Book

    books = list(Book.objects.filter(pk__in=ids))
    for index, book in enumerate(books, start=1):
        time.sleep(pause)
        update_progress(f"Checked {book.title}", current=index, total=len(books))
    return {"checked": len(books), "total": str(sum((b.price for b in books), Decimal(0)))}
