"""``manage.py pcrud_cleanup_async``: reclaim dead jobs and stale locks, print what was done."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from powercrud_async.async_manager import AsyncManager
from powercrud_async.schedules import ensure_cleanup_schedule


class Command(BaseCommand):
    help = "Reclaim the locks and records of dead or finished async tasks (never live ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be done; change nothing."
        )
        parser.add_argument(
            "--manager", default=None, help="Dotted path of the manager (default: the project's)."
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Also create/update the django-q2 Schedule running cleanup every CLEANUP_SCHEDULE_INTERVAL.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        manager = AsyncManager.resolve_manager(options["manager"])
        summary = manager.cleanup_completed_tasks(dry_run=options["dry_run"])
        if options["schedule"] and not options["dry_run"]:
            schedule = ensure_cleanup_schedule()
            summary["schedule"] = {"name": schedule.name, "minutes": schedule.minutes}
        if options["json"]:
            self.stdout.write(json.dumps(summary, default=str, indent=2))
        else:
            self._report(summary, options["dry_run"])
        errors = summary.get("errors") or []
        if errors:
            # A non-zero exit: a scheduler or operator must see that cleanup is incomplete.
            raise CommandError(
                f"Cleanup incomplete: {len(errors)} step(s) failed (the lock store or cache may be "
                f"down); what is reported above was done. First failure: {errors[0]}"
            )

    def _report(self, summary: dict[str, Any], dry_run: bool) -> None:
        prefix = "Would reclaim" if dry_run else "Reclaimed"
        counts = summary["counts"]
        self.stdout.write(
            f"{prefix} {counts['reclaimed']} dead task(s), released locks of "
            f"{counts['orphaned_locks']} finished task(s), sent the final events of "
            f"{counts['redelivered']} task(s) whose worker died, purged {counts['purged']} expired "
            f"record(s); {counts['overdue']} overdue, {counts['kept']} live task(s) untouched."
        )
        for item in summary["reclaimed"]:
            self.stdout.write(f"  {item['task_name']}: {item['reason']}")
        for name in summary["redelivered"]:
            self.stdout.write(
                f"  {name}: final events sent again (its worker died after ending it)"
            )
        for item in summary["overdue"]:
            self.stdout.write(f"  {item['task_name']} (overdue): {item['reason']}")
        for item in summary["changed"]:
            self.stdout.write(f"  {item['task_name']} (left alone: it changed since it was judged)")
        for error in summary["errors"]:
            self.stderr.write(f"  failed to {error}")
        if "schedule" in summary:
            self.stdout.write(
                f"Schedule {summary['schedule']['name']!r} every {summary['schedule']['minutes']} min."
            )
