"""``manage.py pcrud_prune_async --older-than DAYS``: delete old finished task records, their
timelines and job logs, in batches (the work is in ``powercrud_async.tracking.retention``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from powercrud_async.async_manager import AsyncManager
from powercrud_async.exceptions import InvalidManagerClass
from powercrud_async.tracking.retention import TERMINAL_VALUES, prune


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise CommandError(f"--older-than takes a number of days, got {value!r}.") from None
    if days != days or days < 0 or days == float("inf"):
        raise CommandError(f"--older-than must be a number of days >= 0, got {value!r}.")
    return days


class Command(BaseCommand):
    help = (
        "Delete finished task records older than --older-than DAYS, with their timeline events "
        "and captured logs, in batches. Queued and running tasks are never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="DAYS",
            help="Age in days (fractions allowed) since the task finished.",
        )
        parser.add_argument(
            "--status",
            action="append",
            default=[],
            metavar="STATUS",
            help=f"Only these finished statuses ({', '.join(TERMINAL_VALUES)}); repeat or "
            "comma-separate. Default: all finished tasks, plus timelines and logs of "
            "untracked tasks.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Records deleted per transaction (default 1000).",
        )
        parser.add_argument(
            "--manager", default=None, help="Dotted path of the manager (default: the project's)."
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        from powercrud_async.async_dashboard import ModelTrackingAsyncManager

        days = _days(str(options["older_than"]))
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        path = options["manager"]
        if path:
            try:
                AsyncManager.import_class(path)
            except InvalidManagerClass as exc:
                raise CommandError(f"--manager: {exc}") from exc
        manager = AsyncManager.resolve_manager(path)
        tracked = None
        if isinstance(manager, ModelTrackingAsyncManager):
            try:
                tracked = manager.get_tracking()
            except ImproperlyConfigured as exc:
                raise CommandError(f"The manager's record model is misconfigured: {exc}") from exc
        try:
            summary = prune(
                tracked,
                older_than=timedelta(days=days),
                statuses=options["status"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict(), indent=2))
            return
        verb = "Would delete" if summary.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {summary.records} record(s), {summary.events} timeline event(s) and "
            f"{summary.logs} log entr{'y' if summary.logs == 1 else 'ies'} of tasks "
            f"({', '.join(summary.statuses)}) finished before {summary.cutoff:%Y-%m-%d %H:%M %Z}."
        )
        if summary.orphan_events or summary.orphan_logs:
            self.stdout.write(
                f"{verb} {summary.orphan_events} timeline event(s) and {summary.orphan_logs} log "
                "entr(ies) of untracked tasks."
            )
        for note in summary.notes:
            self.stdout.write(note)
