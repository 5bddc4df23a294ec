"""The sample's data: authors, books with chapters (the nested-save demo), and the dashboard record.

``Book.save()`` follows the nested-save pattern: inside a job it locks its chapters under the
job's key, processes them synchronously and reports progress under that key; outside a job it
launches one job for the chapter work instead of blocking the request.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from powercrud_async.models import AbstractAsyncTaskRecord


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, related_name="books", on_delete=models.CASCADE)
    year = models.PositiveIntegerField(blank=True, null=True)
    price = models.DecimalField(max_digits=7, decimal_places=2, default=10)
    needs_refresh = models.BooleanField(default=False)
    revision = models.PositiveIntegerField(
        default=0, editable=False, help_text="How many times a background job has processed it."
    )
    updated_at = models.DateTimeField(auto_now=True)

    #: The key of the chapter job the last ``save()`` outside a job launched (not stored).
    launched_task_key: str | None = None

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, skip_async: bool = False, **kwargs: Any) -> None:
        from powercrud_async.async_context import register_descendant_conflicts, skip_nested_async

        super().save(*args, **kwargs)
        chapter_ids = list(self.chapters.values_list("pk", flat=True))
        if not chapter_ids:
            return
        if skip_async or skip_nested_async():
            # Inside a job (or told not to go async): our chapters join the job's locks, the
            # work happens now, and progress is reported under the job's key.
            register_descendant_conflicts("sample.Chapter", chapter_ids)
            self.process_chapters()
        else:
            from powercrud_async.async_manager import AsyncManager
            from powercrud_async.launch import job_label

            self.launched_task_key = AsyncManager.resolve_manager(None).launch_async_task(
                "sample.jobs.refresh_book",
                self.pk,
                conflict_ids={"sample.Book": [self.pk], "sample.Chapter": chapter_ids},
                affected_objects=[str(self)],
                task_label=job_label(f"Refresh the chapters of {self}"),
            )

    def get_absolute_url(self) -> str:
        return reverse("book-detail", kwargs={"pk": self.pk})

    def process_chapters(self) -> int:
        """Touch every chapter (with an artificial delay), reporting progress as it goes.

        Inside a job that reports ``current``/``total`` per book, chapter progress fills the
        book's step, so the bar moves smoothly instead of jumping book by book.
        """
        from powercrud_async.async_context import get_current_task, update_progress

        chapters = list(self.chapters.order_by("number"))
        context = get_current_task()
        outer = (context.manager.get_progress(context.task_name) or {}) if context else {}
        base, total = outer.get("current"), outer.get("total")
        delay = float(getattr(settings, "SAMPLE_WORK_DELAY", 0.0))
        for index, chapter in enumerate(chapters, start=1):
            if delay:
                time.sleep(delay)
            chapter.revision += 1
            chapter.save(update_fields=["revision"])
            message = f"{self.title}: chapter {index}/{len(chapters)}"
            if base is not None and total:
                update_progress(message, current=base + index / len(chapters), total=total)
            else:
                update_progress(message, current=index, total=len(chapters))
        return len(chapters)


class Chapter(models.Model):
    book = models.ForeignKey(Book, related_name="chapters", on_delete=models.CASCADE)
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["book", "number"]
        constraints = [
            models.UniqueConstraint(fields=["book", "number"], name="sample_chapter_number_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.book}: {self.number}. {self.title}"


class AsyncTaskRecord(AbstractAsyncTaskRecord):
    """One row per job, written by ``SampleAsyncManager``; the dashboard reads it."""

    class Meta(AbstractAsyncTaskRecord.Meta):
        verbose_name = "async task record"
