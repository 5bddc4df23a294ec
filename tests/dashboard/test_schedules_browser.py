"""The Schedules page in a real Chromium (Playwright) against ``live_server``.

Screenshots go to ``test-artifacts/screenshots/`` (``docs/img/`` holds copies for the docs)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import Schedule

from powercrud_async.lifecycle import recurring
from powercrud_async.models import AuditEntry, ScheduleState
from tests.dashboard.conftest import SCREENSHOTS
from tests.dashboard.managers import DashboardManager
from tests.testapp.models import Project

pytestmark = [
    pytest.mark.browser,
    pytest.mark.urls("tests.dashboard.urls"),
    pytest.mark.django_db(transaction=True),
]


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def demo() -> dict[str, Schedule]:
    """A realistic set: ours (interval, cron, daily), a paused one, a skipped run, a plain one."""
    manager = DashboardManager()
    now = timezone.now()
    project = Project.objects.create(name="Apollo")
    made = {
        "sync": manager.schedule_async_task(
            "tests.testapp.tasks.add",
            1,
            2,
            name="Sync invoices",
            schedule_type="I",
            minutes=15,
            next_run=now + timedelta(minutes=7),
        ),
        "rebuild": manager.schedule_async_task(
            "tests.testapp.tasks.seed_worker",
            project.pk,
            name="Rebuild Apollo",
            schedule_type="C",
            cron="0 3 * * *",
            conflict_ids={"testapp.Project": [project.pk]},
        ),
        "report": manager.schedule_async_task(
            "tests.testapp.tasks.echo",
            "weekly",
            name="Weekly report",
            schedule_type="C",
            cron="0 22 * * 1-5",
            repeats=12,
        ),
        "digest": manager.schedule_async_task(
            "tests.testapp.tasks.echo",
            name="Daily digest",
            schedule_type="D",
            next_run=now + timedelta(hours=9),
        ),
        "legacy": Schedule.objects.create(
            name="Legacy cleanup",
            func="tests.testapp.tasks.echo",
            args="1",
            schedule_type="H",
            next_run=now + timedelta(minutes=42),
        ),
    }
    recurring.pause_schedule(made["digest"].pk)
    ScheduleState.objects.filter(schedule=made["rebuild"]).delete()
    ScheduleState.objects.create(
        schedule=made["rebuild"],
        last_task="5f0c2a8e-skipped",
        last_outcome="blocked",
        last_run_at=now - timedelta(hours=3),
        last_message="Scheduled run of 'Rebuild Apollo' skipped: objects locked by task nightly-import.",
    )
    return made


@pytest.mark.parametrize("width,height", [(1400, 1000), (480, 900)])
def test_schedule_screenshots(browse: Any, width: int, height: int) -> None:
    from playwright.sync_api import expect

    made = demo()
    page = browse(width, height)
    page.goto("/tasks/schedules/")
    expect(page.locator("#pca-schedules-results")).to_contain_text(
        "cron 0 3 * * * — at 03:00 every day"
    )
    expect(page.locator("#pca-schedules-results")).to_contain_text("Skipped")
    shoot(page, f"schedules-{width}x{height}")
    # The run-now button of each row is visible without scrolling sideways.
    button = page.locator(f'tr[data-schedule="{made["sync"].pk}"] button[value="run"]')
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    page.goto("/tasks/")
    panel = page.locator('section[aria-labelledby="pca-schedules-title"]')
    expect(panel).to_contain_text("No cluster is running")
    expect(panel).to_contain_text("objects locked by task nightly-import")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / f"schedules-overview-{width}x{height}.png"))


def test_run_now_pause_and_remove_from_the_page(browse: Any) -> None:
    from playwright.sync_api import expect

    made = demo()
    page = browse()
    page.goto("/tasks/schedules/?state=active")
    row = page.locator(f'tr[data-schedule="{made["sync"].pk}"]')
    row.locator('button[value="run"]').click()
    expect(page.locator("#pca-flash")).to_contain_text("Ran 1 schedule.")
    expect(page.locator("#pca-flash")).to_contain_text("→ job")
    expect(row.locator(".pca-col-last a")).to_have_attribute("href", re.compile(r"^/tasks/jobs/"))
    # Pause from the row menu: the filters stay, the row leaves the "active" view.
    row.locator("summary").click()
    row.locator('button[value="pause"]').click()
    expect(page.locator("#pca-flash")).to_contain_text("Paused 1 schedule.")
    expect(page.locator(f'tr[data-schedule="{made["sync"].pk}"]')).to_have_count(0)
    expect(page).to_have_url(re.compile(r"state=active"))
    assert Schedule.objects.get(pk=made["sync"].pk).repeats == 0
    # Bulk remove asks in the page first, naming what goes.
    page.goto("/tasks/schedules/?q=Legacy")
    page.locator("[data-pca-select-all]").check()
    expect(page.locator("[data-pca-live-text]")).to_have_text(re.compile("Paused while 1"))
    page.locator('#pca-bulk button[value="remove"]').click()
    expect(page.locator("[data-pca-confirm]")).to_contain_text("Legacy cleanup")
    shoot(page, "schedules-confirm-1400x1000")
    page.locator("[data-pca-confirm] button[type=submit]").click()
    expect(page.locator("#pca-flash")).to_contain_text("Removed 1 schedule.")
    assert not Schedule.objects.filter(name="Legacy cleanup").exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "schedule-run",
        "schedule-pause",
        "schedule-remove",
    ]


def test_form_shows_clear_errors(browse: Any, staff: Any) -> None:
    from django.contrib.auth.models import Permission
    from playwright.sync_api import expect

    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_q", codename__in=["add_schedule", "change_schedule"]
        )
    )
    page = browse(1400, 1000)
    page.goto("/tasks/schedules/new/")
    page.fill("#id_name", "Nightly rebuild")
    page.fill("#id_func", "tests.testapp.tasks.add")
    page.select_option("#id_schedule_type", "C")
    page.fill("#id_cron", "0 27 * * *")
    page.click("button[type=submit]")
    expect(page.locator(".pca-field-error")).to_contain_text("not a valid cron expression")
    shoot(page, "schedules-form-error-1400x1000")
    assert not Schedule.objects.exists()
    page.fill("#id_cron", "0 3 * * *")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/tasks/schedules/$"))
    expect(page.locator("#pca-schedules-results")).to_contain_text("at 03:00 every day")


def test_the_page_works_without_javascript(browse: Any) -> None:
    from playwright.sync_api import expect

    made = demo()
    page = browse(1400, 1000, javascript=False)
    page.goto("/tasks/schedules/?trigger=C")
    expect(page.locator("#pca-schedules-results")).to_contain_text("Weekly report")
    expect(page.locator("#pca-schedules-results")).not_to_contain_text("Sync invoices")
    page.locator(f'tr[data-schedule="{made["report"].pk}"] button[value="run"]').click()
    expect(page.locator(".pca-messages")).to_contain_text("Ran 1 schedule.")
    expect(page).to_have_url(re.compile(r"/tasks/schedules/\?trigger=C$"))
