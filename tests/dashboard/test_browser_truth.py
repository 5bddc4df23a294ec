"""The dashboard tells the truth at a glance, checked in a real Chromium at 1400×1000 and 480×900:
the live pill, filter combinations, lock release, deleted jobs, the detail page, stuck queues,
menus and bulk actions, log times and the favicon."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dashboard import demo
from tests.dashboard.conftest import SCREENSHOTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.urls("tests.dashboard.urls"),
    pytest.mark.django_db(transaction=True),
]

SIZES = pytest.mark.parametrize("width,height", [(1400, 1000), (480, 900)])


def shoot(page: Any, name: str, *, full: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)


def console_errors(page: Any) -> list[str]:
    found: list[str] = []
    page.on(
        "console", lambda msg: found.append(msg.text) if msg.type in ("error", "warning") else None
    )
    return found


@pytest.fixture
def fast(dashboard_settings: Any) -> None:
    dashboard_settings(REFRESH_INTERVAL=1)


# -- 2: every filter combination gives the list its URL says -----------------------------------
@SIZES
def test_search_then_chip_gives_the_list_the_url_says(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse(width, height)
    errors = console_errors(page)
    page.goto("/tasks/jobs/")
    page.fill("#pca-q", "quarterly")
    expect(page).to_have_url(re.compile(r"\?q=quarterly$"))
    page.locator("#pca-chip-failed").click()
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))
    page.wait_for_load_state("networkidle")
    rows = page.locator("#pca-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".pca-badge")).to_have_text(re.compile("Failed"))
    expect(page.locator("#pca-q")).to_have_value("quarterly")
    assert not [e for e in errors if "oob" in e.lower()], errors


def test_typing_then_clicking_a_chip_at_once_keeps_both(browse: Any, tracked: None) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse()
    page.goto("/tasks/jobs/")
    page.fill("#pca-q", "quarterly")
    page.locator("#pca-chip-failed").click()  # before the search's own request went out
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    expect(page.locator("#pca-results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"\?q=quarterly&status=failed$"))


# -- 1: the live pill tells the truth ------------------------------------------------------------
RECORD_PILL = """() => { window.__pill = [];
  document.addEventListener('htmx:afterSettle', (e) => {
    if (e.detail.target && e.detail.target.hasAttribute('data-pca-region'))
      window.__pill.push(document.querySelector('[data-pca-live-text]').textContent);
  }); }"""


@SIZES
@pytest.mark.parametrize("url", ["/tasks/", "/tasks/jobs/"])
def test_live_pill_resets_on_every_refresh_and_says_stale_on_failure(
    browse: Any, fast: None, url: str, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    demo.build()
    page = browse(width, height)
    page.goto(url)
    page.evaluate(RECORD_PILL)
    page.wait_for_function("() => window.__pill.length >= 4", timeout=20_000)
    texts = page.evaluate("window.__pill")
    assert all(t == "Live · updated just now" for t in texts), texts
    pill = page.locator("[data-pca-live]")
    expect(pill).to_have_attribute("data-state", "live")
    # The server stops answering: the pill turns stale instead of claiming to be live.
    page.route(re.compile(r".*/tasks/.*"), lambda route: route.fulfill(status=500, body="down"))
    expect(pill).to_have_attribute("data-state", "stale", timeout=10_000)
    expect(pill).to_contain_text("Stale · refresh failed")
    shoot(page, f"live-stale-{width}x{height}")
    page.unroute(re.compile(r".*/tasks/.*"))
    expect(pill).to_have_attribute("data-state", "live", timeout=10_000)


# -- 3: an action does exactly what its confirmation says, and keeps the recorded cause ------------
def dead_job_with_locks(n: int = 15) -> str:
    """A job whose worker died mid-run, still holding ``n`` locks (nothing has reclaimed it yet)."""
    from datetime import timedelta

    from django.utils import timezone

    from powercrud_async.models import LiveTask, TaskLock
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now()
    key = "dead0000-4b2a-9d3f-000000000001"
    started = now - timedelta(minutes=12)
    AsyncTaskRecord.objects.create(
        task_name=key,
        status="in_progress",
        func_path="catalog.tasks.reindex",
        user_label="alice",
        created_at=started,
        started_at=started,
        percent=40.0,
        message="Indexed 6 of 15 projects",
    )
    LiveTask.objects.create(
        task_name=key,
        status="in_progress",
        func_path="catalog.tasks.reindex",
        created_at=started,
        started_at=started,
        heartbeat_at=now - timedelta(minutes=10),
        manager_class="tests.dashboard.managers.DashboardManager",
        attempts=1,
        conflict_ids={"testapp.project": [str(i) for i in range(1, n + 1)]},
    )
    TaskLock.objects.bulk_create(
        [
            TaskLock(
                model_label="testapp.project",
                object_pk=str(i),
                task_name=key,
                acquired_at=started,
                expires_at=now + timedelta(minutes=30),
            )
            for i in range(1, n + 1)
        ]
    )
    return key


@SIZES
def test_release_from_the_locks_page_says_what_it_frees_and_keeps_the_cause(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    from powercrud_async.models import TaskLock
    from tests.testapp.models import AsyncTaskRecord

    key = dead_job_with_locks(15)
    page = browse(width, height)
    page.goto(f"/tasks/locks/?task={key}")
    button = page.locator("#pca-locks-results tbody tr").first.get_by_role("button")
    expect(page.locator("#pca-locks-results tbody tr").nth(1)).to_contain_text(
        "testapp.project 2"
    )  # natural order
    expect(button).to_have_text("Release job's 15 locks")
    button.click()
    confirm = page.locator("#pca-flash [data-pca-confirm]")
    expect(confirm.get_by_role("heading")).to_have_text("Release 15 locks held by 1 job?")
    expect(confirm).to_contain_text("15 locks: testapp.project 1–15")
    shoot(page, f"release-confirm-{width}x{height}")
    confirm.get_by_role("button", name="Yes, release 15 locks").click()
    expect(page.locator("#pca-flash .pca-report")).to_contain_text("Released 15 locks of 1 job")
    assert TaskLock.objects.filter(task_name=key).count() == 0
    record = AsyncTaskRecord.objects.get(task_name=key)
    assert record.status == "failed"
    assert (
        "released" not in (record.error or "").lower()
        and "heartbeat" in (record.error or "").lower()
    ), record.error
    page.goto(f"/tasks/jobs/{key}/")
    expect(page.locator("#pca-error-title + *, .pca-error-summary")).to_contain_text("heartbeat")
    expect(page.locator(".pca-error-summary")).not_to_contain_text("released")
    expect(page.locator(".pca-timeline")).to_contain_text("ops released 15 locks")


# -- 4: a deleted job is gone -----------------------------------------------------------------------
@SIZES
def test_deleted_job_answers_404_naming_who_deleted_it(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    from powercrud_async.models import LiveTask

    keys = demo.build()
    key = keys["failed"]
    LiveTask.objects.create(
        task_name=key,
        status="failed",
        func_path="reports.tasks.quarterly_revenue",
        manager_class="tests.dashboard.managers.DashboardManager",
        attempts=1,
    )
    page = browse(width, height)
    page.goto(f"/tasks/jobs/{key}/")
    page.locator("#pca-detail-body").get_by_role("button", name="Delete record").click()
    page.locator("#pca-flash [data-pca-confirm]").get_by_role(
        "button", name="Yes, delete 1 record"
    ).click()
    expect(page).to_have_url(re.compile(r"/tasks/jobs/$"))
    response = page.goto(f"/tasks/jobs/{key}/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Job deleted")
    expect(page.locator("#pca-main")).to_contain_text(f"The record of job {key} was deleted by ops")
    for name in ("Retry", "Release locks", "Cancel job", "Delete record"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    shoot(page, f"deleted-{width}x{height}")


# -- 5: the detail page reads at a glance ---------------------------------------------------------------
def long_running_job(steps: int = 45, locks: int = 30) -> str:
    """A running job with many progress events and locks; its ``create`` row stored after ``start``."""
    from datetime import timedelta

    from django.utils import timezone

    from powercrud_async.models import LiveTask, TaskEvent, TaskLock
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now()
    key = "long0000-4b2a-9d3f-000000000002"
    created = now - timedelta(seconds=30)
    started = created + timedelta(seconds=1)
    AsyncTaskRecord.objects.create(
        task_name=key,
        status="in_progress",
        func_path="catalog.tasks.reindex",
        user_label="alice",
        created_at=created,
        started_at=started,
        percent=70.0,
        message="Indexed 21 of 30 books",
    )
    LiveTask.objects.create(
        task_name=key,
        status="in_progress",
        func_path="catalog.tasks.reindex",
        created_at=created,
        started_at=started,
        heartbeat_at=now,
        manager_class="tests.dashboard.managers.DashboardManager",
        attempts=1,
    )
    TaskLock.objects.bulk_create(
        [
            TaskLock(
                model_label="testapp.project",
                object_pk=str(i),
                task_name=key,
                acquired_at=created,
                expires_at=now + timedelta(minutes=30),
            )
            for i in range(1, locks + 1)
        ]
    )
    TaskEvent.objects.create(
        task_name=key, event="start", status="in_progress", message="Started", created_at=started
    )
    TaskEvent.objects.bulk_create(
        [
            TaskEvent(
                task_name=key,
                event="progress",
                message=f"Indexed book {i} ({100 * i / steps:.1f}%)",
                created_at=started + timedelta(milliseconds=400 * i),
            )
            for i in range(1, steps + 1)
        ]
    )
    TaskEvent.objects.create(
        task_name=key, event="create", status="pending", message="Queued", created_at=created
    )
    return key


@SIZES
def test_running_detail_is_short_ordered_and_summarised(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    key = long_running_job()
    page = browse(width, height)
    page.goto(f"/tasks/jobs/{key}/")
    timeline = page.locator(".pca-timeline > li")
    expect(timeline).to_have_count(3)  # create, start, one line for 45 progress steps
    expect(timeline.nth(0)).to_contain_text("Create")
    expect(timeline.nth(1)).to_contain_text("Start")
    expect(timeline.nth(2)).to_contain_text("Progress · 45 updates")
    expect(page.locator(".pca-lock-groups")).to_have_text(
        re.compile(r"testapp\.project\s+1–30\s+\(30\)")
    )
    expect(page.locator(".pca-lock-list table")).to_be_hidden()
    height_px = page.evaluate("document.documentElement.scrollHeight")
    shoot(page, f"detail-running-{width}x{height}", full=True)
    assert height_px < (2600 if width < 600 else 1800), height_px
    shoot(page, f"detail-running-{width}x{height}", full=True)
    page.locator(".pca-lock-list > summary").click()
    rows = page.locator(".pca-lock-list tbody tr")
    expect(rows).to_have_count(30)
    assert [rows.nth(i).locator("strong").inner_text() for i in range(3)] == ["1", "2", "3"]
    page.locator(".pca-tl-progress > summary").click()
    expect(page.locator(".pca-tl-steps > li")).to_have_count(45)
    # The region refreshes itself: what was unfolded stays unfolded.
    page.evaluate("document.getElementById('pca-lock-list').dataset.before = '1'")
    page.evaluate("htmx.trigger(document.body, 'pca-refresh')")
    page.wait_for_function("() => !document.getElementById('pca-lock-list').dataset.before")
    expect(page.locator(".pca-lock-list tbody tr")).to_have_count(30)
    expect(page.locator(".pca-tl-steps > li")).to_have_count(45)


@SIZES
def test_cancelled_job_keeps_the_percent_it_reached(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    from powercrud_async.models import TaskEvent
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now()
    key = "cncl0000-4b2a-9d3f-000000000003"
    AsyncTaskRecord.objects.create(
        task_name=key,
        status="cancelled",
        func_path="catalog.tasks.reindex",
        created_at=now - timedelta(seconds=30),
        started_at=now - timedelta(seconds=29),
        cancelled_at=now,
        message="Cancelled by an operator",
    )
    TaskEvent.objects.create(
        task_name=key,
        event="progress",
        message="Indexed 339 of 1000 (33.9%)",
        created_at=now - timedelta(seconds=5),
    )
    page = browse(width, height)
    page.goto(f"/tasks/jobs/{key}/")
    expect(page.locator("#pca-progress progress")).to_have_attribute("value", "34")
    expect(page.locator("#pca-progress .pca-progress-percent")).to_have_text("34%")
    shoot(page, f"detail-cancelled-{width}x{height}")


# -- 6: health is judged from work ------------------------------------------------------------------
def wedged_workers() -> None:
    """Two running jobs beating their heartbeats but going nowhere; two jobs queued for 5 min;
    the last job started 9 min ago."""
    from datetime import timedelta

    from django.utils import timezone

    from powercrud_async.models import LiveTask
    from tests.testapp.models import AsyncTaskRecord

    now = timezone.now()
    for i, (status, age) in enumerate(
        [("in_progress", 540), ("in_progress", 600), ("pending", 300), ("pending", 290)]
    ):
        key = f"wedg{i:04d}-4b2a-9d3f-00000000000{i}"
        created = now - timedelta(seconds=age)
        started = created if status == "in_progress" else None
        AsyncTaskRecord.objects.create(
            task_name=key,
            status=status,
            func_path="catalog.tasks.reindex",
            created_at=created,
            started_at=started,
            message="",
        )
        LiveTask.objects.create(
            task_name=key,
            status=status,
            func_path="catalog.tasks.reindex",
            created_at=created,
            started_at=started,
            heartbeat_at=now if started else None,
            manager_class="tests.dashboard.managers.DashboardManager",
            attempts=1,
        )


@SIZES
def test_overview_shows_a_stuck_queue_while_heartbeats_look_fine(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    wedged_workers()
    page = browse(width, height)
    page.goto("/tasks/")
    kpi = page.locator("#pca-kpi-queue")
    expect(kpi).to_have_attribute("data-queue-state", "stuck")
    expect(kpi).to_contain_text("Stuck queue")
    card = page.locator("#pca-stuck-queue")
    expect(card).to_be_visible()
    expect(card).to_contain_text(
        re.compile(r"2 waiting, the oldest for 5 min( \d+ s)?; no job started for 9 min")
    )
    expect(page.locator("#pca-work-state")).to_have_attribute("data-work-state", "stuck")
    shoot(page, f"overview-stuck-{width}x{height}", full=True)


def test_overview_says_working_while_a_job_runs(browse: Any, tracked: None) -> None:
    from playwright.sync_api import expect

    from powercrud_async.models import LiveTask
    from tests.testapp.models import AsyncTaskRecord

    demo.build()
    AsyncTaskRecord.objects.filter(status="pending").delete()
    LiveTask.objects.filter(status="pending").delete()
    page = browse()
    page.goto("/tasks/")
    expect(page.locator("#pca-work-state")).to_have_text("Working: 3 jobs running.")
    expect(page.locator("#pca-kpi-queue")).to_have_attribute("data-queue-state", "idle")


# -- 7: only actions that apply; menus close ---------------------------------------------------------
@SIZES
def test_menus_close_and_only_applicable_actions_are_offered(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    keys = demo.build()
    page = browse(width, height)
    page.goto("/tasks/jobs/?status=succeeded&per_page=10")
    row = page.locator("#pca-results tbody tr").first
    menu = row.locator("details.pca-menu")
    menu.locator("summary").click()
    panel = menu.locator(".pca-menu-panel")
    expect(panel.get_by_role("button", name="Release locks")).to_have_count(0)  # holds no locks
    expect(panel.get_by_role("button", name="Cancel")).to_have_count(0)  # already finished
    panel.get_by_role("button", name="Delete record").click()
    expect(page.locator("#pca-flash [data-pca-confirm]")).to_be_visible()
    expect(page.locator("details.pca-menu[open]")).to_have_count(0)
    page.locator("#pca-flash [data-pca-dismiss]").click()
    # Bulk: finished jobs selected, so Cancel and Release are not offered; Retry neither.
    boxes = page.locator('#pca-results tbody input[type=checkbox][name="tasks"]')
    boxes.nth(0).check()
    boxes.nth(1).check()
    bulk = page.locator("#pca-bulk")
    expect(bulk.locator('[data-pca-bulk="cancel"]')).to_be_hidden()
    expect(bulk.locator('[data-pca-bulk="release"]')).to_be_hidden()
    expect(bulk.locator('[data-pca-bulk="retry"]')).to_be_hidden()
    expect(bulk.locator('[data-pca-bulk="delete"]')).to_be_visible()
    shoot(page, f"list-bulk-applicable-{width}x{height}")
    # The detail page of a live job offers no release (its locks are kept while it lives).
    page.goto(f"/tasks/jobs/{keys['running']}/")
    expect(
        page.locator("#pca-detail-body").get_by_role("button", name=re.compile("Release"))
    ).to_have_count(0)
    page.goto(f"/tasks/jobs/{keys['dead']}/")
    expect(
        page.locator("#pca-detail-body").get_by_role("button", name="Release 2 locks")
    ).to_be_visible()


# -- 9: log rows read apart; no page asks for a missing favicon -------------------------------------------
@SIZES
def test_log_rows_show_clock_time_with_milliseconds_and_no_page_404s(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    import logging
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    from powercrud_async.models import TaskLogEntry

    keys = demo.build()
    base = timezone.now().replace(microsecond=120_000) - timedelta(minutes=10)
    TaskLogEntry.objects.bulk_create(
        [
            TaskLogEntry(
                task_name=keys["success"],
                created_at=base + timedelta(milliseconds=ms),
                level=logging.INFO,
                level_name="INFO",
                logger_name="catalog",
                message=f"step {i}",
            )
            for i, ms in enumerate((0, 350))
        ]
    )
    page = browse(width, height)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    for url in (
        "/tasks/",
        "/tasks/jobs/",
        "/tasks/locks/",
        "/tasks/audit/",
        f"/tasks/jobs/{keys['success']}/",
    ):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    local = timezone.localtime(base)
    cells = page.locator("#pca-logs tbody tr", has_text="step").locator(".pca-col-time")
    expect(cells.nth(0)).to_have_text(local.strftime("%H:%M:%S.120"))
    expect(cells.nth(1)).to_have_text(local.strftime("%H:%M:%S.470"))
    assert missing == [], missing
    shoot(page, f"detail-logs-{width}x{height}")


# -- 8: each fact once ------------------------------------------------------------------------------------
@SIZES
def test_failed_job_states_its_error_once(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    keys = demo.build()
    page = browse(width, height)
    page.goto(f"/tasks/jobs/{keys['failed']}/")
    visible = page.evaluate("""() => {
        const main = document.getElementById('pca-main').cloneNode(true);
        main.querySelectorAll('#pca-logs, pre[aria-label=Traceback], details:not([open]) > :not(summary)')
            .forEach(el => el.remove());
        return main.innerText; }""")
    assert visible.count("missing from source table") == 1, visible
    raw = page.locator("#pca-raw")
    expect(raw.locator("dl")).to_be_hidden()
    raw.locator("summary").click()
    expect(raw.locator("dl")).to_be_visible()
    shoot(page, f"detail-failed-{width}x{height}", full=True)


@SIZES
def test_bulk_action_on_every_job_matching_the_filter(
    browse: Any, tracked: None, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    from tests.testapp.models import AsyncTaskRecord

    demo.build()
    succeeded = AsyncTaskRecord.objects.filter(status="success").count()
    others = AsyncTaskRecord.objects.exclude(status="success").count()
    assert succeeded > 10
    page = browse(width, height)
    page.goto("/tasks/jobs/?status=succeeded&per_page=10")
    wide = page.locator("[data-pca-select-matching]")
    expect(wide).to_be_hidden()
    boxes = page.locator('#pca-results tbody input[type=checkbox][name="tasks"]')
    for i in range(
        boxes.count()
    ):  # (at 480 px the header's select-all is folded away with the header)
        boxes.nth(i).check()
    expect(wide).to_have_text(f"Select all {succeeded} matching this filter")
    wide.click()
    expect(page.locator("[data-pca-selected]")).to_have_text(f"All {succeeded} matching selected")
    shoot(page, f"list-select-matching-{width}x{height}")
    page.locator("#pca-bulk").get_by_role("button", name="Delete").click()
    confirm = page.locator("#pca-flash [data-pca-confirm]")
    expect(confirm.get_by_role("heading")).to_have_text(f"Delete {succeeded} job records?")
    confirm.get_by_role("button", name=f"Yes, delete {succeeded} records").click()
    expect(page.locator("#pca-flash .pca-report")).to_contain_text(
        f"Deleted {succeeded} job records."
    )
    assert AsyncTaskRecord.objects.filter(status="success").count() == 0
    assert AsyncTaskRecord.objects.count() == others  # nothing outside the filter


# -- beyond: one place to read everything that happened ----------------------------------------------------
@SIZES
def test_logs_and_events_streams_across_jobs(
    browse: Any, fast: None, width: int, height: int
) -> None:
    import logging

    from django.utils import timezone
    from playwright.sync_api import expect

    from powercrud_async.models import TaskLogEntry

    keys = demo.build()
    page = browse(width, height)
    page.goto("/tasks/")
    page.get_by_role("link", name="Logs", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/logs/$"))
    rows = page.locator("#pca-stream-results tbody tr")
    expect(rows).to_have_count(43)  # 3 lines for each of 14 jobs, and the failure's traceback
    times = page.locator("#pca-stream-results tbody time").evaluate_all(
        "els => els.map(e => e.getAttribute('datetime'))"
    )
    assert times == sorted(times, reverse=True)  # newest first
    page.select_option("#pca-stream-level", "ERROR")
    expect(page).to_have_url(re.compile(r"/tasks/logs/\?level=ERROR$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Quarterly revenue failed")
    # Live: a line logged now appears without a reload, and links to its job.
    page.evaluate("window.__no_reload = true")
    TaskLogEntry.objects.create(
        task_name=keys["running"],
        created_at=timezone.now(),
        level=logging.ERROR,
        level_name="ERROR",
        logger_name="catalog",
        message="Disk almost full",
    )
    expect(rows.first).to_contain_text("Disk almost full", timeout=15_000)
    assert page.evaluate("window.__no_reload") is True
    shoot(page, f"logs-{width}x{height}")
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/tasks/jobs/{keys['running']}/$"))
    page.goto("/tasks/events/?event=fail")
    expect(page.locator("#pca-stream-results tbody tr")).to_have_count(4)
    page.fill("#pca-stream-q", "revenue_eur")
    expect(page).to_have_url(re.compile(r"/tasks/events/\?q=revenue_eur&event=fail$"))
    expect(page.locator("#pca-stream-results tbody tr")).to_have_count(1)
    shoot(page, f"events-{width}x{height}")


@SIZES
def test_shortcuts_density_and_copy_id(browse: Any, tracked: None, width: int, height: int) -> None:
    from playwright.sync_api import expect

    keys = demo.build()
    page = browse(width, height)
    page.goto("/tasks/jobs/?status=failed")
    page.keyboard.press("/")
    expect(page.locator("#pca-q")).to_be_focused()
    page.locator("h1").click()  # leave the field
    page.keyboard.press("j")
    links = page.locator("#pca-results tbody tr .pca-job-link")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("x")
    expect(page.locator("[data-pca-selected]")).to_have_text("1 selected")
    page.keyboard.press("x")
    page.keyboard.press("k")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("r")  # retry the focused (failed) job: the report says what happened
    expect(page.locator("#pca-flash .pca-report")).to_contain_text(
        re.compile("Refused to retry|Retried 1 job")
    )
    page.keyboard.press("?")
    overlay = page.locator("#pca-keys")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text("Retry the focused job")
    shoot(page, f"shortcuts-{width}x{height}")
    page.keyboard.press("Escape")
    expect(overlay).to_be_hidden()
    # Density: compact rows, remembered across pages.
    page.get_by_role("button", name="Compact rows").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\bpca-dense\b"))
    page.reload()
    expect(page.locator("body")).to_have_class(re.compile(r"\bpca-dense\b"))
    expect(page.get_by_role("button", name="Comfortable rows")).to_have_attribute(
        "aria-pressed", "true"
    )
    # Copy the id of a job.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/tasks/jobs/{keys['failed']}/")
    page.get_by_role("button", name=f"Copy the job id {keys['failed']}").click()
    expect(page.locator("[data-pca-copy]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == keys["failed"]


# -- beyond: per-queue and per-cluster views against a real qcluster ------------------------------------------
from tests.dashboard.test_browser import cluster  # noqa: E402,F401 - the real-qcluster fixture


@SIZES
def test_workers_page_shows_each_queue_and_cluster(
    browse: Any,
    fast: None,
    cluster: Any,  # noqa: F811
    width: int,
    height: int,
) -> None:
    from playwright.sync_api import expect

    from powercrud_async.models import LiveTask
    from tests.cluster import wait_until
    from tests.dashboard.managers import DashboardManager

    found = cluster()
    key = DashboardManager().launch_async_task("tests.testapp.tasks.add", 1, 2)
    wait_until(lambda: LiveTask.objects.get(task_name=key).status == "success", timeout=30)
    page = browse(width, height)
    page.goto("/tasks/")
    page.get_by_role("link", name="Workers", exact=True).click()
    row = page.locator("#pca-queue-table tbody tr[data-queue='pca-tests']")
    expect(row).to_contain_text("this site")
    expect(row.locator("td[data-label=Done]")).to_have_text(
        re.compile(r"^[1-9]\d*$"), timeout=15_000
    )
    expect(row.locator("td[data-label=State]")).to_contain_text("Idle")
    clusters_table = page.locator("#pca-cluster-table tbody tr")
    expect(clusters_table.first).to_contain_text("pca-tests", timeout=15_000)
    expect(clusters_table.first.locator("td[data-label='Worker processes']")).to_contain_text(
        "pid "
    )
    shoot(page, f"workers-{width}x{height}", full=True)
    assert found.proc.poll() is None
