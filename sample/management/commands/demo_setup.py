"""Prepare the sample: tables, the demo user, and a small library. Safe to run again."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from powercrud_async.schedules import ensure_cleanup_schedule
from sample.demo_data import BOOKS, CHAPTER_WORDS
from sample.models import Author, Book, Chapter

DEFAULT_USERNAME = "demo"
DEFAULT_PASSWORD = "demo-password"  # noqa: S105 - a local demo account, printed on purpose


class Command(BaseCommand):
    help = (
        "Migrate, create the cache table, the demo user, the demo books, the cleanup schedule and "
        "a demo schedule (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--username", default=os.environ.get("SAMPLE_USERNAME", DEFAULT_USERNAME)
        )
        parser.add_argument(
            "--password", default=os.environ.get("SAMPLE_PASSWORD", DEFAULT_PASSWORD)
        )
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Set the password of an existing demo user again (it is set only when created, so a "
            "restart keeps you logged in).",
        )
        parser.add_argument(
            "--skip-migrate",
            action="store_true",
            help="Do not run migrate/createcachetable first (they are no-ops when up to date).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["skip_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("createcachetable", verbosity=0)
        username, password = options["username"], options["password"]
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created or options["reset_password"] or not user.has_usable_password():
                user.set_password(password)  # changing it logs every browser out: only when asked
                reset = True
            else:
                reset = False
            user.is_staff = True
            user.is_superuser = True
            user.save()
            books_created, chapters_created = self.seed_library()
            # The running qcluster reclaims what a dead worker leaves behind (locks, records).
            schedule = ensure_cleanup_schedule()
            audit = self.ensure_audit_schedule()
        self.stdout.write(
            f"Demo library: {Book.objects.count()} books, {Chapter.objects.count()} chapters "
            f"({books_created} books and {chapters_created} chapters added now)."
        )
        self.stdout.write(f"Cleanup schedule {schedule.name!r}: every {schedule.minutes} min.")
        self.stdout.write(
            f"Demo schedule {audit.name!r}: every {audit.minutes} min, under the books' locks."
        )
        if reset:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo user {'created' if created else 'ready'}. Log in with\n"
                    f"    username: {username}\n    password: {password}"
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo user ready (password unchanged, so you stay logged in). Log in with\n"
                    f"    username: {username}\n    password: the one set when it was created "
                    f"(run demo_setup --reset-password to set it to {password!r} again)"
                )
            )

    def ensure_audit_schedule(self) -> Any:
        """A recurring job on the Schedules page: it runs through the manager, so a run finding
        its books locked by another job is skipped and recorded, never run unlocked."""
        from django_q.models import Schedule

        from sample.async_manager import SampleAsyncManager

        name = "Audit prices (first three books)"
        found = Schedule.objects.filter(name=name).first()
        if found is not None:
            return found
        ids = list(Book.objects.order_by("pk").values_list("pk", flat=True)[:3])
        return SampleAsyncManager().schedule_async_task(
            "sample.jobs.audit_prices",
            ids,
            name=name,
            schedule_type=Schedule.MINUTES,
            minutes=30,
            conflict_ids={"sample.Book": ids},
            affected_objects=f"Books {', '.join(map(str, ids))}",
        )

    def seed_library(self) -> tuple[int, int]:
        books_created = chapters_created = 0
        for index, (title, author_name, year, price, chapter_count) in enumerate(BOOKS):
            author, _ = Author.objects.get_or_create(name=author_name)
            book = Book.objects.filter(title=title, author=author).first()
            if book is None:
                book = Book(
                    title=title,
                    author=author,
                    year=year,
                    price=Decimal(price),
                    needs_refresh=index % 3 == 0,
                )
                book.save(skip_async=True)  # no chapters yet: nothing to launch
                books_created += 1
            for number in range(1, chapter_count + 1):
                _, made = Chapter.objects.get_or_create(
                    book=book,
                    number=number,
                    defaults={"title": CHAPTER_WORDS[(number - 1) % len(CHAPTER_WORDS)]},
                )
                chapters_created += made
        return books_created, chapters_created
