"""Launch a scripted mix of jobs so the dashboard has something to show at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import ConflictError
from powercrud_async.launch import describe_conflict, launch_for_objects, lock_states
from sample.models import Book


class Command(BaseCommand):
    help = (
        "Launch successes, a failure, a long job with progress, a refused conflict, a nested "
        "parent/child job and a cancelled one. Needs a running qcluster to make progress."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--username", default="demo", help="Launch as this user (if it exists)."
        )
        parser.add_argument(
            "--long-steps",
            type=int,
            default=45,
            help="Steps of the long job (about one second each).",
        )
        parser.add_argument("--pause", type=float, default=1.0, help="Seconds per long-job step.")

    def handle(self, *args: Any, **options: Any) -> None:
        manager = AsyncManager.resolve_manager(None)
        user = get_user_model().objects.filter(username=options["username"]).first()
        free = self.free_books(manager)
        if len(free) < 7:
            raise CommandError(
                f"Only {len(free)} books are free of locks (7 needed). Run demo_setup, or wait for "
                "the running jobs to finish."
            )

        # Successes.
        self.launch(
            "success",
            manager.launch_async_task(
                "sample.jobs.count_words", user=user, affected_objects=["the whole library"]
            ),
        )
        self.launch(
            "success",
            manager.launch_async_task(
                "sample.jobs.count_words", user=None, affected_objects=["the whole library"]
            ),
        )
        # A failure (ValueError with a traceback).
        self.launch(
            "failure",
            manager.launch_async_task(
                "sample.jobs.import_catalogue", "https://catalogue.example/feed.xml", user=user
            ),
        )
        # A long job with steady progress.
        self.launch(
            "long-running",
            manager.launch_async_task(
                "sample.jobs.reindex_library",
                options["long_steps"],
                options["pause"],
                user=user,
                affected_objects=["all shelves"],
            ),
        )
        # Nested parent/child: each book's save() locks and processes its chapters in this job.
        nested = launch_for_objects(
            "sample.jobs.bulk_update_books",
            free[:3],
            manager=manager,
            user=user,
            description="nested update",
        )
        self.report("nested", nested.task_key, nested.message)
        # A conflict: lock some books, then try an overlapping job.
        holder = launch_for_objects(
            "sample.jobs.audit_prices",
            free[3:6],
            manager=manager,
            user=user,
            task_args=(options["pause"] * 2,),
            description="price audit",
        )
        self.report("locks 3 books", holder.task_key, holder.message)
        refused = launch_for_objects(
            "sample.jobs.bulk_delete_books",
            free[5:7],
            manager=manager,
            user=user,
            description="overlapping delete",
        )
        self.report("conflict (refused)", refused.task_key, refused.message)
        try:
            manager.launch_async_task(
                "sample.jobs.audit_prices",
                [free[4].pk],
                conflict_ids={"sample.Book": [free[4].pk]},
                user=user,
            )
        except ConflictError as exc:
            self.stdout.write(
                f"  {'conflict (raw)':<20} ConflictError.holders={exc.holders}: "
                f"{describe_conflict(exc, manager)}"
            )
        # A cancelled job: launched, then cancelled before a worker picks it up.
        key = manager.launch_async_task(
            "sample.jobs.reindex_library",
            600,
            1.0,
            user=user,
            affected_objects=["all shelves (cancelled)"],
        )
        outcome = manager.cancel_task(key, reason="Cancelled by demo_jobs")
        self.stdout.write(f"  {'cancelled':<20} {key} ({outcome})")
        self.stdout.write(
            self.style.SUCCESS(
                "Launched. Watch them at /sample/async-dashboard/ (a running qcluster does the work)."
            )
        )

    def free_books(self, manager: AsyncManager) -> list[Book]:
        books = list(Book.objects.order_by("pk"))
        locked = lock_states(Book, [b.pk for b in books], manager)
        return [b for b in books if str(b.pk) not in locked and b.chapters.exists()]

    def launch(self, kind: str, key: str) -> None:
        self.report(kind, key, f"Started task {key}.")

    def report(self, kind: str, key: str | None, message: str) -> None:
        self.stdout.write(f"  {kind:<20} {message}")
